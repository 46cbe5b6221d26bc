package recorder

import (
	"context"
	"iter"
	"sync"
	"time"
)

// SelectFunc selects notifications; it is a recorder's SelectNotifications.
type SelectFunc func(ctx context.Context, q NotificationQuery) ([]Notification, error)

// PollingSubscription is the Subscription that SQL and memory backends share. It
// pulls pages from the store lazily inside Next, so it runs no goroutine of its
// own, and blocks when caught up until the backend's Signal fires, the poll
// interval passes (for commits made by other processes), ctx ends or it is closed.
//
// It reads strictly after the last id it delivered, so it is correct only on a
// backend whose readers see ids in commit order (the recorder contract).
type PollingSubscription struct {
	sel      SelectFunc
	signal   *Signal
	interval time.Duration
	topics   []string
	pageSize int

	pos     Position // after the last notification delivered
	buf     []Notification
	done    chan struct{}
	closeMu sync.Once
}

// DefaultPageSize is the number of notifications a subscription pulls at once.
const DefaultPageSize = 500

// NewPollingSubscription returns a subscription after the position (from the
// first notification at Start()). signal may be nil, and interval zero means no polling: at least one of the
// two must wake it.
func NewPollingSubscription(sel SelectFunc, signal *Signal, interval time.Duration, after Position, topics []string) *PollingSubscription {
	s := &PollingSubscription{
		sel: sel, signal: signal, interval: interval, topics: topics,
		pageSize: DefaultPageSize, done: make(chan struct{}), pos: after,
	}
	return s
}

// Next returns the next notification. It is not safe for concurrent use by
// several goroutines (Close is).
func (s *PollingSubscription) Next(ctx context.Context) (Notification, error) {
	for {
		select {
		case <-s.done:
			return Notification{}, ErrSubscriptionClosed
		default:
		}
		// An ended context ends iteration even with notifications buffered: a
		// caller that cancels must get an error, not more items.
		if err := ctx.Err(); err != nil {
			return Notification{}, err
		}
		if len(s.buf) > 0 {
			n := s.buf[0]
			s.buf[0] = Notification{} // do not keep a delivered state alive
			s.buf = s.buf[1:]
			s.pos = After(n.ID)
			return n, nil
		}
		// Take the wake-up channel before reading, so a commit between the read
		// and the wait is not missed.
		var wake <-chan struct{}
		if s.signal != nil {
			wake = s.signal.Wait()
		}
		page, err := s.sel(ctx, NotificationQuery{After: s.pos, Limit: s.pageSize, Topics: s.topics})
		if err != nil {
			return Notification{}, err
		}
		if len(page) > 0 {
			s.buf = page
			continue
		}
		if err := s.sleep(ctx, wake); err != nil {
			return Notification{}, err
		}
	}
}

// sleep blocks until a wake-up, the poll interval, ctx's end or Close.
func (s *PollingSubscription) sleep(ctx context.Context, wake <-chan struct{}) error {
	var tick <-chan time.Time
	if s.interval > 0 {
		t := time.NewTimer(s.interval)
		defer t.Stop()
		tick = t.C
	}
	select {
	case <-s.done:
		return ErrSubscriptionClosed
	case <-ctx.Done():
		return ctx.Err()
	case <-wake:
	case <-tick:
	}
	return nil
}

// Close stops the subscription; buffered notifications are dropped.
func (s *PollingSubscription) Close() error {
	s.closeMu.Do(func() { close(s.done) })
	return nil
}

// All adapts a subscription to a range-over-func loop. Iteration ends after an
// error (which is yielded) or when the loop breaks; it does not close sub.
func All(ctx context.Context, sub Subscription) iter.Seq2[Notification, error] {
	return func(yield func(Notification, error) bool) {
		for {
			n, err := sub.Next(ctx)
			if err != nil {
				yield(Notification{}, err)
				return
			}
			if !yield(n, nil) {
				return
			}
		}
	}
}

// WaitFor implements TrackingRecorder.Wait for backends: it returns when reached
// reports true, re-checking after sleeps of 100 ms doubling to 800 ms (or sooner
// when signal fires), never past timeout (ErrTimeout), and with ErrWaitInterrupted
// when ctx ends first. A position reached at the last check still wins.
func WaitFor(ctx context.Context, timeout time.Duration, signal *Signal, reached func(context.Context) (bool, error)) error {
	deadline := time.Now().Add(timeout)
	sleep := 100 * time.Millisecond
	for {
		var wake <-chan struct{}
		if signal != nil {
			wake = signal.Wait()
		}
		// Check with a context that is not cancelled by the interrupt, so the
		// final check can still report success.
		ok, err := reached(context.WithoutCancel(ctx))
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if ctx.Err() != nil {
			return &Error{Kind: ErrWaitInterrupted, Op: "wait", Err: context.Cause(ctx)}
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return &Error{Kind: ErrTimeout, Op: "wait"}
		}
		t := time.NewTimer(min(sleep, remaining))
		select {
		case <-t.C:
			sleep = min(sleep*2, 800*time.Millisecond)
		case <-wake:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
		}
	}
}

// HasTrackingID derives TrackingRecorder.HasTrackingID from a recorder's
// MaxTrackingID: the position has reached id when the last tracked id is at
// least id.
func HasTrackingID(ctx context.Context, maxTrackingID func(context.Context, string) (int64, bool, error), applicationName string, id int64) (bool, error) {
	last, ok, err := maxTrackingID(ctx, applicationName)
	if err != nil {
		return false, err
	}
	return ok && last >= id, nil
}

// WaitTracking derives TrackingRecorder.Wait from a recorder's HasTrackingID
// and the Signal its commits fire; see WaitFor.
func WaitTracking(ctx context.Context, hasTrackingID func(context.Context, string, int64) (bool, error), signal *Signal, applicationName string, id int64, timeout time.Duration) error {
	return WaitFor(ctx, timeout, signal, func(ctx context.Context) (bool, error) {
		return hasTrackingID(ctx, applicationName, id)
	})
}
