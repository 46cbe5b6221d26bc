// Package follow is the one consumption loop of the project: it follows an
// upstream application's notification log from a tracked position and hands
// each event to a handler that records its effects together with the
// tracking record, atomically. Process applications (new events + tracking)
// and projections (view update + tracking) both run on it, in process and
// over gRPC.
//
// A Follower reads pages while it is behind, then keeps one live
// subscription open while it is caught up; when the subscription drops it
// goes back to pages from the last position it processed and subscribes
// again, after an exponential, jittered, capped backoff. The topic filter is
// passed to the source, so a backend that can filter (SQL, EventStoreDB's
// server-side filter) sends only what the follower wants.
//
// Positions of events the handler ignores, and of events the filter drops,
// are recorded too, coalesced: at most one tracking write per CheckpointEvery
// events or CheckpointInterval while behind, and at once when a page ends or
// the follower is caught up. So waiting for any upstream id returns.
//
// Failures follow one explicit policy. Errors of the infrastructure (the
// source or the tracking store unreachable: Retryable) are retried with
// backoff, and Status shows BackingOff with the error. A handler error or an
// undecodable event stops the follower (Failed, with a *ProcessingError),
// unless SkipFailed is set: then the event is recorded as a DeadLetter,
// shown by Status and passed to OnSkip, and the follower moves on. Nothing is
// skipped silently.
package follow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/internal/ctxtime"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/telemetry"
)

// Source is an upstream's notification log as a follower reads it. Every
// recorder.ApplicationRecorder is one; grpcapp's remote log is another.
type Source interface {
	SelectNotifications(ctx context.Context, q recorder.NotificationQuery) ([]recorder.Notification, error)
	Subscribe(ctx context.Context, after recorder.Position, topics []string) (recorder.Subscription, error)
	MaxNotificationID(ctx context.Context) (int64, bool, error)
}

// sparseIDs is implemented by sources whose notification ids are positions
// rather than counts (EventStoreDB's commit positions), so that lag is
// reported in positions instead of events.
type sparseIDs interface{ SparseNotificationIDs() bool }

// Handler makes something of one upstream event: Handle records the event's
// effects together with t in one atomic write and reports recorded=true, or
// records nothing and reports false (the follower then records t itself,
// coalesced with other ignored positions).
type Handler interface {
	Handle(ctx context.Context, e eventsourcing.Event, t recorder.Tracking) (recorded bool, err error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, e eventsourcing.Event, t recorder.Tracking) (bool, error)

// Handle implements Handler.
func (f HandlerFunc) Handle(ctx context.Context, e eventsourcing.Event, t recorder.Tracking) (bool, error) {
	return f(ctx, e, t)
}

// Tracker is where the follower's position is kept: the handler's own
// tracking recorder (a process recorder, a view).
type Tracker interface {
	MaxTrackingID(ctx context.Context, applicationName string) (int64, bool, error)
	InsertTracking(ctx context.Context, t recorder.Tracking) error
}

// Batcher is implemented by trackers that can commit several events in one
// transaction (the SQL views). The follower batches only what it has read at
// once (a page, a burst), and retries a failed batch event by event so that
// the events before a failing one are still recorded.
type Batcher interface {
	Batch(ctx context.Context, fn func(ctx context.Context) error) error
}

// Defaults of Config.
const (
	DefaultPageSize           = 500
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = 100 * time.Millisecond
	DefaultBackoffMin         = 50 * time.Millisecond
	DefaultBackoffMax         = 5 * time.Second
	DefaultProgressInterval   = 5 * time.Second
	maxDeadLetters            = 100
)

// Config configures a Follower. Name, Upstream, Source, Mapper, Handler and
// Tracker are required.
type Config struct {
	// Name names the follower (logs, Status).
	Name string
	// Upstream is the upstream application's name, which tracking records carry.
	Upstream string
	Source   Source
	// Mapper decodes the upstream's stored events.
	Mapper  *eventsourcing.Mapper
	Handler Handler
	Tracker Tracker
	// Topics restricts the events read (nil: all). The filter is passed to
	// the source and checked again on what it returns.
	Topics []string
	// HandledTopics, when not empty, are the only topics the handler makes
	// something of: the source still reads every notification, but those
	// of other topics are neither decoded nor handed to the handler, and
	// their positions are recorded as ignored events' are (coalesced).
	// Unlike Topics it needs no read of the upstream's head per page.
	HandledTopics []string
	// PageSize is how many notifications a page reads (and a batch holds).
	PageSize int
	// CheckpointEvery and CheckpointInterval bound how many ignored events,
	// and for how long, go without a tracking write while behind.
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// BackoffMin and BackoffMax bound the jittered exponential backoff of
	// retries and resubscriptions.
	BackoffMin, BackoffMax time.Duration
	// Retryable classifies errors of the infrastructure, retried with
	// backoff; nil means DefaultRetryable.
	Retryable func(error) bool
	// SkipFailed makes handler and decoding failures dead letters instead of
	// stopping the follower.
	SkipFailed bool
	// OnSkip, when set, is told of every dead letter (to keep it in a table
	// or stream); its error stops the follower.
	OnSkip func(ctx context.Context, d DeadLetter) error
	// ProgressInterval is how often a catching-up follower logs its
	// progress (position, head, rate, ETA).
	ProgressInterval time.Duration
	Logger           *slog.Logger
	// Telemetry chooses the OpenTelemetry providers of the follower's
	// processing spans and metrics (package telemetry); nil fields mean the
	// global providers as they are when New runs.
	Telemetry telemetry.Providers
}

// DefaultRetryable reports errors of the infrastructure: operational
// database errors (a connection lost, a lock timeout), deadlines, and
// subscriptions closed under the follower.
func DefaultRetryable(err error) bool {
	return errors.Is(err, recorder.ErrOperational) || errors.Is(err, recorder.ErrInterface) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, recorder.ErrSubscriptionClosed) ||
		errors.Is(err, ErrRetry)
}

// ErrRetry may be wrapped by a Handler or Source error to mark it retryable
// whatever its kind.
var ErrRetry = errors.New("retry later")

// ProcessingError reports that a follower could not process an upstream
// notification: the handler failed, or the event could not be decoded.
// Nothing of that notification was recorded.
type ProcessingError struct {
	Follower       string
	Upstream       string
	NotificationID int64
	Err            error
}

func (e *ProcessingError) Error() string {
	return fmt.Sprintf("%s processing notification %d of %s: %v", e.Follower, e.NotificationID, e.Upstream, e.Err)
}

func (e *ProcessingError) Unwrap() error { return e.Err }

// DeadLetter is an event a follower skipped (SkipFailed) and why.
type DeadLetter struct {
	NotificationID    int64
	OriginatorID      string
	OriginatorVersion int64
	Topic             string
	Err               string
	At                time.Time
}

// Follower follows one upstream. Run runs it until its context ends;
// CatchUp processes what is there now and returns (the single-threaded
// runner's pull). Both may be used on one follower; processing is serialised.
type Follower struct {
	cfg    Config
	logger *slog.Logger
	tel    *telemetry.Follower // nil unless telemetry is configured

	mu sync.Mutex // serialises processing; guards the fields below
	// loaded is set once the tracked position has been read.
	loaded bool
	// pos is the last position recorded (by the handler or a checkpoint).
	pos    int64
	hasPos bool
	// done is the last position processed; done >= pos, and the positions
	// in (pos, done] were ignored or filtered and await a checkpoint.
	done           int64
	hasDone        bool
	pendingCount   int
	pendingSince   time.Time
	lastRecordedIn int64 // the last position the handler recorded in the current batch

	restart chan struct{} // Reset asks the live loop to start over
	gen     int           // counts Resets; guarded by mu

	state     atomic.Int32
	processed atomic.Uint64
	subs      atomic.Int64

	smu       sync.Mutex // guards the status fields below
	head      int64
	hasHead   bool
	lastErr   error
	dead      []DeadLetter
	deadTotal int // dead letters recorded since the start, for restore
	rateAt    time.Time
	rateCount uint64
	rate      float64
	statusPos int64
	statusHas bool
}

// New returns a follower; nothing is read until Run or CatchUp.
func New(cfg Config) (*Follower, error) {
	if cfg.Name == "" || cfg.Upstream == "" || cfg.Source == nil || cfg.Mapper == nil || cfg.Handler == nil || cfg.Tracker == nil {
		return nil, fmt.Errorf("follow: %w: a follower needs a name, an upstream name, a source, a mapper, a handler and a tracker", config.ErrConfiguration)
	}
	cfg.Topics = slices.Clone(cfg.Topics)
	cfg.HandledTopics = slices.Clone(cfg.HandledTopics)
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = DefaultCheckpointEvery
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = max(DefaultBackoffMax, cfg.BackoffMin)
	}
	if cfg.Retryable == nil {
		cfg.Retryable = DefaultRetryable
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	f := &Follower{cfg: cfg, logger: logger.With("follower", cfg.Name, "upstream", cfg.Upstream), restart: make(chan struct{}, 1)}
	f.state.Store(int32(Idle))
	f.instrument()
	return f, nil
}

// Name returns the follower's name.
func (f *Follower) Name() string { return f.cfg.Name }

// Upstream returns the upstream application's name.
func (f *Follower) Upstream() string { return f.cfg.Upstream }

// Topics returns the follower's topic filter.
func (f *Follower) Topics() []string { return slices.Clone(f.cfg.Topics) }

// errFatal marks errors that end Run.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func fatal(err error) error {
	var fe *fatalError
	if err == nil || errors.As(err, &fe) {
		return err
	}
	return &fatalError{err}
}

func isFatal(err error) bool {
	var fe *fatalError
	return errors.As(err, &fe)
}

// Run follows the upstream until ctx ends (it then returns nil) or a
// failure that is not retried (it returns it, and Status shows Failed).
func (f *Follower) Run(ctx context.Context) error {
	attempt := 0
	for {
		progressed, err := f.runOnce(ctx)
		if errors.Is(err, errRestart) {
			attempt = 0
			continue
		}
		if ctx.Err() != nil {
			f.state.Store(int32(Stopped))
			return nil
		}
		if isFatal(err) {
			err = errors.Unwrap(err)
			f.setErr(err)
			f.state.Store(int32(Failed))
			f.logger.Error("follower failed", "error", err)
			return err
		}
		if progressed {
			attempt = 0
		}
		attempt++
		d := backoff(f.cfg.BackoffMin, f.cfg.BackoffMax, attempt)
		f.setErr(err)
		f.state.Store(int32(BackingOff))
		// One line per retry while the backoff grows, then one in ten:
		// an outage should not flood the log.
		if attempt <= 5 || attempt%10 == 0 {
			f.logger.Warn("follower will retry", "in", d, "attempt", attempt, "error", err)
		}
		if !ctxtime.Sleep(ctx, d) {
			f.state.Store(int32(Stopped))
			return nil
		}
	}
}

// backoff is the jittered exponential delay of the given attempt (from 1):
// a random duration in [d/2, d], where d doubles from lo up to hi.
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	d := lo << min(attempt-1, 20)
	if d > hi || d <= 0 {
		d = hi
	}
	return d/2 + rand.N(d/2+1)
}

// runOnce catches up and then follows live, until an error. It reports
// whether it processed anything, so that a retry after progress starts its
// backoff afresh.
func (f *Follower) runOnce(ctx context.Context) (progressed bool, err error) {
	before := f.processed.Load()
	defer func() { progressed = f.processed.Load() != before }()
	f.state.Store(int32(CatchingUp))
	if _, err := f.CatchUp(ctx); err != nil {
		return false, err
	}
	return false, f.live(ctx)
}

// CatchUp processes the upstream's notifications after the follower's
// position, page by page, until a page comes back short; then it records
// the position of what it ignored. It returns how many notifications it
// handed to the handler.
func (f *Follower) CatchUp(ctx context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.load(ctx); err != nil {
		return 0, err
	}
	handled := 0
	lastLog, logPos, logCount := time.Now(), f.done, f.processed.Load()
	filtered := len(f.cfg.Topics) > 0
	for first, second := true, false; ; first, second = false, first {
		// A filtered follower reads the head before each page: when the
		// page comes back short, every wanted notification up to the head
		// has been seen, so the head is a position it may record. Without
		// a filter a short page ends at the head itself, which is then the
		// head shown, and the head is read only for progress: after a first
		// page that came back full, and at each progress line. A pull that
		// finds a few new notifications (a single-threaded runner's, after
		// each save) then reads once, not twice.
		var head int64
		var hasHead bool
		if filtered || second || (!first && time.Since(lastLog) >= f.cfg.ProgressInterval) {
			var err error
			if head, hasHead, err = f.cfg.Source.MaxNotificationID(ctx); err != nil {
				return handled, f.sourceErr("read head", err)
			}
			f.setHead(head, hasHead)
		}
		page, err := f.cfg.Source.SelectNotifications(ctx, recorder.NotificationQuery{After: f.resume(), Limit: f.cfg.PageSize, Topics: f.cfg.Topics})
		if err != nil {
			return handled, f.sourceErr("select notifications", err)
		}
		n, err := f.process(ctx, page)
		handled += n
		if err != nil {
			return handled, err
		}
		if len(page) < f.cfg.PageSize {
			if filtered && hasHead && (!f.hasDone || head > f.done) {
				f.ignore(head)
			}
			if !filtered {
				f.setHead(f.done, f.hasDone)
			}
			return handled, f.flush(ctx)
		}
		if time.Since(lastLog) >= f.cfg.ProgressInterval {
			f.logProgress(time.Since(lastLog), logPos, logCount)
			lastLog, logPos, logCount = time.Now(), f.done, f.processed.Load()
		}
	}
}

func (f *Follower) logProgress(elapsed time.Duration, fromPos int64, fromCount uint64) {
	f.smu.Lock()
	head := f.head
	f.smu.Unlock()
	secs := elapsed.Seconds()
	rate := float64(f.processed.Load()-fromCount) / secs
	speed := float64(f.done-fromPos) / secs // positions per second
	eta := "unknown"
	if speed > 0 && head > f.done {
		eta = (time.Duration(float64(head-f.done)/speed) * time.Second).Round(time.Second).String()
	}
	f.logger.Info("catching up", "position", f.done, "head", head, "rate", fmt.Sprintf("%.0f events/s", rate), "eta", eta)
}

// load reads the tracked position once.
func (f *Follower) load(ctx context.Context) error {
	if f.loaded {
		return nil
	}
	pos, ok, err := f.cfg.Tracker.MaxTrackingID(ctx, f.cfg.Upstream)
	if err != nil {
		return f.sourceErr("read tracking position", err)
	}
	f.pos, f.hasPos, f.done, f.hasDone, f.loaded = pos, ok, pos, ok, true
	f.publishPos()
	return nil
}

// sourceErr classifies an error of the infrastructure.
func (f *Follower) sourceErr(op string, err error) error {
	err = fmt.Errorf("%s: %s of %s: %w", f.cfg.Name, op, f.cfg.Upstream, err)
	if f.cfg.Retryable(err) {
		return err
	}
	return fatal(err)
}

// resume is the position after the last notification processed (or
// ignored): where reading goes on.
func (f *Follower) resume() recorder.Position {
	if !f.hasDone {
		return recorder.Start()
	}
	return recorder.After(f.done)
}

// live keeps one subscription open and processes what it delivers, in
// bursts, until the subscription fails or ctx ends.
func (f *Follower) live(ctx context.Context) error {
	f.mu.Lock()
	after := f.resume()
	gen := f.gen
	f.mu.Unlock()
	sub, err := f.cfg.Source.Subscribe(ctx, after, f.cfg.Topics)
	if err != nil {
		return f.sourceErr("subscribe", err)
	}
	f.subs.Add(1)
	f.state.Store(int32(Live))
	subCtx, cancel := context.WithCancel(ctx)
	items := make(chan liveItem, f.cfg.PageSize)
	var wg sync.WaitGroup
	wg.Go(func() { pump(subCtx, sub, items) })
	defer func() {
		cancel()
		_ = sub.Close()
		wg.Wait()
	}()
	tick := time.NewTicker(f.cfg.CheckpointInterval)
	defer tick.Stop()
	burst := make([]recorder.Notification, 0, f.cfg.PageSize)
	idleSince := time.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case it := <-items:
			burst = burst[:0]
			var subErr error
		drain:
			for {
				if it.err != nil {
					subErr = it.err
					break
				}
				burst = append(burst, it.n)
				if len(burst) == cap(burst) {
					break
				}
				select {
				case it = <-items:
				default:
					break drain
				}
			}
			if err := f.processLive(ctx, gen, burst, len(items) == 0); err != nil {
				return err
			}
			if subErr != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				f.logger.Warn("subscription dropped; resubscribing from the last position processed", "error", subErr)
				return fmt.Errorf("%s: subscription to %s: %w", f.cfg.Name, f.cfg.Upstream, errors.Join(subErr, ErrRetry))
			}
			idleSince = time.Now()
		case <-f.restart:
			return errRestart
		case <-tick.C:
			if err := f.idle(ctx, time.Since(idleSince) >= f.cfg.CheckpointInterval); err != nil {
				return err
			}
		}
	}
}

// errRestart ends a live loop after Reset, so that Run catches up afresh.
var errRestart = errors.New("restart")

// Reset runs fn (which empties the handler's results and its tracking
// records) while no event is being processed, then forgets the follower's
// position, so that it reads the upstream from the start again: a rebuild.
// A running follower closes its subscription and catches up.
func (f *Follower) Reset(ctx context.Context, fn func(ctx context.Context) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := fn(ctx); err != nil {
		return fmt.Errorf("%s: reset: %w", f.cfg.Name, err)
	}
	f.loaded, f.pos, f.hasPos, f.done, f.hasDone, f.pendingCount = false, 0, false, 0, false, 0
	f.gen++
	f.publishPos()
	select {
	case f.restart <- struct{}{}:
	default:
	}
	return nil
}

type liveItem struct {
	n   recorder.Notification
	err error
}

// pump moves a subscription's notifications into items until it fails.
func pump(ctx context.Context, sub recorder.Subscription, items chan<- liveItem) {
	for {
		n, err := sub.Next(ctx)
		if ctx.Err() != nil {
			return
		}
		select {
		case items <- liveItem{n: n, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

func (f *Follower) processLive(ctx context.Context, gen int, burst []recorder.Notification, caughtUp bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if gen != f.gen {
		return errRestart // reset since the subscription opened
	}
	if _, err := f.process(ctx, burst); err != nil {
		return err
	}
	if caughtUp {
		return f.flush(ctx)
	}
	return f.maybeFlush(ctx)
}

// idle runs on the checkpoint tick while live: it records ignored positions
// that are due, and, for a filtered follower idle for a tick, the head when
// nothing wanted lies between the follower's position and it, so that
// waiting for a filtered-out id returns.
func (f *Follower) idle(ctx context.Context, quiet bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pendingCount > 0 {
		return f.flush(ctx)
	}
	if !quiet || len(f.cfg.Topics) == 0 {
		// Without a filter the subscription delivers every position: there
		// is nothing the head could add.
		return nil
	}
	head, ok, err := f.cfg.Source.MaxNotificationID(ctx)
	if err != nil {
		return f.sourceErr("read head", err)
	}
	f.setHead(head, ok)
	if !ok || (f.hasDone && head <= f.done) {
		return nil
	}
	page, err := f.cfg.Source.SelectNotifications(ctx, recorder.NotificationQuery{After: f.resume(), Limit: 1, Topics: f.cfg.Topics})
	if err != nil {
		return f.sourceErr("select notifications", err)
	}
	if len(page) > 0 {
		return nil // the subscription is delivering it
	}
	f.ignore(head)
	return f.flush(ctx)
}

// process hands notifications to the handler, in one batch when the tracker
// batches and there are several. It returns how many it handed over.
func (f *Follower) process(ctx context.Context, ns []recorder.Notification) (int, error) {
	if b, ok := f.cfg.Tracker.(Batcher); ok && len(ns) > 1 {
		saved := f.snapshot()
		handled := 0
		err := b.Batch(ctx, func(bctx context.Context) error {
			f.lastRecordedIn = -1
			n, err := f.each(bctx, ns, false)
			handled = n
			if err != nil {
				return err
			}
			// Record the ignored tail in the same transaction.
			if f.pendingCount > 0 && f.done > f.lastRecordedIn {
				if err := f.cfg.Tracker.InsertTracking(bctx, recorder.Tracking{ApplicationName: f.cfg.Upstream, NotificationID: f.done}); err != nil {
					return err
				}
				f.pos, f.hasPos, f.pendingCount = f.done, true, 0
			}
			return nil
		})
		if err == nil {
			f.processed.Add(uint64(handled))
			f.publishPos()
			f.tel.Commit(ctx)
			return handled, nil
		}
		f.tel.Discard()
		if ctx.Err() != nil {
			f.restore(saved)
			return 0, ctx.Err()
		}
		// Nothing of the batch was recorded: go again one by one, so that
		// the events before a failing one are recorded and the error names
		// the event that failed.
		f.restore(saved)
	}
	n, err := f.each(ctx, ns, true)
	f.publishPos()
	return n, err
}

type snapshot struct {
	pos, done       int64
	hasPos, hasDone bool
	pendingCount    int
	pendingSince    time.Time
	deadTotal       int
}

func (f *Follower) snapshot() snapshot {
	f.smu.Lock()
	deadTotal := f.deadTotal
	f.smu.Unlock()
	return snapshot{f.pos, f.done, f.hasPos, f.hasDone, f.pendingCount, f.pendingSince, deadTotal}
}

// restore goes back to s after a failed batch, forgetting the dead letters
// of the batch too: the batch is done again event by event, and skips its
// failed events again.
func (f *Follower) restore(s snapshot) {
	f.pos, f.done, f.hasPos, f.hasDone, f.pendingCount, f.pendingSince = s.pos, s.done, s.hasPos, s.hasDone, s.pendingCount, s.pendingSince
	f.smu.Lock()
	f.dead = f.dead[:max(len(f.dead)-(f.deadTotal-s.deadTotal), 0)]
	f.deadTotal = s.deadTotal
	f.smu.Unlock()
}

// each processes notifications one at a time. With count, it counts them
// as processed as it goes (outside a batch).
func (f *Follower) each(ctx context.Context, ns []recorder.Notification, count bool) (int, error) {
	handled := 0
	for _, n := range ns {
		if f.hasDone && n.ID <= f.done {
			continue // delivered twice (a source overlapping itself)
		}
		if !recorder.MatchTopic(f.cfg.Topics, n.Topic) || !recorder.MatchTopic(f.cfg.HandledTopics, n.Topic) {
			f.ignore(n.ID)
			continue
		}
		recorded, err := f.handleObserved(ctx, n, !count)
		if err != nil {
			return handled, err
		}
		handled++
		if count {
			f.processed.Add(1)
		}
		if recorded {
			f.pos, f.hasPos, f.done, f.hasDone, f.pendingCount = n.ID, true, n.ID, true, 0
			f.lastRecordedIn = n.ID
		} else {
			f.ignore(n.ID)
		}
		if count {
			if err := f.maybeFlush(ctx); err != nil {
				return handled, err
			}
		}
	}
	return handled, nil
}

// handle decodes n and hands it to the handler. A failure is retried (an
// infrastructure error), skipped as a dead letter (SkipFailed) or fatal.
func (f *Follower) handle(ctx context.Context, n recorder.Notification) (bool, error) {
	e, err := f.cfg.Mapper.ToEvent(n.StoredEvent)
	if err != nil {
		return f.failed(ctx, n, fmt.Errorf("decode: %w", err))
	}
	recorded, err := f.cfg.Handler.Handle(ctx, e, recorder.Tracking{ApplicationName: f.cfg.Upstream, NotificationID: n.ID})
	if err == nil {
		return recorded, nil
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if f.cfg.Retryable(err) {
		return false, fmt.Errorf("%s: notification %d of %s: %w", f.cfg.Name, n.ID, f.cfg.Upstream, err)
	}
	return f.failed(ctx, n, err)
}

func (f *Follower) failed(ctx context.Context, n recorder.Notification, err error) (bool, error) {
	perr := &ProcessingError{Follower: f.cfg.Name, Upstream: f.cfg.Upstream, NotificationID: n.ID, Err: err}
	if !f.cfg.SkipFailed {
		return false, fatal(perr)
	}
	d := DeadLetter{NotificationID: n.ID, OriginatorID: n.OriginatorID, OriginatorVersion: n.OriginatorVersion,
		Topic: n.Topic, Err: err.Error(), At: time.Now()}
	f.logger.Error("skipped a failed event (dead letter)", "notification_id", n.ID, "topic", n.Topic, "error", err)
	if f.cfg.OnSkip != nil {
		if err := f.cfg.OnSkip(ctx, d); err != nil {
			return false, fatal(fmt.Errorf("%s: record dead letter %d: %w", f.cfg.Name, n.ID, err))
		}
	}
	f.smu.Lock()
	f.dead = append(f.dead, d)
	f.deadTotal++
	if len(f.dead) > maxDeadLetters {
		f.dead = slices.Delete(f.dead, 0, len(f.dead)-maxDeadLetters)
	}
	f.smu.Unlock()
	return false, nil
}

// ignore moves the processed position to id without a write yet.
func (f *Follower) ignore(id int64) {
	if f.hasDone && id <= f.done {
		return
	}
	if f.pendingCount == 0 {
		f.pendingSince = time.Now()
	}
	f.done, f.hasDone = id, true
	f.pendingCount++
}

func (f *Follower) maybeFlush(ctx context.Context) error {
	if f.pendingCount == 0 {
		return nil
	}
	if f.pendingCount >= f.cfg.CheckpointEvery || time.Since(f.pendingSince) >= f.cfg.CheckpointInterval {
		return f.flush(ctx)
	}
	return nil
}

// flush records the processed position when it is ahead of the recorded one.
func (f *Follower) flush(ctx context.Context) error {
	if f.pendingCount == 0 || (f.hasPos && f.done <= f.pos) {
		f.pendingCount = 0
		return nil
	}
	t := recorder.Tracking{ApplicationName: f.cfg.Upstream, NotificationID: f.done}
	if err := f.cfg.Tracker.InsertTracking(ctx, t); err != nil {
		return f.sourceErr("record position", err)
	}
	f.pos, f.hasPos, f.pendingCount = f.done, true, 0
	f.publishPos()
	return nil
}

func (f *Follower) publishPos() {
	f.smu.Lock()
	f.statusPos, f.statusHas = f.pos, f.hasPos
	f.smu.Unlock()
}

func (f *Follower) setHead(head int64, ok bool) {
	f.smu.Lock()
	f.head, f.hasHead = head, ok
	f.smu.Unlock()
}

func (f *Follower) setErr(err error) {
	f.smu.Lock()
	f.lastErr = err
	f.smu.Unlock()
}
