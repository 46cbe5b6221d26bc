// Package lifecycle is the one lifecycle of the project's long-running parts:
// runners, followers, projection runners and servers start once, stop
// idempotently, report their first error, and refuse a Stop made from one of
// their own workers (a policy or handler calling Stop) with a clear error
// instead of waiting for themselves forever.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// Errors of the lifecycle. Packages re-export them under their own names.
var (
	// ErrAlreadyStarted is returned by a second Start.
	ErrAlreadyStarted = errors.New("already started")
	// ErrStopped is returned by Start after Stop, and by Wait when the part
	// was stopped first.
	ErrStopped = errors.New("stopped")
	// ErrStopInWorker is returned by Stop when it is called from one of the
	// part's own workers (a policy or a projection's handler): waiting there
	// would wait for the caller itself. The part stops as soon as that worker
	// returns.
	ErrStopInWorker = errors.New("Stop called from inside a policy or handler of the part being stopped; it stops once the handler returns")
)

// Lifecycle is embedded (as a value) by long-running parts. The zero value is
// ready to use.
type Lifecycle struct {
	mu      sync.Mutex
	started bool
	stopped bool
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	workers map[uint64]struct{} // goroutine ids of running workers
	halts   []func(ctx context.Context) error

	errMu   sync.Mutex
	err     error
	errored chan struct{}

	stopOnce sync.Once
	stopErr  error
	done     chan struct{}
	inner    sync.Once
}

func (l *Lifecycle) init() {
	l.inner.Do(func() {
		l.errored = make(chan struct{})
		l.done = make(chan struct{})
		l.workers = map[uint64]struct{}{}
	})
}

// Begin marks the part started and returns the context its workers run
// with: detached from ctx's cancellation (ctx bounds the start-up only) and
// cancelled by Stop. A second Begin fails with ErrAlreadyStarted, a Begin
// after Stop with ErrStopped.
func (l *Lifecycle) Begin(ctx context.Context) (context.Context, error) {
	l.init()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.started:
		return nil, ErrAlreadyStarted
	case l.stopped:
		return nil, ErrStopped
	}
	l.started = true
	l.ctx, l.cancel = context.WithCancel(context.WithoutCancel(ctx))
	return l.ctx, nil
}

// Started reports whether Begin succeeded.
func (l *Lifecycle) Started() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.started
}

// Stopping reports whether Stop has been called.
func (l *Lifecycle) Stopping() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stopped
}

// Go runs fn as a worker of the part. Its error, unless the part is
// stopping, becomes the part's error.
func (l *Lifecycle) Go(fn func(ctx context.Context) error) {
	l.init()
	l.mu.Lock()
	ctx := l.ctx
	if ctx == nil {
		ctx, l.cancel = context.WithCancel(context.Background())
		l.ctx = ctx
	}
	l.wg.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.wg.Done()
		id := goid()
		l.mu.Lock()
		l.workers[id] = struct{}{}
		l.mu.Unlock()
		defer func() {
			l.mu.Lock()
			delete(l.workers, id)
			l.mu.Unlock()
		}()
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			l.Fail(err)
		}
	}()
}

// Enter marks the calling goroutine as one of the part's workers until the
// returned function is called: the single-threaded runner runs policies on
// its callers' goroutines.
func (l *Lifecycle) Enter() (leave func()) {
	l.init()
	id := goid()
	l.mu.Lock()
	_, already := l.workers[id]
	l.workers[id] = struct{}{}
	l.mu.Unlock()
	if already {
		return func() {}
	}
	return func() {
		l.mu.Lock()
		delete(l.workers, id)
		l.mu.Unlock()
	}
}

// OnStop adds a function that Stop runs after the workers have ended, in
// reverse order of registration (close what was opened last first).
func (l *Lifecycle) OnStop(fn func(ctx context.Context) error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.halts = append(l.halts, fn)
}

// Fail records err as the part's error when it is the first.
func (l *Lifecycle) Fail(err error) {
	if err == nil {
		return
	}
	l.init()
	l.errMu.Lock()
	defer l.errMu.Unlock()
	if l.err == nil {
		l.err = err
		close(l.errored)
	}
}

// Err returns the first error, or nil.
func (l *Lifecycle) Err() error {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	return l.err
}

// Errored returns a channel closed at the first error.
func (l *Lifecycle) Errored() <-chan struct{} { l.init(); return l.errored }

// Done returns a channel closed when Stop has finished.
func (l *Lifecycle) Done() <-chan struct{} { l.init(); return l.done }

// Context returns the workers' context (nil before Begin or Go).
func (l *Lifecycle) Context() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ctx
}

// Wait blocks until the part fails (its error), is stopped (ErrStopped) or
// ctx ends (ctx's error).
func (l *Lifecycle) Wait(ctx context.Context) error {
	l.init()
	select {
	case <-l.errored:
		return l.Err()
	case <-l.done:
		if err := l.Err(); err != nil {
			return err
		}
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop cancels the workers' context, waits for the workers (at most timeout
// when it is positive, after which it gives up waiting and says so), runs the
// OnStop functions and returns the first error of the run (a worker's error
// before a stop error). It is idempotent. Called from a worker, it returns
// ErrStopInWorker at once and the stop completes in the background.
func (l *Lifecycle) Stop(timeout time.Duration) error {
	l.init()
	if l.isWorker() {
		// Stopping at once, so that no new work starts (the
		// single-threaded runner's next prompt) while the stop waits for
		// the worker.
		l.mu.Lock()
		l.stopped = true
		l.mu.Unlock()
		go l.Stop(timeout)
		return ErrStopInWorker
	}
	l.stopOnce.Do(func() {
		l.mu.Lock()
		l.stopped = true
		cancel, halts := l.cancel, l.halts
		l.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		var errs []error
		if !waitTimeout(&l.wg, timeout) {
			errs = append(errs, fmt.Errorf("workers still running after %v; stopped waiting for them", timeout))
		}
		ctx := context.Background()
		if timeout > 0 {
			var c context.CancelFunc
			ctx, c = context.WithTimeout(ctx, timeout)
			defer c()
		}
		for i := len(halts) - 1; i >= 0; i-- {
			if err := halts[i](ctx); err != nil {
				errs = append(errs, err)
			}
		}
		l.stopErr = l.Err()
		if l.stopErr == nil {
			l.stopErr = errors.Join(errs...)
		}
		close(l.done)
	})
	<-l.done
	return l.stopErr
}

func (l *Lifecycle) isWorker() bool {
	id := goid()
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.workers[id]
	return ok
}

func waitTimeout(wg *sync.WaitGroup, timeout time.Duration) bool {
	if timeout <= 0 {
		wg.Wait()
		return true
	}
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// goid returns the calling goroutine's id. Go has no API for it on purpose;
// it is used here only to recognise a Stop called from a part's own worker,
// once per worker start and per Stop, never on a hot path.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	// "goroutine 123 [running]:..."
	const prefix = "goroutine "
	if len(b) < len(prefix) {
		return 0
	}
	b = b[len(prefix):]
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	id, _ := strconv.ParseUint(string(b[:i]), 10, 64)
	return id
}
