package projection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/internal/lifecycle"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// NewAppFunc builds the upstream application from settings (overrides of the
// process environment).
type NewAppFunc[A Upstream] func(ctx context.Context, env map[string]string) (A, error)

// Runner runs a projection of one application on its own, in this process:
// a Follower with a lifecycle. It reads pages while behind (one transaction
// per page with a Batcher view), then keeps one subscription open while
// caught up. Within a system, add the projection to the system instead
// (system.NewProjection), and every runner runs it.
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
	opts    []Option

	lc lifecycle.Lifecycle
	f  *Follower
}

// NewRunner returns a runner that builds its own upstream application with
// newApp and env when started, and closes it when stopped. With the memory
// persistence module, write through the runner's application (App), since
// another instance would have its own store.
func NewRunner[A Upstream](newApp NewAppFunc[A], p Projection, view View, env map[string]string, opts ...Option) *Runner[A] {
	return &Runner[A]{newApp: newApp, env: env, ownsApp: true, proj: p, view: view, opts: opts}
}

// NewRunnerFor returns a runner that reads an application the caller already
// has (and keeps: the runner does not close it).
func NewRunnerFor[A Upstream](app A, p Projection, view View, opts ...Option) *Runner[A] {
	return &Runner[A]{app: app, proj: p, view: view, opts: opts}
}

// Start builds the upstream application (NewRunner) and starts following it
// in a goroutine. ctx bounds the start-up only; processing runs until Stop.
// A second Start returns ErrAlreadyStarted.
func (r *Runner[A]) Start(ctx context.Context) error {
	_, err := r.lc.Begin(ctx)
	switch {
	case errors.Is(err, lifecycle.ErrStopped):
		return ErrStopped
	case err != nil:
		return ErrAlreadyStarted
	}
	if r.ownsApp {
		app, err := r.newApp(ctx, r.env)
		if err != nil {
			return errors.Join(fmt.Errorf("projection %s: build application: %w", r.proj.Name(), err), r.lc.Stop(0))
		}
		r.app = app
		r.lc.OnStop(func(context.Context) error {
			if err := app.Close(); err != nil {
				return fmt.Errorf("projection %s: close application: %w", r.proj.Name(), err)
			}
			return nil
		})
	}
	f, err := NewFollower(r.proj, r.view, r.app.Name(), r.app.Recorder(), r.app.Mapper(), r.opts...)
	if err != nil {
		return errors.Join(err, r.lc.Stop(0))
	}
	r.f = f
	r.lc.Go(f.Run)
	return nil
}

// App returns the upstream application (the zero A before Start with NewRunner).
func (r *Runner[A]) App() A { return r.app }

// View returns the view.
func (r *Runner[A]) View() View { return r.view }

// Follower returns the running projection (nil before Start).
func (r *Runner[A]) Follower() *Follower { return r.f }

// Status reports the projection's progress.
func (r *Runner[A]) Status(ctx context.Context) (follow.Status, error) {
	if r.f == nil {
		return follow.Status{}, ErrNotStarted
	}
	return r.f.Status(ctx), nil
}

// Rebuild empties the view (see Follower.Rebuild) and catches up again.
func (r *Runner[A]) Rebuild(ctx context.Context) error {
	if r.f == nil {
		return ErrNotStarted
	}
	return r.f.Rebuild(ctx)
}

// Err returns the processing error that stopped the runner, or nil.
func (r *Runner[A]) Err() error { return r.lc.Err() }

// Errored returns a channel that is closed when processing fails.
func (r *Runner[A]) Errored() <-chan struct{} { return r.lc.Errored() }

// Wait returns when the view has processed the upstream notification id
// (recorder.ErrTimeout after timeout). When processing fails first, it returns
// the processing error; when the runner is stopped first, ErrStopped.
func (r *Runner[A]) Wait(ctx context.Context, notificationID int64, timeout time.Duration) error {
	if !r.lc.Started() || r.f == nil {
		return ErrNotStarted
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-r.lc.Errored():
		case <-r.lc.Done():
		case <-ctx.Done():
		}
		cancel()
	}()
	err := r.f.Wait(ctx, notificationID, timeout)
	if err != nil && errors.Is(err, recorder.ErrWaitInterrupted) {
		if perr := r.Err(); perr != nil {
			return perr
		}
		select {
		case <-r.lc.Done():
			return ErrStopped
		default:
		}
	}
	return err
}

// Stop stops processing, waits for it to end, closes the application the
// runner built, and returns the processing error if there was one (else the
// close error). It is idempotent. Called from inside the projection's
// Process, it returns an error at once (lifecycle.ErrStopInWorker) and the
// runner stops when Process returns.
func (r *Runner[A]) Stop() error { return r.lc.Stop(0) }

// Close is Stop, for defer and io.Closer.
func (r *Runner[A]) Close() error { return r.Stop() }
