package projection

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// DefaultPageSize is how many notifications the runner reads at once when it
// is behind; with a Batcher view, that is also the largest batch.
const DefaultPageSize = 500

// NewAppFunc builds the upstream application from settings (overrides of the
// process environment).
type NewAppFunc[A Upstream] func(ctx context.Context, env map[string]string) (A, error)

// Option configures a Runner.
type Option func(*options)

type options struct{ pageSize int }

// WithPageSize sets how many notifications the runner reads (and batches) at once.
func WithPageSize(n int) Option { return func(o *options) { o.pageSize = max(n, 1) } }

// Runner runs a projection: it reads the upstream application's notifications
// after the view's last tracked position, with the projection's topics,
// decodes them and passes them to the projection, in order, until stopped.
// When it is behind it reads pages and, with a Batcher view, processes a page
// in one transaction; when it has caught up it waits on a subscription.
//
// A processing error stops the runner: Err, Errored and Stop report it, and
// Wait returns it. The runner never closes the view, which the caller owns.
type Runner[A Upstream] struct {
	newApp  NewAppFunc[A]
	env     map[string]string
	app     A
	ownsApp bool
	proj    Projection
	view    View
	opts    options

	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	done    chan struct{} // closed when the processing goroutine ends
	halt    chan struct{} // closed by Stop

	errMu   sync.Mutex
	err     error
	errored chan struct{}

	stopOnce sync.Once
	stopErr  error
}

// NewRunner returns a runner that builds its own upstream application with
// newApp and env when started, and closes it when stopped. With the memory
// persistence module, write through the runner's application (App), since
// another instance would have its own store.
func NewRunner[A Upstream](newApp NewAppFunc[A], p Projection, view View, env map[string]string, opts ...Option) *Runner[A] {
	r := newRunner[A](p, view, opts)
	r.newApp, r.env, r.ownsApp = newApp, env, true
	return r
}

// NewRunnerFor returns a runner that reads an application the caller already
// has (and keeps: the runner does not close it).
func NewRunnerFor[A Upstream](app A, p Projection, view View, opts ...Option) *Runner[A] {
	r := newRunner[A](p, view, opts)
	r.app = app
	return r
}

func newRunner[A Upstream](p Projection, view View, opts []Option) *Runner[A] {
	o := options{pageSize: DefaultPageSize}
	for _, opt := range opts {
		opt(&o)
	}
	return &Runner[A]{proj: p, view: view, opts: o, done: make(chan struct{}), halt: make(chan struct{}), errored: make(chan struct{})}
}

// Start builds the upstream application (NewRunner), reads the view's
// position and starts processing in a goroutine. ctx bounds the start-up
// only; processing runs until Stop. A second Start returns ErrAlreadyStarted.
func (r *Runner[A]) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.started:
		return ErrAlreadyStarted
	case r.stopped:
		return ErrStopped
	}
	r.started = true
	if r.ownsApp {
		app, err := r.newApp(ctx, r.env)
		if err != nil {
			close(r.done)
			return fmt.Errorf("projection %s: build application: %w", r.proj.Name(), err)
		}
		r.app = app
	}
	last, ok, err := r.view.MaxTrackingID(ctx, r.app.Name())
	if err != nil {
		close(r.done)
		err = fmt.Errorf("projection %s: read position: %w", r.proj.Name(), err)
		if r.ownsApp {
			err = errors.Join(err, r.app.Close())
		}
		return err
	}
	var after *int64
	if ok {
		after = &last
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	go r.run(runCtx, after)
	return nil
}

// App returns the upstream application (the zero A before Start with NewRunner).
func (r *Runner[A]) App() A {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.app
}

// View returns the view.
func (r *Runner[A]) View() View { return r.view }

// Err returns the processing error that stopped the runner, or nil.
func (r *Runner[A]) Err() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

// Errored returns a channel that is closed when processing fails.
func (r *Runner[A]) Errored() <-chan struct{} { return r.errored }

func (r *Runner[A]) setErr(err error) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if r.err == nil {
		r.err = err
		close(r.errored)
	}
}

// Wait returns when the view has processed the upstream notification id
// (recorder.ErrTimeout after timeout). When processing fails first, it returns
// the processing error; when the runner is stopped first, ErrStopped.
func (r *Runner[A]) Wait(ctx context.Context, notificationID int64, timeout time.Duration) error {
	r.mu.Lock()
	started, app := r.started, r.app
	r.mu.Unlock()
	if !started {
		return ErrNotStarted
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-r.errored:
		case <-r.halt:
		case <-ctx.Done():
		}
		cancel()
	}()
	err := r.view.Wait(ctx, app.Name(), notificationID, timeout)
	if err != nil && errors.Is(err, recorder.ErrWaitInterrupted) {
		if perr := r.Err(); perr != nil {
			return perr
		}
		select {
		case <-r.halt:
			return ErrStopped
		default:
		}
	}
	return err
}

// Stop stops processing, waits for it to end, closes the application the
// runner built, and returns the processing error if there was one (else the
// close error). It is idempotent.
func (r *Runner[A]) Stop() error {
	r.stopOnce.Do(func() {
		r.mu.Lock()
		r.stopped = true
		started := r.started
		r.mu.Unlock()
		close(r.halt)
		if !started {
			return
		}
		if r.cancel != nil {
			r.cancel()
		}
		<-r.done
		var closeErr error
		if r.ownsApp && r.cancel != nil {
			closeErr = r.app.Close()
		}
		r.stopErr = r.Err()
		if r.stopErr == nil && closeErr != nil {
			r.stopErr = fmt.Errorf("projection %s: close application: %w", r.proj.Name(), closeErr)
		}
	})
	return r.stopErr
}

// Close is Stop, for defer and io.Closer.
func (r *Runner[A]) Close() error { return r.Stop() }

func (r *Runner[A]) run(ctx context.Context, after *int64) {
	defer close(r.done)
	name := r.app.Name()
	rec := r.app.Recorder()
	topics := r.proj.Topics()
	fail := func(err error) {
		if ctx.Err() == nil {
			r.setErr(err)
		}
	}
	for {
		q := recorder.NotificationQuery{Start: after, ExclusiveStart: true, Limit: r.opts.pageSize, Topics: topics}
		page, err := rec.SelectNotifications(ctx, q)
		if err != nil {
			fail(fmt.Errorf("projection %s: select notifications of %s: %w", r.proj.Name(), name, err))
			return
		}
		if len(page) == 0 {
			// Caught up: block until the next notification. The subscription
			// only wakes us; pages are read again afterwards, so that a burst
			// is batched.
			n, err := r.next(ctx, rec, after, topics)
			if err != nil {
				fail(fmt.Errorf("projection %s: subscription to %s: %w", r.proj.Name(), name, err))
				return
			}
			page = append(page, n)
		}
		if err := r.process(ctx, name, page); err != nil {
			fail(err)
			return
		}
		last := page[len(page)-1].ID
		after = &last
	}
}

func (r *Runner[A]) next(ctx context.Context, rec recorder.ApplicationRecorder, after *int64, topics []string) (recorder.Notification, error) {
	sub, err := rec.Subscribe(ctx, after, topics)
	if err != nil {
		return recorder.Notification{}, err
	}
	defer sub.Close()
	return sub.Next(ctx)
}

type item struct {
	event    eventsourcing.Event
	tracking recorder.Tracking
}

// process passes a page to the projection: in one transaction when the view
// batches, else (or when the batch fails) event by event.
func (r *Runner[A]) process(ctx context.Context, name string, page []recorder.Notification) error {
	mapper := r.app.Mapper()
	items := make([]item, 0, len(page))
	for _, n := range page {
		if !recorder.MatchTopic(r.proj.Topics(), n.Topic) {
			continue
		}
		e, err := mapper.ToEvent(n.StoredEvent)
		if err != nil {
			// Process what precedes the undecodable event, then report it.
			if perr := r.processItems(ctx, items); perr != nil {
				return perr
			}
			return &ProcessingError{Projection: r.proj.Name(), Application: name, NotificationID: n.ID, Err: err}
		}
		items = append(items, item{event: e, tracking: recorder.Tracking{ApplicationName: name, NotificationID: n.ID}})
	}
	return r.processItems(ctx, items)
}

func (r *Runner[A]) processItems(ctx context.Context, items []item) error {
	if b, ok := r.view.(Batcher); ok && len(items) > 1 {
		err := b.Batch(ctx, func(ctx context.Context) error {
			for _, it := range items {
				if err := r.proj.Process(ctx, it.event, it.tracking); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil || ctx.Err() != nil {
			return err
		}
		// Nothing of the batch was recorded: go again one by one, so that
		// the events before the failing one are recorded and the error names
		// the event that failed.
	}
	for _, it := range items {
		if err := r.proj.Process(ctx, it.event, it.tracking); err != nil {
			return &ProcessingError{Projection: r.proj.Name(), Application: it.tracking.ApplicationName,
				NotificationID: it.tracking.NotificationID, Err: err}
		}
	}
	return nil
}
