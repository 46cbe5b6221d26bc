package recorder_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// fakeLog is a notification log with ids 1..n that records the queries it gets.
type fakeLog struct {
	mu      sync.Mutex
	ns      []recorder.Notification
	queries []recorder.NotificationQuery
	fail    error
	signal  recorder.Signal
}

func (l *fakeLog) add(topics ...string) {
	l.mu.Lock()
	for _, topic := range topics {
		id := int64(len(l.ns) + 1)
		l.ns = append(l.ns, recorder.Notification{ID: id, StoredEvent: recorder.StoredEvent{Topic: topic, State: []byte(fmt.Sprint(id))}})
	}
	l.mu.Unlock()
	l.signal.Notify()
}

func (l *fakeLog) setFail(err error) {
	l.mu.Lock()
	l.fail = err
	l.mu.Unlock()
}

func (l *fakeLog) sel(ctx context.Context, q recorder.NotificationQuery) ([]recorder.Notification, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queries = append(l.queries, q)
	if l.fail != nil {
		return nil, l.fail
	}
	var out []recorder.Notification
	for _, n := range l.ns {
		if after, ok := q.After.ID(); ok && (n.ID < after || !q.Inclusive && n.ID == after) {
			continue
		}
		if !recorder.MatchTopic(q.Topics, n.Topic) {
			continue
		}
		if len(out) == q.Limit {
			break
		}
		out = append(out, n)
	}
	return out, nil
}

func nextIDs(t *testing.T, sub recorder.Subscription, n int) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var got []int64
	for range n {
		x, err := sub.Next(ctx)
		require.NoError(t, err)
		got = append(got, x.ID)
	}
	return got
}

func seq(from, to int64) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func requireStillBlocked(t *testing.T, sub recorder.Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err := sub.Next(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestPollingSubscriptionPagesInOrder(t *testing.T) {
	l := &fakeLog{}
	for range 1200 {
		l.add("t")
	}
	sub := recorder.NewPollingSubscription(l.sel, &l.signal, 0, recorder.Start(), nil)
	defer sub.Close()
	assert.Equal(t, seq(1, 1200), nextIDs(t, sub, 1200))
	requireStillBlocked(t, sub)

	l.mu.Lock()
	queries := l.queries[:3]
	l.mu.Unlock()
	assert.Equal(t, recorder.Start(), queries[0].After, "the first page starts at the beginning")
	for i, q := range queries {
		assert.False(t, q.Inclusive)
		assert.Equal(t, recorder.DefaultPageSize, q.Limit)
		if i > 0 {
			assert.Equal(t, recorder.After(int64(i*recorder.DefaultPageSize)), q.After, "page %d starts after the last id delivered", i)
		}
	}
}

func TestPollingSubscriptionAfterAndTopics(t *testing.T) {
	l := &fakeLog{}
	l.add("a", "b", "a", "c", "a")
	sub := recorder.NewPollingSubscription(l.sel, &l.signal, 0, recorder.After(1), []string{"a", "c"})
	defer sub.Close()
	assert.Equal(t, []int64{3, 4, 5}, nextIDs(t, sub, 3))
	l.add("b", "c")
	assert.Equal(t, []int64{7}, nextIDs(t, sub, 1), "later events pass the same filter")
	requireStillBlocked(t, sub)
}

func TestPollingSubscriptionWakesOnSignal(t *testing.T) {
	l := &fakeLog{}
	sub := recorder.NewPollingSubscription(l.sel, &l.signal, 0, recorder.Start(), nil)
	defer sub.Close()
	got := make(chan []int64, 1)
	go func() { got <- nextIDs(t, sub, 2) }()
	time.Sleep(10 * time.Millisecond)
	l.add("t")
	l.add("t")
	assert.Equal(t, []int64{1, 2}, <-got)
}

func TestPollingSubscriptionPollsWithoutSignal(t *testing.T) {
	l := &fakeLog{}
	sub := recorder.NewPollingSubscription(l.sel, nil, time.Millisecond, recorder.Start(), nil)
	defer sub.Close()
	got := make(chan []int64, 1)
	go func() { got <- nextIDs(t, sub, 1) }()
	time.Sleep(10 * time.Millisecond)
	l.mu.Lock()
	l.ns = append(l.ns, recorder.Notification{ID: 1}) // a commit by another process: no signal
	l.mu.Unlock()
	assert.Equal(t, []int64{1}, <-got)
}

func TestPollingSubscriptionClose(t *testing.T) {
	l := &fakeLog{}
	l.add("t", "t", "t")

	t.Run("before next", func(t *testing.T) {
		sub := recorder.NewPollingSubscription(l.sel, &l.signal, 0, recorder.Start(), nil)
		require.NoError(t, sub.Close())
		require.NoError(t, sub.Close(), "Close is idempotent")
		_, err := sub.Next(t.Context())
		require.ErrorIs(t, err, recorder.ErrSubscriptionClosed)
	})
	t.Run("drops buffered notifications", func(t *testing.T) {
		sub := recorder.NewPollingSubscription(l.sel, &l.signal, 0, recorder.Start(), nil)
		assert.Equal(t, []int64{1}, nextIDs(t, sub, 1))
		require.NoError(t, sub.Close())
		_, err := sub.Next(t.Context())
		require.ErrorIs(t, err, recorder.ErrSubscriptionClosed)
	})
	t.Run("while blocked", func(t *testing.T) {
		sub := recorder.NewPollingSubscription(l.sel, &l.signal, 0, recorder.After(3), nil)
		done := make(chan error, 1)
		go func() {
			_, err := sub.Next(t.Context())
			done <- err
		}()
		time.Sleep(10 * time.Millisecond)
		require.NoError(t, sub.Close())
		require.ErrorIs(t, <-done, recorder.ErrSubscriptionClosed)
	})
}

func TestPollingSubscriptionContext(t *testing.T) {
	l := &fakeLog{}
	l.add("t", "t", "t")
	sub := recorder.NewPollingSubscription(l.sel, &l.signal, 0, recorder.Start(), nil)
	defer sub.Close()

	ctx, cancel := context.WithCancel(t.Context())
	_, err := sub.Next(ctx)
	require.NoError(t, err)
	cancel()
	_, err = sub.Next(ctx)
	require.ErrorIs(t, err, context.Canceled, "an ended context stops delivery even with notifications buffered")
	assert.Equal(t, []int64{2, 3}, nextIDs(t, sub, 2), "nothing was lost: a new context resumes")

	ctx, cancel = context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := sub.Next(ctx)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled, "an ended context wakes a blocked Next")
}

func TestPollingSubscriptionSurfacesErrors(t *testing.T) {
	l := &fakeLog{}
	l.add("t")
	broken := errors.New("connection reset")
	l.setFail(broken)
	sub := recorder.NewPollingSubscription(l.sel, &l.signal, 0, recorder.Start(), nil)
	defer sub.Close()
	_, err := sub.Next(t.Context())
	require.ErrorIs(t, err, broken, "a failing select is an error, not an end")
	l.setFail(nil)
	assert.Equal(t, []int64{1}, nextIDs(t, sub, 1), "the next call retries")
}

func TestAll(t *testing.T) {
	l := &fakeLog{}
	l.add("t", "t", "t")
	sub := recorder.NewPollingSubscription(l.sel, &l.signal, 0, recorder.Start(), nil)
	var got []int64
	for n, err := range recorder.All(t.Context(), sub) {
		require.NoError(t, err)
		got = append(got, n.ID)
		if n.ID == 2 {
			break
		}
	}
	assert.Equal(t, []int64{1, 2}, got)

	require.NoError(t, sub.Close())
	var errs []error
	for _, err := range recorder.All(t.Context(), sub) {
		errs = append(errs, err)
	}
	require.Len(t, errs, 1, "iteration ends after the error it yields")
	require.ErrorIs(t, errs[0], recorder.ErrSubscriptionClosed)
}

func TestWaitFor(t *testing.T) {
	never := func(context.Context) (bool, error) { return false, nil }

	t.Run("reached at once", func(t *testing.T) {
		calls := 0
		err := recorder.WaitFor(t.Context(), time.Hour, nil, func(context.Context) (bool, error) { calls++; return true, nil })
		require.NoError(t, err)
		assert.Equal(t, 1, calls)
	})
	t.Run("times out", func(t *testing.T) {
		err := recorder.WaitFor(t.Context(), 10*time.Millisecond, nil, never)
		require.ErrorIs(t, err, recorder.ErrTimeout)
		assert.NotErrorIs(t, err, recorder.ErrWaitInterrupted)
		var e *recorder.Error
		require.ErrorAs(t, err, &e)
	})
	t.Run("zero timeout checks once", func(t *testing.T) {
		require.ErrorIs(t, recorder.WaitFor(t.Context(), 0, nil, never), recorder.ErrTimeout)
		require.NoError(t, recorder.WaitFor(t.Context(), 0, nil, func(context.Context) (bool, error) { return true, nil }))
	})
	t.Run("interrupted before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := recorder.WaitFor(ctx, time.Hour, nil, never)
		require.ErrorIs(t, err, recorder.ErrWaitInterrupted)
		assert.ErrorIs(t, err, context.Canceled, "the interrupt's cause is kept")
		assert.NotErrorIs(t, err, recorder.ErrTimeout)
	})
	t.Run("a reached position wins over an interrupt", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := recorder.WaitFor(ctx, time.Hour, nil, func(ctx context.Context) (bool, error) {
			return ctx.Err() == nil, nil // the check runs with a live context
		})
		require.NoError(t, err)
	})
	t.Run("interrupted while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- recorder.WaitFor(ctx, time.Hour, nil, never) }()
		time.Sleep(10 * time.Millisecond)
		cancel()
		require.ErrorIs(t, <-done, recorder.ErrWaitInterrupted)
	})
	t.Run("woken by the signal", func(t *testing.T) {
		var s recorder.Signal
		var mu sync.Mutex
		reached := false
		done := make(chan error, 1)
		go func() {
			done <- recorder.WaitFor(t.Context(), time.Hour, &s, func(context.Context) (bool, error) {
				mu.Lock()
				defer mu.Unlock()
				return reached, nil
			})
		}()
		time.Sleep(10 * time.Millisecond)
		mu.Lock()
		reached = true
		mu.Unlock()
		s.Notify()
		require.NoError(t, <-done)
	})
	t.Run("check errors surface", func(t *testing.T) {
		broken := errors.New("broken")
		err := recorder.WaitFor(t.Context(), time.Hour, nil, func(context.Context) (bool, error) { return false, broken })
		require.ErrorIs(t, err, broken)
	})
}
