package recordertest

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

var failureCases = []testCase{
	{"CancelledContext", testCancelledContext},
	{"CancelledMidSubscription", testCancelledMidSubscription},
	{"ClosedFactory", testClosedFactory},
}

// lessons.md §2 case 11: a cancelled context is an error from every operation,
// never an empty result that looks like the end of the data.
func testCancelledContext(t *testing.T, s *suite) {
	r := s.application(t)
	ns := s.threeEvents(t, r)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	_, err := r.SelectEvents(ctx, ns[0].OriginatorID, recorder.EventQuery{})
	requireKind(t, err, context.Canceled, "select events with a cancelled context")
	_, err = r.SelectNotifications(ctx, recorder.NotificationQuery{Limit: 10})
	requireKind(t, err, context.Canceled, "select notifications with a cancelled context")
	_, _, err = r.MaxNotificationID(ctx)
	requireKind(t, err, context.Canceled, "max notification id with a cancelled context")
	_, err = r.InsertEvents(ctx, []recorder.StoredEvent{ev(newID(), 0, "t", "late")})
	requireKind(t, err, context.Canceled, "insert events with a cancelled context")
	requireNotifications(t, ns, s.all(t, r), "an insert with a cancelled context writes nothing")

	if s.Caps.Tracking {
		tr := s.tracking(t)
		requireKind(t, tr.InsertTracking(ctx, recorder.Tracking{ApplicationName: "up", NotificationID: 1}), context.Canceled,
			"insert tracking with a cancelled context")
		_, ok, err := tr.MaxTrackingID(t.Context(), "up")
		require.NoError(t, err)
		require.False(t, ok, "an insert with a cancelled context writes no tracking")
		_, _, err = tr.MaxTrackingID(ctx, "up")
		requireKind(t, err, context.Canceled, "max tracking id with a cancelled context")
		_, err = tr.HasTrackingID(ctx, "up", 1)
		requireKind(t, err, context.Canceled, "has tracking id with a cancelled context")
	}
}

// A subscription whose context ends in the middle of the events it has to
// deliver returns the context's error, not another event or a silent end.
func testCancelledMidSubscription(t *testing.T, s *suite) {
	r := s.application(t)
	ns := s.threeEvents(t, r)
	sub := s.subscribe(t, r, recorder.Start(), nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	require.Equal(t, ns[0].ID, s.next(t, ctx, sub).ID)
	cancel()
	_, err := sub.Next(ctx)
	requireKind(t, err, context.Canceled, "next after its context ends, with events left")
}

// A closed factory gives a clear error, not a hang: from itself and from the
// recorders and subscriptions it built.
func testClosedFactory(t *testing.T, s *suite) {
	f := s.open(t)
	ctx := t.Context()
	r, err := f.ApplicationRecorder(ctx)
	require.NoError(t, err)
	e := ev(newID(), 0, "t", "e")
	s.insert(t, r, e)
	var sub recorder.Subscription
	if s.Caps.Subscribe {
		sub, err = r.Subscribe(ctx, recorder.Start(), nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = sub.Close() })
		require.Equal(t, e.State, s.next(t, s.patient(t), sub).State)
	}
	require.NoError(t, f.Close(), "close the factory")

	requirePersistence := func(err error, what string) {
		t.Helper()
		require.Errorf(t, err, "%s after the factory closed: want an error", what)
		require.Truef(t, errors.Is(err, recorder.ErrPersistence),
			"%s after the factory closed: want a persistence error (such as ErrInterface or ErrOperational), got %T: %v", what, err, err)
	}
	requirePersistence(s.await(t, "insert after close", func() error {
		_, err := r.InsertEvents(ctx, []recorder.StoredEvent{ev(newID(), 0, "t", "late")})
		return err
	}), "insert events")
	requirePersistence(s.await(t, "select after close", func() error {
		_, err := r.SelectNotifications(ctx, recorder.NotificationQuery{Limit: 10})
		return err
	}), "select notifications")
	requirePersistence(s.await(t, "select events after close", func() error {
		_, err := r.SelectEvents(ctx, e.OriginatorID, recorder.EventQuery{})
		return err
	}), "select events")
	requirePersistence(s.await(t, "max after close", func() error {
		_, _, err := r.MaxNotificationID(ctx)
		return err
	}), "max notification id")
	// Building a recorder may succeed lazily, but then using it must fail.
	err = s.await(t, "build a recorder after close", func() error {
		r2, err := f.ApplicationRecorder(ctx)
		if err != nil {
			return err
		}
		_, _, err = r2.MaxNotificationID(ctx)
		return err
	})
	requirePersistence(err, "a recorder built after close")
	if sub != nil {
		err := s.await(t, "subscription next after close", func() error {
			_, err := sub.Next(s.patient(t))
			return err
		})
		require.Error(t, err, "subscription next after the factory closed")
		require.Truef(t, errors.Is(err, recorder.ErrPersistence) || errors.Is(err, recorder.ErrSubscriptionClosed),
			"subscription next after the factory closed: want a persistence error or ErrSubscriptionClosed, got %T: %v", err, err)
	}
}
