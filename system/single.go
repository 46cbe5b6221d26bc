package system

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/eventsourcing-go/eventsourcing/follow"
)

// SingleThreadedRunner processes followers and projections synchronously
// inside their leader's Save: when Save returns, every follower and
// projection downstream has processed the saved events (unless another
// goroutine was already processing, in which case that goroutine's Save
// processes them too before it returns). Prompts made while processing (a
// follower's own saves prompting its followers) are queued, not recursed
// into, so cycles terminate.
//
// The processing itself runs on one goroutine of the runner's, with the
// saving caller's context, while the caller waits: so that a Stop called
// from a policy or a projection is told from a Stop called elsewhere by the
// goroutine it runs on, known once, instead of by finding out the caller's
// goroutine on every save (a stack trace, which cost more than the rest of
// a command in memory).
//
// A processing error is returned by the leader's Save, after the leader's own
// events were recorded; the follower's tracking is not advanced, so the next
// prompt retries from the same position.
type SingleThreadedRunner struct {
	core
	opts runnerOptions

	promptMu   sync.Mutex
	prompted   []string
	processing sync.Mutex // held by the Save whose drain is under way
	// drains hands the processing goroutine the context of a drain, and
	// drained brings back its errors; only the holder of processing uses them.
	drains  chan context.Context
	drained chan []error
}

var _ Runner = (*SingleThreadedRunner)(nil)

// NewSingleThreadedRunner returns a runner for sys whose applications are
// built with env (overrides of the process environment).
func NewSingleThreadedRunner(sys *System, env map[string]string, opts ...RunnerOption) *SingleThreadedRunner {
	return &SingleThreadedRunner{core: newCore(sys, env), opts: applyRunnerOptions(opts)}
}

// Start builds the applications, connects leaders to followers and
// projections, and processes whatever the leaders recorded before
// (catch-up). A catch-up failure stops the runner and is returned.
func (r *SingleThreadedRunner) Start(ctx context.Context) error {
	if err := r.build(ctx, r.opts.configure(nil)); err != nil {
		return err
	}
	r.drains, r.drained = make(chan context.Context), make(chan []error, 1)
	r.lc.Go(r.processLoop)
	var leaders []string
	for _, a := range r.sys.apps {
		if len(r.sys.followers[a.name]) > 0 || len(r.projsOf[a.name]) > 0 {
			leaders = append(leaders, a.name)
		}
	}
	for _, name := range leaders {
		r.byName[name].OnSave(func(ctx context.Context, _ []eventsourcingRecording) error {
			return r.prompt(ctx, name)
		})
	}
	if err := r.prompt(ctx, leaders...); err != nil {
		return errors.Join(err, r.Stop())
	}
	return nil
}

// Stop closes the applications and returns the first processing error.
// Called from inside a policy, it returns ErrStopInPolicy and the runner
// stops when the processing under way ends.
func (r *SingleThreadedRunner) Stop() error {
	// Wait for processing in progress, so applications are not closed under it.
	return r.stop(func(context.Context) error { r.processing.Lock(); defer r.processing.Unlock(); return nil })
}

// prompt queues leaders and, unless a goroutine is already processing,
// processes until no prompt is left.
func (r *SingleThreadedRunner) prompt(ctx context.Context, leaders ...string) error {
	r.promptMu.Lock()
	for _, l := range leaders {
		if !slices.Contains(r.prompted, l) {
			r.prompted = append(r.prompted, l)
		}
	}
	r.promptMu.Unlock()
	var errs []error
	for {
		if !r.processing.TryLock() {
			// The goroutine processing will see our prompt: it checks the
			// queue again after it unlocks.
			break
		}
		if r.isStopped() {
			r.processing.Unlock()
			break
		}
		errs = append(errs, r.drainOnProcessor(ctx)...)
		r.processing.Unlock()
		r.promptMu.Lock()
		more := len(r.prompted) > 0
		r.promptMu.Unlock()
		if !more {
			break
		}
	}
	for _, err := range errs {
		r.lc.Fail(err)
	}
	return errors.Join(errs...)
}

// processLoop is the runner's processing goroutine: it drains for the
// callers that hand it a drain, until the runner stops.
func (r *SingleThreadedRunner) processLoop(ctx context.Context) error {
	for {
		select {
		case dctx := <-r.drains:
			r.drained <- r.drain(dctx)
		case <-ctx.Done():
			return nil
		}
	}
}

// drainOnProcessor has the processing goroutine drain with ctx and waits
// for it; the caller holds r.processing. Once the runner is stopping there
// may be no processing goroutine left, and nothing is drained.
func (r *SingleThreadedRunner) drainOnProcessor(ctx context.Context) []error {
	select {
	case r.drains <- ctx:
	case <-r.lc.Context().Done():
		return nil
	}
	// The processing goroutine answers every drain it took, also when the
	// runner stops meanwhile.
	return <-r.drained
}

// drain processes queued prompts until the queue is empty. A failing
// follower does not keep the others from processing.
func (r *SingleThreadedRunner) drain(ctx context.Context) []error {
	var errs []error
	for !r.isStopped() {
		r.promptMu.Lock()
		leaders := r.prompted
		r.prompted = nil
		r.promptMu.Unlock()
		if len(leaders) == 0 {
			return errs
		}
		for _, l := range leaders {
			for _, name := range r.sys.followers[l] {
				if _, err := r.followers[name].PullAndProcess(ctx, l); err != nil {
					errs = append(errs, unwrapFatal(err))
				}
			}
			for _, p := range r.projsOf[l] {
				if _, err := p.CatchUp(ctx); err != nil {
					errs = append(errs, unwrapFatal(err))
				}
			}
		}
		if len(errs) > 0 {
			// Do not loop on a failure: the caller gets it now, and the
			// next prompt retries from the tracked position.
			return errs
		}
	}
	return errs
}

// unwrapFatal returns the *ProcessingError inside err when there is one, so
// that callers see the failure itself.
func unwrapFatal(err error) error {
	var pe *follow.ProcessingError
	if errors.As(err, &pe) {
		return pe
	}
	return err
}
