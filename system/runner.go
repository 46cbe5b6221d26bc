package system

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"

	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/internal/lifecycle"
	"github.com/eventsourcing-go/eventsourcing/projection"
)

// Runner runs a system. Every runner (single-threaded, multi-threaded, gRPC)
// has the same lifecycle: Start once with a context that bounds start-up, Stop
// any number of times (the first call stops and closes the applications; every
// call returns the first error), and Err to see the first processing error
// while running.
type Runner interface {
	// Start builds and connects the system's applications. A second call
	// returns ErrRunnerAlreadyStarted. When Start fails, what it built is closed.
	Start(ctx context.Context) error
	// Stop stops processing and closes the applications. It is idempotent and
	// returns the first error of the run (a processing error before a close error).
	Stop() error
	// Err returns the first processing error so far, or nil.
	Err() error
	// App returns the running application with the given name.
	App(name string) (Application, error)
	// Apps returns the running applications, in the system's order.
	Apps() []Application
}

// Get returns the running application of type A, such as
// system.Get[*dogschool.Counters](runner). With a name, it returns the one of
// that name (useful when two applications share a Go type).
func Get[A Application](r Runner, name ...string) (A, error) {
	var zero A
	if len(name) > 0 {
		app, err := r.App(name[0])
		if err != nil {
			return zero, err
		}
		a, ok := app.(A)
		if !ok {
			return zero, fmt.Errorf("%w: %q is a %T, not a %s", ErrAppNotFound, name[0], app, reflect.TypeFor[A]())
		}
		return a, nil
	}
	apps := r.Apps()
	if apps == nil {
		return zero, ErrRunnerNotStarted
	}
	for _, app := range apps {
		if a, ok := app.(A); ok {
			return a, nil
		}
	}
	return zero, fmt.Errorf("%w: no application of type %s", ErrAppNotFound, reflect.TypeFor[A]())
}

// MustGet is Get for tests and examples; it panics when the application is
// not running.
func MustGet[A Application](r Runner, name ...string) A {
	a, err := Get[A](r, name...)
	if err != nil {
		panic(err)
	}
	return a
}

// core is what the in-process runners share: the applications, their
// followers and projections, and the lifecycle.
type core struct {
	sys *System
	env map[string]string
	lc  lifecycle.Lifecycle

	mu          sync.Mutex
	apps        []Application // in the system's order; nil until started
	byName      map[string]Application
	followers   map[string]*Follower // by follower name
	projections map[string]*projection.Follower
	projOrder   []string
	projsOf     map[string][]*projection.Follower // by upstream name
}

func newCore(sys *System, env map[string]string) core {
	return core{sys: sys, env: env}
}

// build constructs every application, a Follower for each follower, with
// an upstream per leader, and the projections. On failure it closes what it
// built.
func (c *core) build(ctx context.Context, configure func(*follow.Config)) (err error) {
	if _, err := c.lc.Begin(ctx); err != nil {
		if errors.Is(err, lifecycle.ErrStopped) {
			return ErrRunnerStopped
		}
		return ErrRunnerAlreadyStarted
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var closers []func() error
	defer func() {
		if err != nil {
			for _, cl := range slices.Backward(closers) {
				err = errors.Join(err, cl())
			}
		}
	}()
	apps := make([]Application, 0, len(c.sys.apps))
	byName := map[string]Application{}
	for _, def := range c.sys.apps {
		app, err := def.Build(ctx, c.env)
		if err != nil {
			return err
		}
		apps = append(apps, app)
		closers = append(closers, app.Close)
		byName[def.name] = app
	}
	followers := map[string]*Follower{}
	for _, def := range c.sys.apps {
		leaders := c.sys.leadersOf[def.name]
		if len(leaders) == 0 {
			continue
		}
		pa, ok := byName[def.name].(ProcessApplication)
		if !ok {
			return fmt.Errorf("%w: %q is not a process application", ErrSystem, def.name)
		}
		f, err := NewFollower(pa)
		if err != nil {
			return err
		}
		if configure != nil {
			f.Configure(configure)
		}
		for _, l := range leaders {
			leader := byName[l]
			m, err := LeaderMapper(pa, l, leader.Types())
			if err != nil {
				return err
			}
			if err := f.Follow(Upstream{Name: l, Source: leader.Recorder(), Mapper: m, Topics: def.topics}); err != nil {
				return err
			}
		}
		followers[def.name] = f
	}
	projections := map[string]*projection.Follower{}
	projsOf := map[string][]*projection.Follower{}
	var order []string
	for _, def := range c.sys.projections {
		p, view, err := def.Build(ctx, c.env)
		if err != nil {
			return err
		}
		if cl, ok := view.(interface{ Close() error }); ok {
			closers = append(closers, cl.Close)
		}
		up := byName[def.Upstream()]
		opts := def.Options()
		if configure != nil {
			opts = append(opts, projection.WithFollowConfig(configure))
		}
		opts = append(opts, projection.WithFollowConfig(func(c *follow.Config) {
			if c.Logger == nil {
				c.Logger = up.Logger()
			}
		}))
		pf, err := projection.NewFollower(p, view, def.Upstream(), up.Recorder(), up.Mapper(), opts...)
		if err != nil {
			return err
		}
		projections[def.name] = pf
		projsOf[def.Upstream()] = append(projsOf[def.Upstream()], pf)
		order = append(order, def.name)
	}
	// Stop closes in reverse: the views, then the applications.
	for _, cl := range closers {
		c.lc.OnStop(func(context.Context) error { return cl() })
	}
	c.apps, c.byName, c.followers = apps, byName, followers
	c.projections, c.projsOf, c.projOrder = projections, projsOf, order
	return nil
}

// App implements Runner.
func (c *core) App(name string) (Application, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.apps == nil {
		return nil, ErrRunnerNotStarted
	}
	a, ok := c.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrAppNotFound, name)
	}
	return a, nil
}

// Apps implements Runner.
func (c *core) Apps() []Application {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.apps)
}

// Projection returns the running projection with the given name.
func (c *core) Projection(name string) (*projection.Follower, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.apps == nil {
		return nil, ErrRunnerNotStarted
	}
	p, ok := c.projections[name]
	if !ok {
		return nil, fmt.Errorf("%w: no projection %q", ErrAppNotFound, name)
	}
	return p, nil
}

// Status reports the progress of every follower (one line per leader) and
// projection of the system.
func (c *core) Status(ctx context.Context) []follow.Status {
	c.mu.Lock()
	var fs []*Follower
	for _, def := range c.sys.apps {
		if f, ok := c.followers[def.name]; ok {
			fs = append(fs, f)
		}
	}
	var ps []*projection.Follower
	for _, n := range c.projOrder {
		ps = append(ps, c.projections[n])
	}
	c.mu.Unlock()
	var out []follow.Status
	for _, f := range fs {
		out = append(out, f.Status(ctx)...)
	}
	for _, p := range ps {
		out = append(out, p.Status(ctx))
	}
	return out
}

// Err implements Runner.
func (c *core) Err() error { return c.lc.Err() }

// Errored returns a channel closed at the first processing error.
func (c *core) Errored() <-chan struct{} { return c.lc.Errored() }

// Wait blocks until the runner fails (its error), is stopped
// (ErrRunnerStopped) or ctx ends.
func (c *core) Wait(ctx context.Context) error {
	err := c.lc.Wait(ctx)
	if errors.Is(err, lifecycle.ErrStopped) {
		return ErrRunnerStopped
	}
	return err
}

func (c *core) isStopped() bool { return c.lc.Stopping() }

// stop stops the runner: halt ends processing, then the views and the
// applications are closed. Called from inside a policy or a projection, it
// returns ErrStopInPolicy at once and the runner stops once that returns.
func (c *core) stop(halt func(ctx context.Context) error) error {
	if halt != nil && !c.lc.Stopping() {
		c.lc.OnStop(halt)
	}
	err := c.lc.Stop(0)
	if errors.Is(err, lifecycle.ErrStopInWorker) {
		return ErrStopInPolicy
	}
	return err
}
