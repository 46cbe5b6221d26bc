package system

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// MultiThreadedRunner runs one goroutine per follower. A leader's save
// prompts its followers' goroutines, which pull the leader's new notifications
// in pages and process them; the leader's Save does not wait for them.
//
// A processing error stops the follower that failed, without recording the
// tracking of the failed notification (the other followers keep running); the
// error is reported by Err, Errored and Stop.
type MultiThreadedRunner struct {
	core
	opts    runnerOptions
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	workers []*worker
}

var _ Runner = (*MultiThreadedRunner)(nil)

type worker struct {
	f       *Follower
	leaders []string
	dirty   map[string]*atomic.Bool // leader -> prompted since the last pull
	wake    chan struct{}
}

// prompt marks a leader as having new events and wakes the worker, without
// ever blocking the leader's save.
func (w *worker) prompt(leader string) {
	w.dirty[leader].Store(true)
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// NewMultiThreadedRunner returns a runner for sys whose applications are
// built with env (overrides of the process environment).
func NewMultiThreadedRunner(sys *System, env map[string]string, opts ...RunnerOption) *MultiThreadedRunner {
	return &MultiThreadedRunner{core: newCore(sys, env), opts: applyRunnerOptions(opts)}
}

// Start builds the applications and starts a goroutine per follower, which
// first catches up with what its leaders recorded before. ctx bounds the
// start-up only: the goroutines run until Stop.
func (r *MultiThreadedRunner) Start(ctx context.Context) error {
	if err := r.build(ctx); err != nil {
		return err
	}
	workers := map[string]*worker{}
	for _, def := range r.sys.apps {
		f, ok := r.followers[def.name]
		if !ok {
			continue
		}
		f.SetPageSize(r.opts.pageSize)
		w := &worker{f: f, leaders: r.sys.leadersOf[def.name], dirty: map[string]*atomic.Bool{}, wake: make(chan struct{}, 1)}
		for _, l := range w.leaders {
			w.dirty[l] = new(atomic.Bool)
			w.dirty[l].Store(true) // catch up on start
		}
		w.wake <- struct{}{}
		workers[def.name] = w
		r.workers = append(r.workers, w)
	}
	for _, name := range r.sys.Leaders() {
		var ws []*worker
		for _, f := range r.sys.followers[name] {
			ws = append(ws, workers[f])
		}
		r.byName[name].OnSave(func(context.Context, []eventsourcingRecording) error {
			for _, w := range ws {
				w.prompt(name)
			}
			return nil
		})
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	for _, w := range r.workers {
		r.wg.Go(func() { r.run(runCtx, w) })
	}
	return nil
}

func (r *MultiThreadedRunner) run(ctx context.Context, w *worker) {
	var tick <-chan time.Time
	if r.opts.pollInterval > 0 {
		t := time.NewTicker(r.opts.pollInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-tick:
			for _, l := range w.leaders {
				w.dirty[l].Store(true)
			}
		}
		for _, l := range w.leaders {
			if !w.dirty[l].Swap(false) {
				continue
			}
			if _, err := w.f.PullAndProcess(ctx, l); err != nil {
				if ctx.Err() != nil {
					return // stopping: not a processing failure
				}
				r.setErr(err)
				w.f.App().Logger().Error("follower stopped", "follower", w.f.App().Name(), "leader", l, "error", err)
				return
			}
		}
	}
}

// Stop stops the followers' goroutines, waits for them, closes the
// applications, and returns the first processing error.
func (r *MultiThreadedRunner) Stop() error {
	return r.stop(func() {
		if r.cancel != nil {
			r.cancel()
		}
		r.wg.Wait()
	})
}
