package system

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// errorReporter is implemented by the runners of this package: Errored is
// closed at the first processing error.
type errorReporter interface {
	Errored() <-chan struct{}
}

// Wait returns when the named follower has processed the leader's
// notification id, with recorder.ErrTimeout after timeout. When the runner
// reports a processing error first, Wait returns that error at once instead
// of waiting for a position that will not come.
func Wait(ctx context.Context, r Runner, follower, leader string, notificationID int64, timeout time.Duration) error {
	app, err := r.App(follower)
	if err != nil {
		return err
	}
	pr, ok := app.ProcessRecorder()
	if !ok {
		return fmt.Errorf("wait: %s: %w", follower, ErrNotFollowing)
	}
	if er, ok := r.(errorReporter); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-er.Errored():
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	err = pr.Wait(ctx, leader, notificationID, timeout)
	if errors.Is(err, recorder.ErrWaitInterrupted) {
		if rerr := r.Err(); rerr != nil {
			return rerr
		}
	}
	if err != nil {
		return fmt.Errorf("wait for %s to process %s#%d: %w", follower, leader, notificationID, err)
	}
	return nil
}
