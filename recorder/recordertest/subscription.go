package recordertest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

var subscriptionCases = []testCase{
	{"FromStartThenLater", testSubscribeFromStart},
	{"AfterAnID", testSubscribeAfter},
	{"AfterMax", testSubscribeAfterMax},
	{"Topics", testSubscribeTopics},
	{"CloseBeforeNext", testSubscriptionCloseBeforeNext},
	{"CloseWhileBlocked", testSubscriptionCloseWhileBlocked},
	{"CloseDropsBuffered", testSubscriptionCloseDropsBuffered},
	{"ContextEndsWhileBlocked", testSubscriptionContextEnds},
	{"NotSupported", testSubscribeNotSupported},
}

// subscribe opens a subscription that is closed when the test ends, skipping
// the case on a backend without subscriptions.
func (s *suite) subscribe(t *testing.T, r recorder.ApplicationRecorder, after recorder.Position, topics []string) recorder.Subscription {
	t.Helper()
	if !s.Caps.Subscribe {
		t.Skip("the backend has no subscriptions (Caps.Subscribe); NotSupported checks its refusal")
	}
	sub, err := r.Subscribe(t.Context(), after, topics)
	require.NoError(t, err, "subscribe")
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// threeEvents inserts e1, e2 (one batch) and e3, topics t1..t3.
func (s *suite) threeEvents(t *testing.T, r recorder.ApplicationRecorder) []recorder.Notification {
	t.Helper()
	a, b := newID(), newID()
	events := []recorder.StoredEvent{ev(a, 0, "t1", "e1"), ev(a, 1, "t2", "e2"), ev(b, 0, "t3", "e3")}
	got := s.insert(t, r, events[0], events[1])
	got = append(got, s.insert(t, r, events[2])...)
	return notifications(events, got)
}

func (s *suite) receive(t *testing.T, sub recorder.Subscription, want []recorder.Notification, what string) {
	t.Helper()
	ctx := s.patient(t)
	got := make([]recorder.Notification, 0, len(want))
	for range want {
		got = append(got, s.next(t, ctx, sub))
	}
	requireNotifications(t, want, got, what)
}

// core.md §5: existing events, then later ones, in order.
func testSubscribeFromStart(t *testing.T, s *suite) {
	r := s.application(t)
	sub := s.subscribe(t, r, recorder.Start(), nil)
	ns := s.threeEvents(t, r)
	s.receive(t, sub, ns, "existing events")
	requireBlocks(t, sub)

	c := newID()
	later := []recorder.StoredEvent{ev(c, 0, "t4", "e4"), ev(c, 1, "t5", "e5")}
	s.receive(t, sub, notifications(later, s.insert(t, r, later...)), "later events")
}

func testSubscribeAfter(t *testing.T, s *suite) {
	r := s.application(t)
	ns := s.threeEvents(t, r)
	sub := s.subscribe(t, r, recorder.After(ns[0].ID), nil)
	s.receive(t, sub, ns[1:], "events after the first")
	sub2 := s.subscribe(t, r, recorder.After(ns[1].ID), nil)
	s.receive(t, sub2, ns[2:], "events after the second")
}

func testSubscribeAfterMax(t *testing.T, s *suite) {
	r := s.application(t)
	ns := s.threeEvents(t, r)
	maxID, _ := s.maxID(t, r)
	require.Equal(t, ns[2].ID, maxID)
	sub := s.subscribe(t, r, recorder.After(maxID), nil)
	requireBlocks(t, sub)
	e4 := ev(newID(), 0, "t4", "e4")
	s.receive(t, sub, notifications([]recorder.StoredEvent{e4}, s.insert(t, r, e4)), "only events after max")
}

func testSubscribeTopics(t *testing.T, s *suite) {
	r := s.application(t)
	ns := s.threeEvents(t, r)
	sub := s.subscribe(t, r, recorder.Start(), []string{"t1", "t3"})
	s.receive(t, sub, []recorder.Notification{ns[0], ns[2]}, "topics t1 and t3")
	c := newID()
	later := []recorder.StoredEvent{ev(c, 0, "t2", "skip"), ev(c, 1, "t3", "take")}
	got := s.insert(t, r, later...)
	s.receive(t, sub, notifications(later[1:], got[1:]), "a later t3 event, not the t2 one")
	requireBlocks(t, sub)
}

func testSubscriptionCloseBeforeNext(t *testing.T, s *suite) {
	r := s.application(t)
	s.threeEvents(t, r)
	sub := s.subscribe(t, r, recorder.Start(), nil)
	require.NoError(t, sub.Close())
	require.NoError(t, sub.Close(), "Close is idempotent")
	_, err := sub.Next(s.patient(t))
	requireKind(t, err, recorder.ErrSubscriptionClosed, "next after close")
}

func testSubscriptionCloseWhileBlocked(t *testing.T, s *suite) {
	r := s.application(t)
	sub := s.subscribe(t, r, recorder.Start(), nil)
	ctx := s.patient(t)
	done := make(chan error, 1)
	go func() {
		_, err := sub.Next(ctx)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let Next block; the assertion holds either way
	require.NoError(t, sub.Close())
	err := s.await(t, "next after a concurrent close", func() error { return <-done })
	requireKind(t, err, recorder.ErrSubscriptionClosed, "a blocked next when the subscription closes")
}

func testSubscriptionCloseDropsBuffered(t *testing.T, s *suite) {
	r := s.application(t)
	ns := s.threeEvents(t, r)
	sub := s.subscribe(t, r, recorder.Start(), nil)
	s.receive(t, sub, ns[:1], "the first event")
	require.NoError(t, sub.Close())
	_, err := sub.Next(s.patient(t))
	requireKind(t, err, recorder.ErrSubscriptionClosed, "next after close, with events left")
}

func testSubscriptionContextEnds(t *testing.T, s *suite) {
	r := s.application(t)
	sub := s.subscribe(t, r, recorder.Start(), nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := sub.Next(ctx)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	err := s.await(t, "next after its context ends", func() error { return <-done })
	requireKind(t, err, context.Canceled, "a blocked next when its context ends")
}

func testSubscribeNotSupported(t *testing.T, s *suite) {
	if s.Caps.Subscribe {
		t.Skip("the backend has subscriptions")
	}
	r := s.application(t)
	_, err := r.Subscribe(t.Context(), recorder.Start(), nil)
	requireKind(t, err, recorder.ErrNotSupported, "subscribe")
}
