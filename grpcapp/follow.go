package grpcapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/system"
)

// Followers over gRPC. A follower subscribes to each leader's notification
// stream from its last tracked position and hands what arrives to
// system.Follower.PullAndProcess through streamSource, a NotificationSource
// that answers from the stream's buffer. So the pull-and-process code (decode,
// policy, atomic write with tracking) is the system package's, and delivery is
// at-least-once while effects are exactly-once: a notification delivered twice
// (by the stream and by a periodic pull) is dropped by position, and one
// processed twice would fail on its tracking record and commit nothing.

// DefaultMaxFailures is how many consecutive processing failures of one
// leader's notification a follower retries (with backoff) before it parks
// that leader and reports the error.
const DefaultMaxFailures = 5

// maxBuffered bounds what a stream buffers ahead of processing.
const maxBuffered = 10000

// streamSource serves a follower's selects from a leader's notification
// stream, and from the leader's log (a remote select) when the stream cannot.
type streamSource struct {
	leader string
	log    *LogProxy
	topics []string

	mu     sync.Mutex
	buf    []recorder.Notification
	from   int64 // the stream delivers every notification after from
	broken bool  // the stream ended for good: pull remotely
	space  chan struct{}

	dirty    atomic.Bool // something to process
	forced   atomic.Bool // the next empty buffer read pulls remotely
	failures int
	parked   bool
}

// SelectNotifications implements system.NotificationSource.
func (s *streamSource) SelectNotifications(ctx context.Context, q recorder.NotificationQuery) ([]recorder.Notification, error) {
	var after int64
	if q.Start != nil {
		after = *q.Start
		if !q.ExclusiveStart {
			after--
		}
	}
	s.mu.Lock()
	// Drop what the follower has already processed.
	i := 0
	for i < len(s.buf) && s.buf[i].ID <= after {
		i++
	}
	if i > 0 {
		s.buf = append(s.buf[:0:0], s.buf[i:]...)
		s.from = max(s.from, after)
		select {
		case s.space <- struct{}{}:
		default:
		}
	}
	covered := !s.broken && after >= s.from && q.Stop == nil
	if covered && (len(s.buf) > 0 || !s.forced.Load()) {
		n := min(q.Limit, len(s.buf))
		page := make([]recorder.Notification, n)
		copy(page, s.buf)
		s.mu.Unlock()
		return page, nil
	}
	s.mu.Unlock()
	s.forced.Store(false)
	return s.log.Select(ctx, q)
}

// pump moves the stream's batches into the buffer and wakes the follower.
func (s *streamSource) pump(ctx context.Context, sub *Subscription, wake func(), logger *slog.Logger) {
	defer sub.Close()
	for {
		ns, err := sub.NextBatch(ctx)
		if err != nil {
			if ctx.Err() == nil {
				logger.Warn("notification stream ended; pulling instead", "leader", s.leader, "error", err)
				s.mu.Lock()
				s.broken = true
				s.mu.Unlock()
				s.dirty.Store(true)
				s.forced.Store(true)
				wake()
			}
			return
		}
		for {
			s.mu.Lock()
			full := len(s.buf) >= maxBuffered
			if !full {
				s.buf = append(s.buf, ns...)
			}
			s.mu.Unlock()
			if !full {
				break
			}
			// Back-pressure: wait until the follower consumes.
			select {
			case <-s.space:
			case <-ctx.Done():
				return
			}
		}
		s.dirty.Store(true)
		wake()
	}
}

// remoteFollower runs one application's system.Follower against leaders
// served by other servers.
type remoteFollower struct {
	f        *system.Follower
	sources  []*streamSource
	clients  []*Client
	interval time.Duration
	logger   *slog.Logger
	report   func(error)
	wakeCh   chan struct{}
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

func (w *remoteFollower) wake() {
	select {
	case w.wakeCh <- struct{}{}:
	default:
	}
}

// start subscribes to every leader from the follower's tracked position and
// starts the processing loop.
func (w *remoteFollower) start(ctx context.Context) error {
	pr, _ := w.f.App().ProcessRecorder()
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel = cancel
	for _, s := range w.sources {
		last, ok, err := pr.MaxTrackingID(ctx, s.leader)
		if err != nil {
			cancel()
			return fmt.Errorf("follower %s: tracking position of %s: %w", w.f.App().Name(), s.leader, err)
		}
		var after *int64
		if ok {
			after = &last
			s.from = last
		}
		sub, err := s.log.Subscribe(runCtx, after, s.topics)
		if err != nil {
			cancel()
			return err
		}
		w.wg.Go(func() { s.pump(runCtx, sub, w.wake, w.logger) })
	}
	w.wg.Go(func() { w.run(runCtx) })
	return nil
}

func (w *remoteFollower) stop(context.Context) error {
	if w.cancel != nil {
		w.cancel()
	}
	w.wg.Wait()
	var errs []error
	for _, c := range w.clients {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

func (w *remoteFollower) run(ctx context.Context) {
	var tick <-chan time.Time
	if w.interval > 0 {
		t := time.NewTicker(w.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wakeCh:
		case <-tick:
			// The safety net: pull each leader's log even if its stream
			// is quiet, in case the stream missed something.
			for _, s := range w.sources {
				s.forced.Store(true)
				s.dirty.Store(true)
			}
		}
		for _, s := range w.sources {
			if s.parked || !s.dirty.Swap(false) {
				continue
			}
			_, err := w.f.PullAndProcess(ctx, s.leader)
			if err == nil {
				s.failures = 0
				continue
			}
			if ctx.Err() != nil {
				return
			}
			w.retryLater(ctx, s, err)
		}
	}
}

// retryLater handles a failed pull: a leader that is unreachable is retried
// with backoff for as long as it takes; any other failure is retried a few
// times with backoff, then the leader is parked and the error reported, so
// that a poisoned event neither stalls silently nor spins.
func (w *remoteFollower) retryLater(ctx context.Context, s *streamSource, err error) {
	var pe *system.PullingError
	unreachable := errors.As(err, &pe) && (errors.Is(err, ErrUnavailable) || errors.Is(err, ErrDeadlineExceeded))
	if !unreachable {
		s.failures++
		if s.failures >= DefaultMaxFailures {
			s.parked = true
			w.logger.Error("follower parked a leader after repeated failures", "leader", s.leader, "failures", s.failures, "error", err)
			w.report(err)
			return
		}
	}
	delay := min(DefaultBackoffMin<<min(s.failures, 5), DefaultBackoffMax)
	if unreachable {
		delay = DefaultBackoffMax
	}
	w.logger.Warn("follower will retry", "leader", s.leader, "in", delay, "error", err)
	s.forced.Store(true)
	time.AfterFunc(delay, func() {
		if ctx.Err() == nil {
			s.dirty.Store(true)
			w.wake()
		}
	})
}

// NewSystemServer builds the named application of sys with env (overrides
// of the process environment) and returns a server for it that, while
// started, also follows the application's leaders in sys over gRPC: their
// addresses are <LEADER>_GRPC_SERVER_ADDRESS, and the TLS files are this
// process's. The server owns the application and closes it on Stop.
func NewSystemServer(ctx context.Context, sys *system.System, name string, env map[string]string, opts ...ServerOption) (*Server, error) {
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
		// Registered first, so stopped last: after the follower's loop.
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
	f.SetPageSize(DefaultMaxSelectLimit)
	cfg, err := ConfigFromEnv(app.Env())
	if err != nil {
		return fail(err)
	}
	w := &remoteFollower{
		f: f, interval: cfg.MaxPullInterval, logger: s.logger.With("follower", name),
		report: s.reportErr, wakeCh: make(chan struct{}, 1),
	}
	envOf := app.Env()
	for _, leader := range leaders {
		addr, err := AddressOf(envOf, leader)
		if err != nil {
			return fail(fmt.Errorf("grpcapp: %s follows %s: %w", name, leader, err))
		}
		types, err := leaderTypes(sys, leader, app)
		if err != nil {
			return fail(err)
		}
		m, err := system.LeaderMapper(pa, leader, types)
		if err != nil {
			return fail(fmt.Errorf("grpcapp: %w", err))
		}
		// A follower's selects give up quickly: the stream, which waits
		// for the leader by itself, and the retry loop do the waiting.
		c, err := NewClient(addr, WithTLS(cfg.TLS), WithTypes(types), WithMaxAttempts(2),
			WithClientLogger(w.logger))
		if err != nil {
			return fail(fmt.Errorf("grpcapp: %s follows %s: %w", name, leader, err))
		}
		w.clients = append(w.clients, c)
		src := &streamSource{leader: leader, log: c.Log(), topics: def.Topics(), space: make(chan struct{}, 1)}
		w.sources = append(w.sources, src)
		if err := f.Follow(system.Upstream{Name: leader, Source: src, Mapper: m, Topics: def.Topics()}); err != nil {
			return fail(fmt.Errorf("grpcapp: %w", err))
		}
	}
	s.onLifecycle(w.start, w.stop)
	return s, nil
}

// leaderTypes returns a leader's type registry: from the registry of
// applications when it is registered (no construction), else the follower's
// own registry when the leader's topics are in it.
func leaderTypes(sys *system.System, leader string, follower system.Application) (*eventsourcing.Types, error) {
	if r, ok := appByName(leader); ok && r.Types != nil {
		return r.Types(), nil
	}
	if _, ok := sys.App(leader); !ok {
		return nil, fmt.Errorf("grpcapp: %w: leader %q", system.ErrAppNotFound, leader)
	}
	// Unregistered: assume the system shares its follower's registry, as
	// systems defined in one package usually do.
	return follower.Types(), nil
}
