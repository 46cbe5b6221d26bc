package system

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
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
// followers, the lifecycle state and the first error.
type core struct {
	sys *System
	env map[string]string

	mu        sync.Mutex
	started   bool
	stopped   bool
	apps      []Application // in the system's order; nil until started
	byName    map[string]Application
	followers map[string]*Follower // by follower name

	errMu    sync.Mutex
	firstErr error
	errored  chan struct{}

	stopOnce sync.Once
	stopErr  error
}

func newCore(sys *System, env map[string]string) core {
	return core{sys: sys, env: env, errored: make(chan struct{})}
}

// build constructs every application and a Follower for each follower, with
// an upstream per leader. On failure it closes what it built.
func (c *core) build(ctx context.Context) (err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return ErrRunnerAlreadyStarted
	}
	if c.stopped {
		return ErrRunnerStopped
	}
	c.started = true
	apps := make([]Application, 0, len(c.sys.apps))
	byName := map[string]Application{}
	defer func() {
		if err != nil {
			for _, a := range slices.Backward(apps) {
				err = errors.Join(err, a.Close())
			}
		}
	}()
	for _, def := range c.sys.apps {
		app, err := def.Build(ctx, c.env)
		if err != nil {
			return err
		}
		apps = append(apps, app)
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
	c.apps, c.byName, c.followers = apps, byName, followers
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

// Err implements Runner.
func (c *core) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.firstErr
}

// Errored returns a channel closed at the first processing error.
func (c *core) Errored() <-chan struct{} { return c.errored }

func (c *core) setErr(err error) {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	if c.firstErr == nil {
		c.firstErr = err
		close(c.errored)
	}
}

func (c *core) isStopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

// stop marks the runner stopped, runs halt (which ends processing), closes
// the applications, and returns the first error.
func (c *core) stop(halt func()) error {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		c.stopped = true
		apps := c.apps
		c.mu.Unlock()
		if halt != nil {
			halt()
		}
		var closeErrs []error
		for _, a := range slices.Backward(apps) {
			if err := a.Close(); err != nil {
				closeErrs = append(closeErrs, fmt.Errorf("close %s: %w", a.Name(), err))
			}
		}
		c.stopErr = c.Err()
		if c.stopErr == nil {
			c.stopErr = errors.Join(closeErrs...)
		}
	})
	return c.stopErr
}
