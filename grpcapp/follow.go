package grpcapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/internal/lifecycle"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/system"
)

// Followers and projections over gRPC run on follow.Follower, as they do in
// process: the source is the leader's server (SelectNotifications while
// behind, one SubscribeNotifications stream while caught up, Status for the
// head). A dropped stream surfaces to the follower, which reads pages from
// its last position and subscribes again with jittered backoff.

// RemoteSource is a leader's notification log on its server, as a
// follow.Source.
type RemoteSource struct {
	c      *Client
	sparse atomic.Bool
}

var _ follow.Source = (*RemoteSource)(nil)

// NewRemoteSource returns the source of the application served at c.
func NewRemoteSource(c *Client) *RemoteSource { return &RemoteSource{c: c} }

// SelectNotifications implements follow.Source.
func (r *RemoteSource) SelectNotifications(ctx context.Context, q recorder.NotificationQuery) ([]recorder.Notification, error) {
	return r.c.Log().Select(ctx, q)
}

// Subscribe implements follow.Source: one stream, which ends (rather than
// reconnecting by itself) when the server goes away.
func (r *RemoteSource) Subscribe(ctx context.Context, after recorder.Position, topics []string) (recorder.Subscription, error) {
	return r.c.Log().subscribe(ctx, after, topics, false)
}

// MaxNotificationID implements follow.Source, from the server's Status.
func (r *RemoteSource) MaxNotificationID(ctx context.Context) (int64, bool, error) {
	st, err := r.c.status(ctx, true)
	if err != nil {
		return 0, false, err
	}
	r.sparse.Store(st.SparseIDs)
	return st.Head, st.HasHead, nil
}

// SparseNotificationIDs reports what the server last said of its ids.
func (r *RemoteSource) SparseNotificationIDs() bool { return r.sparse.Load() }

// Retryable is follow.DefaultRetryable, and a server that cannot be reached
// or does not answer in time.
func Retryable(err error) bool {
	return follow.DefaultRetryable(err) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrDeadlineExceeded)
}

// remoteConfig is the follow.Config change of a follower whose leader is remote.
func remoteConfig(logger *slog.Logger) func(*follow.Config) {
	return func(c *follow.Config) {
		c.Retryable = Retryable
		c.PageSize = DefaultMaxSelectLimit
		c.Logger = logger
	}
}

// runner runs a server's followers or projection in the server's lifecycle.
type runner struct {
	lc      lifecycle.Lifecycle
	runs    []func(ctx context.Context) error
	report  func(error)
	closers []func() error
}

func (r *runner) start(ctx context.Context) error {
	if _, err := r.lc.Begin(ctx); err != nil {
		return err
	}
	for _, run := range r.runs {
		r.lc.Go(func(ctx context.Context) error {
			err := run(ctx)
			if err != nil && ctx.Err() == nil {
				r.report(err)
			}
			return err
		})
	}
	return nil
}

func (r *runner) stop(ctx context.Context) error {
	timeout := time.Duration(0)
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	err := r.lc.Stop(timeout)
	var errs []error
	if err != nil && !errors.Is(err, r.lc.Err()) {
		errs = append(errs, err)
	}
	for _, c := range r.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// followers is a server's progress for a process application.
type followers struct {
	f *system.Follower
}

func (p followers) Status(ctx context.Context) []follow.Status { return p.f.Status(ctx) }

func (p followers) Wait(ctx context.Context, upstream string, id int64, timeout time.Duration) error {
	if _, err := p.f.Upstream(upstream); err != nil {
		return fmt.Errorf("%w: %w", eventsourcing.ErrArgument, err)
	}
	pr, _ := p.f.App().ProcessRecorder()
	return pr.Wait(ctx, upstream, id, timeout)
}

func (followers) Rebuild(context.Context) error { return ErrNotProjection }

// projectionProgress is a server's progress for a projection.
type projectionProgress struct{ p *projection.Follower }

func (p projectionProgress) Status(ctx context.Context) []follow.Status {
	return []follow.Status{p.p.Status(ctx)}
}

func (p projectionProgress) Wait(ctx context.Context, upstream string, id int64, timeout time.Duration) error {
	if upstream != "" && upstream != p.p.Upstream() {
		return fmt.Errorf("%w: projection %s reads %s, not %q", eventsourcing.ErrArgument, p.p.Name(), p.p.Upstream(), upstream)
	}
	return p.p.Wait(ctx, id, timeout)
}

func (p projectionProgress) Rebuild(ctx context.Context) error { return p.p.Rebuild(ctx) }

// NewSystemServer builds the named member of sys with env (overrides of
// the process environment) and returns a server for it. For an
// application, the server also follows the application's leaders over
// gRPC while started; for a projection, it follows the projection's
// upstream and serves the view's query methods, Wait and Status. Leaders'
// addresses are <LEADER>_GRPC_SERVER_ADDRESS, and the TLS files are this
// process's. The server owns what it built and closes it on Stop.
func NewSystemServer(ctx context.Context, sys *system.System, name string, env map[string]string, opts ...ServerOption) (*Server, error) {
	if p, ok := sys.Projection(name); ok {
		return newProjectionServer(ctx, sys, p, env, opts...)
	}
	def, ok := sys.App(name)
	if !ok {
		return nil, fmt.Errorf("grpcapp: %w: %q", system.ErrAppNotFound, name)
	}
	app, err := def.Build(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("grpcapp: %w", err)
	}
	s, err := NewServer(app, opts...)
	if err != nil {
		return nil, errors.Join(err, app.Close())
	}
	s.onLifecycle(func(context.Context) error { return nil }, func(context.Context) error {
		// Registered first, so stopped last: after the followers.
		if err := app.Close(); err != nil {
			return fmt.Errorf("grpcapp: close %s: %w", name, err)
		}
		return nil
	})
	leaders := sys.LeadersOf(name)
	if len(leaders) == 0 {
		return s, nil
	}
	fail := func(err error) (*Server, error) { return nil, errors.Join(err, app.Close()) }
	pa, ok := app.(system.ProcessApplication)
	if !ok {
		return fail(fmt.Errorf("grpcapp: %w: %s follows %v but has no Policy", system.ErrSystem, name, leaders))
	}
	f, err := system.NewFollower(pa)
	if err != nil {
		return fail(fmt.Errorf("grpcapp: %w", err))
	}
	cfg, err := ConfigFromEnv(app.Env())
	if err != nil {
		return fail(err)
	}
	f.Configure(remoteConfig(s.logger))
	w := &runner{report: s.reportErr}
	for _, leader := range leaders {
		types, err := leaderTypes(sys, leader, app)
		if err != nil {
			return fail(err)
		}
		c, err := leaderClient(app.Env(), leader, types, cfg, s.logger)
		if err != nil {
			return fail(fmt.Errorf("grpcapp: %s follows %s: %w", name, leader, err))
		}
		w.closers = append(w.closers, c.Close)
		m, err := system.LeaderMapper(pa, leader, types)
		if err != nil {
			return fail(fmt.Errorf("grpcapp: %w", err))
		}
		if err := f.Follow(system.Upstream{Name: leader, Source: NewRemoteSource(c), Mapper: m, Topics: def.Topics()}); err != nil {
			return fail(fmt.Errorf("grpcapp: %w", err))
		}
		ff, _ := f.Upstream(leader)
		w.runs = append(w.runs, ff.Run)
	}
	s.progress = followers{f}
	s.onLifecycle(w.start, w.stop)
	return s, nil
}

// leaderClient connects to a leader's server, decoding with the leader's
// types. Its calls give up quickly: the follower's own retries do the
// waiting.
func leaderClient(env config.Env, leader string, types *eventsourcing.Types, cfg Config, logger *slog.Logger) (*Client, error) {
	addr, err := AddressOf(env, leader)
	if err != nil {
		return nil, err
	}
	return NewClient(addr, WithTypes(types), WithTLS(cfg.TLS), WithMaxAttempts(2), WithClientLogger(logger))
}

// projectionApp is a projection as the server sees it: the view's own
// query methods, no notification log.
type projectionApp struct {
	name  string
	env   config.Env
	types *eventsourcing.Types
	view  projection.View
}

func (a *projectionApp) Name() string                           { return a.name }
func (a *projectionApp) Env() config.Env                        { return a.env }
func (a *projectionApp) Types() *eventsourcing.Types            { return a.types }
func (a *projectionApp) Recorder() recorder.ApplicationRecorder { return nil }
func (a *projectionApp) methodTarget() any                      { return a.view }

// viewTypes are the interfaces whose methods a projection's server never
// exposes: they are the runtime's side of a view.
var viewTypes = []reflect.Type{
	reflect.TypeFor[projection.View](), reflect.TypeFor[projection.Rebuilder](), reflect.TypeFor[projection.Batcher](),
	reflect.TypeFor[interface{ Close() error }](),
}

func newProjectionServer(ctx context.Context, sys *system.System, def *system.Projection, env map[string]string, opts ...ServerOption) (*Server, error) {
	name, upstream := def.Name(), def.Upstream()
	penv := config.NewEnv(name, env)
	types, err := leaderTypes(sys, upstream, nil)
	if err != nil {
		return nil, err
	}
	p, view, err := def.Build(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("grpcapp: %w", err)
	}
	var closers []func() error
	if c, ok := view.(interface{ Close() error }); ok {
		closers = append(closers, c.Close)
	}
	fail := func(err error) (*Server, error) {
		for _, c := range closers {
			err = errors.Join(err, c())
		}
		return nil, err
	}
	s, err := NewServer(&projectionApp{name: name, env: penv, types: types, view: view}, opts...)
	if err != nil {
		return fail(err)
	}
	s.kind = KindProjection
	cfg, err := ConfigFromEnv(penv)
	if err != nil {
		return fail(err)
	}
	c, err := leaderClient(penv, upstream, types, cfg, s.logger)
	if err != nil {
		return fail(fmt.Errorf("grpcapp: projection %s reads %s: %w", name, upstream, err))
	}
	closers = append([]func() error{c.Close}, closers...)
	m, err := eventsourcing.NewMapperFromEnv(types, penv.WithName(upstream))
	if err != nil {
		return fail(fmt.Errorf("grpcapp: mapper of %s for %s: %w", upstream, name, err))
	}
	popts := append(def.Options(), projection.WithFollowConfig(remoteConfig(s.logger)))
	pf, err := projection.NewFollower(p, view, upstream, NewRemoteSource(c), m, popts...)
	if err != nil {
		return fail(fmt.Errorf("grpcapp: %w", err))
	}
	s.progress = projectionProgress{pf}
	w := &runner{report: s.reportErr, runs: []func(context.Context) error{pf.Run}, closers: closers}
	s.onLifecycle(w.start, w.stop)
	return s, nil
}

// leaderTypes returns a leader's type registry without building it: from
// its definition (system.WithTypes), else the follower's own registry
// (systems defined in one package usually share one).
func leaderTypes(sys *system.System, leader string, follower system.Application) (*eventsourcing.Types, error) {
	def, ok := sys.App(leader)
	if !ok {
		return nil, fmt.Errorf("grpcapp: %w: leader %q", system.ErrAppNotFound, leader)
	}
	if fn := def.TypesFunc(); fn != nil {
		return fn(), nil
	}
	if follower != nil && !isNil(follower) {
		return follower.Types(), nil
	}
	return nil, fmt.Errorf("grpcapp: %w: the event types of %q are unknown here; define it with system.WithTypes", config.ErrConfiguration, leader)
}

func isNil(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}
