package followtest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// sparse forwards a source's SparseNotificationIDs, so that a wrapper
// reports lag in the same unit as what it wraps.
type sparse struct{ src follow.Source }

// SparseNotificationIDs reports whether the wrapped source's ids are
// positions rather than counts.
func (s sparse) SparseNotificationIDs() bool {
	sp, ok := s.src.(interface{ SparseNotificationIDs() bool })
	return ok && sp.SparseNotificationIDs()
}

// CountingSource is a follow.Source that counts the subscriptions opened on
// the source it wraps.
type CountingSource struct {
	follow.Source
	sparse
	subscribes atomic.Int64
}

// NewCountingSource wraps src.
func NewCountingSource(src follow.Source) *CountingSource {
	return &CountingSource{Source: src, sparse: sparse{src}}
}

// Subscribe implements follow.Source and counts the call.
func (s *CountingSource) Subscribe(ctx context.Context, after recorder.Position, topics []string) (recorder.Subscription, error) {
	s.subscribes.Add(1)
	return s.Source.Subscribe(ctx, after, topics)
}

// Subscriptions returns how many times Subscribe was called.
func (s *CountingSource) Subscriptions() int64 { return s.subscribes.Load() }

// ErrDropped is what a subscription dropped by DroppingSource.Drop returns.
var ErrDropped = fmt.Errorf("followtest: subscription dropped: %w", recorder.ErrSubscriptionClosed)

// DroppingSource is a follow.Source whose live subscriptions Drop ends, as
// a lost connection does: the next Next of each fails with ErrDropped
// (even when a notification had arrived, which is then lost to it).
type DroppingSource struct {
	follow.Source
	sparse
	mu   sync.Mutex
	subs []*droppable
}

// NewDroppingSource wraps src.
func NewDroppingSource(src follow.Source) *DroppingSource {
	return &DroppingSource{Source: src, sparse: sparse{src}}
}

// Subscribe implements follow.Source.
func (s *DroppingSource) Subscribe(ctx context.Context, after recorder.Position, topics []string) (recorder.Subscription, error) {
	sub, err := s.Source.Subscribe(ctx, after, topics)
	if err != nil {
		return nil, err
	}
	d := &droppable{Subscription: sub}
	s.mu.Lock()
	s.subs = append(s.subs, d)
	s.mu.Unlock()
	return d, nil
}

// Drop ends every subscription opened so far.
func (s *DroppingSource) Drop() {
	s.mu.Lock()
	subs := s.subs
	s.subs = nil
	s.mu.Unlock()
	for _, d := range subs {
		d.dropped.Store(true)
		_ = d.Subscription.Close()
	}
}

type droppable struct {
	recorder.Subscription
	dropped atomic.Bool
}

func (d *droppable) Next(ctx context.Context) (recorder.Notification, error) {
	n, err := d.Subscription.Next(ctx)
	if d.dropped.Load() {
		return recorder.Notification{}, ErrDropped
	}
	return n, err
}

// errUnavailable is what a failingSource answers while it fails.
var errUnavailable = fmt.Errorf("followtest: source unavailable: %w", follow.ErrRetry)

// failingSource fails every read of notifications while failing is set.
type failingSource struct {
	follow.Source
	sparse
	failing  atomic.Bool
	failures atomic.Int64
}

func (s *failingSource) SelectNotifications(ctx context.Context, q recorder.NotificationQuery) ([]recorder.Notification, error) {
	if s.failing.Load() {
		s.failures.Add(1)
		return nil, errUnavailable
	}
	return s.Source.SelectNotifications(ctx, q)
}

// errCommit is what a failingBatches answers for a batch it fails.
var errCommit = fmt.Errorf("followtest: batch commit failed: %w", follow.ErrRetry)

// failingBatches is a View whose next batches (as many as fail says) are
// rolled back after their work was done, as a failed commit is.
type failingBatches struct {
	View
	batcher follow.Batcher
	fail    atomic.Int32
}

// Batch implements follow.Batcher.
func (v *failingBatches) Batch(ctx context.Context, fn func(ctx context.Context) error) error {
	return v.batcher.Batch(ctx, func(ctx context.Context) error {
		if err := fn(ctx); err != nil {
			return err
		}
		if v.fail.Add(-1) >= 0 {
			return errCommit
		}
		return nil
	})
}
