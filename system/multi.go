package system

import (
	"context"
	"errors"
	"fmt"
)

// MultiThreadedRunner runs every follower (one goroutine per leader it
// follows) and every projection on its own goroutine, each a
// follow.Follower: pages while behind, then one subscription to the leader
// while caught up. A leader's Save does not wait for them.
//
// A processing error stops the follower that failed, without recording the
// tracking of the failed notification (the others keep running); the error
// is reported by Err, Errored, Wait and Stop. Errors of the infrastructure
// are retried with backoff (see Status).
type MultiThreadedRunner struct {
	core
	opts runnerOptions
}

var _ Runner = (*MultiThreadedRunner)(nil)

// NewMultiThreadedRunner returns a runner for sys whose applications are
// built with env (overrides of the process environment).
func NewMultiThreadedRunner(sys *System, env map[string]string, opts ...RunnerOption) *MultiThreadedRunner {
	return &MultiThreadedRunner{core: newCore(sys, env), opts: applyRunnerOptions(opts)}
}

// Start builds the applications and starts a goroutine per follower and
// leader, and per projection, which first catch up with what was recorded
// before. ctx bounds the start-up only: the goroutines run until Stop.
func (r *MultiThreadedRunner) Start(ctx context.Context) error {
	if err := r.build(ctx, r.opts.configure(nil)); err != nil {
		return err
	}
	for _, def := range r.sys.apps {
		f, ok := r.followers[def.name]
		if !ok {
			continue
		}
		for _, l := range r.sys.leadersOf[def.name] {
			ff, err := f.Upstream(l)
			if err != nil {
				return errors.Join(err, r.Stop())
			}
			r.lc.Go(func(ctx context.Context) error {
				if err := ff.Run(ctx); err != nil {
					f.App().Logger().Error("follower stopped", "follower", def.name, "leader", l, "error", err)
					return unwrapFatal(err)
				}
				return nil
			})
		}
	}
	for _, name := range r.projOrder {
		p := r.projections[name]
		r.lc.Go(func(ctx context.Context) error {
			if err := p.Run(ctx); err != nil {
				return fmt.Errorf("projection %s: %w", name, unwrapFatal(err))
			}
			return nil
		})
	}
	return nil
}

// Stop stops the followers' goroutines, waits for them, closes the
// applications, and returns the first processing error. Called from inside
// a policy, it returns ErrStopInPolicy and the runner stops when the policy
// returns.
func (r *MultiThreadedRunner) Stop() error { return r.stop(nil) }
