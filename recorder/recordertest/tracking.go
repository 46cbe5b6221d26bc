package recordertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

var trackingCases = []testCase{
	{"InsertMaxHas", testTrackingInsert},
	{"Wait", testTrackingWait},
	{"NotSupported", testTrackingNotSupported},
}

var processCases = []testCase{
	{"EventsAndTrackingAtomically", testProcessAtomicity},
}

// core.md §11 "tracking: insert".
func testTrackingInsert(t *testing.T, s *suite) {
	if !s.Caps.Tracking {
		t.Skip("the backend has no tracking recorder (Caps.Tracking); NotSupported checks its refusal")
	}
	r := s.tracking(t)
	ctx := t.Context()
	up1, up2, up3 := "upstream1", "upstream2", "upstream3"

	for _, tr := range []recorder.Tracking{{ApplicationName: up1, NotificationID: 21}, {ApplicationName: up1, NotificationID: 22}, {ApplicationName: up2, NotificationID: 21}} {
		require.NoError(t, r.InsertTracking(ctx, tr), "insert %v", tr)
	}
	for _, tr := range []recorder.Tracking{{ApplicationName: up1, NotificationID: 21}, {ApplicationName: up1, NotificationID: 22}, {ApplicationName: up2, NotificationID: 21}, {ApplicationName: up1, NotificationID: 1}} {
		requireKind(t, r.InsertTracking(ctx, tr), recorder.ErrIntegrity, "repeated or lower tracking "+tr.ApplicationName)
	}
	requireMaxTracking(t, r, up1, 22, true)
	requireMaxTracking(t, r, up2, 21, true)
	requireMaxTracking(t, r, up3, 0, false)

	for _, c := range []struct {
		name string
		id   int64
		want bool
	}{{up1, 20, true}, {up1, 21, true}, {up1, 22, true}, {up1, 23, false}, {up3, 1, false}} {
		has, err := r.HasTrackingID(ctx, c.name, c.id)
		require.NoError(t, err)
		require.Equal(t, c.want, has, "has tracking id %s %d", c.name, c.id)
	}

	// Gaps are allowed, but filling one later is not.
	require.NoError(t, r.InsertTracking(ctx, recorder.Tracking{ApplicationName: up1, NotificationID: 24}))
	requireKind(t, r.InsertTracking(ctx, recorder.Tracking{ApplicationName: up1, NotificationID: 23}), recorder.ErrIntegrity, "gap-filling tracking id")
	has, err := r.HasTrackingID(ctx, up1, 23)
	require.NoError(t, err)
	require.True(t, has, "position 24 has reached 23")
	requireMaxTracking(t, r, up1, 24, true)
}

func requireMaxTracking(t *testing.T, r recorder.TrackingRecorder, name string, want int64, wantOK bool) {
	t.Helper()
	got, ok, err := r.MaxTrackingID(t.Context(), name)
	require.NoError(t, err, "max tracking id %s", name)
	require.Equal(t, wantOK, ok, "max tracking id %s is set", name)
	if wantOK {
		require.Equal(t, want, got, "max tracking id %s", name)
	}
}

// core.md §11 "tracking: wait": timeouts, wake-ups, interrupts.
func testTrackingWait(t *testing.T, s *suite) {
	if !s.Caps.Tracking {
		t.Skip("the backend has no tracking recorder (Caps.Tracking)")
	}
	r := s.tracking(t)
	ctx := t.Context()
	const up, short = "upstream", 100 * time.Millisecond

	err := r.Wait(ctx, up, 21, short)
	requireKind(t, err, recorder.ErrTimeout, "wait for a position not reached")
	require.False(t, errors.Is(err, recorder.ErrWaitInterrupted), "a timeout is not an interrupt: %v", err)

	require.NoError(t, r.InsertTracking(ctx, recorder.Tracking{ApplicationName: up, NotificationID: 21}))
	require.NoError(t, r.Wait(ctx, up, 21, short), "the position is reached")
	require.NoError(t, r.Wait(ctx, up, 20, short), "the position is past")
	requireKind(t, r.Wait(ctx, up, 22, short), recorder.ErrTimeout, "wait for 22")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	err = r.Wait(cancelled, up, 22, s.Patience)
	requireKind(t, err, recorder.ErrWaitInterrupted, "wait with an interrupt already set")
	require.False(t, errors.Is(err, recorder.ErrTimeout), "an interrupt is not a timeout: %v", err)
	require.NoError(t, r.Wait(cancelled, up, 21, s.Patience), "a reached position wins over an interrupt")

	// A later insert wakes a waiter.
	woken := make(chan error, 1)
	go func() { woken <- r.Wait(ctx, up, 23, s.Patience) }()
	require.NoError(t, r.InsertTracking(ctx, recorder.Tracking{ApplicationName: up, NotificationID: 23}))
	require.NoError(t, s.await(t, "a waiter after the insert that reaches its position", func() error { return <-woken }))

	// An interrupt wakes a blocked waiter.
	interrupt, stop := context.WithCancel(ctx)
	blocked := make(chan error, 1)
	go func() { blocked <- r.Wait(interrupt, up, 99, s.Patience) }()
	time.Sleep(20 * time.Millisecond) // let it block; the assertion holds either way
	stop()
	err = s.await(t, "a waiter after its interrupt", func() error { return <-blocked })
	requireKind(t, err, recorder.ErrWaitInterrupted, "interrupting a blocked wait")
}

// A backend without tracking refuses tracking and process recorders clearly.
func testTrackingNotSupported(t *testing.T, s *suite) {
	if s.Caps.Tracking {
		t.Skip("the backend has tracking recorders")
	}
	f := s.open(t)
	_, err := f.TrackingRecorder(t.Context())
	requireKind(t, err, recorder.ErrNotSupported, "tracking recorder")
	_, err = f.ProcessRecorder(t.Context())
	requireKind(t, err, recorder.ErrNotSupported, "process recorder")
}

// core.md §4 and §11 "process: insert select, has tracking id, lower later".
func testProcessAtomicity(t *testing.T, s *suite) {
	if !s.Caps.Tracking {
		t.Skip("the backend has no process recorder (Caps.Tracking)")
	}
	r := s.process(t)
	ctx := t.Context()
	const up = "upstream"
	a := newID()

	e1 := ev(a, 0, "t", "a0")
	got, err := r.InsertEvents(ctx, []recorder.StoredEvent{e1}, recorder.WithTracking(recorder.Tracking{ApplicationName: up, NotificationID: 1}))
	require.NoError(t, err, "events with tracking")
	require.Len(t, got, 1)
	requireMaxTracking(t, r, up, 1, true)
	has, err := r.HasTrackingID(ctx, up, 1)
	require.NoError(t, err)
	require.True(t, has)

	e2 := ev(a, 1, "t", "a1")
	s.insert(t, r, e2)
	requireMaxTracking(t, r, up, 1, true) // events without tracking leave it unchanged

	maxBefore, _ := s.maxID(t, r)
	got, err = r.InsertEvents(ctx, nil, recorder.WithTracking(recorder.Tracking{ApplicationName: up, NotificationID: 2}))
	require.NoError(t, err, "tracking without events")
	require.Empty(t, got)
	requireMaxTracking(t, r, up, 2, true)
	maxAfter, _ := s.maxID(t, r)
	require.Equal(t, maxBefore, maxAfter, "tracking alone writes no event")

	// A tracking violation writes no events.
	b := newID()
	_, err = r.InsertEvents(ctx, []recorder.StoredEvent{ev(b, 0, "t", "b0")}, recorder.WithTracking(recorder.Tracking{ApplicationName: up, NotificationID: 2}))
	requireKind(t, err, recorder.ErrIntegrity, "events with a repeated tracking id")
	require.Empty(t, s.selectEvents(t, r, b, recorder.EventQuery{}), "the events of a failed process insert")
	_, err = r.InsertEvents(ctx, []recorder.StoredEvent{ev(b, 0, "t", "b0")}, recorder.WithTracking(recorder.Tracking{ApplicationName: up, NotificationID: 1}))
	requireKind(t, err, recorder.ErrIntegrity, "events with a lower tracking id")
	require.Empty(t, s.selectEvents(t, r, b, recorder.EventQuery{}), "the events of a failed process insert")

	// An event violation writes no tracking.
	_, err = r.InsertEvents(ctx, []recorder.StoredEvent{ev(a, 1, "t", "dup")}, recorder.WithTracking(recorder.Tracking{ApplicationName: up, NotificationID: 3}))
	requireKind(t, err, recorder.ErrIntegrity, "a duplicate event with tracking")
	requireMaxTracking(t, r, up, 2, true)
	maxAfter, _ = s.maxID(t, r)
	require.Equal(t, maxBefore, maxAfter)

	// Lower later, through InsertTracking too.
	requireKind(t, r.InsertTracking(ctx, recorder.Tracking{ApplicationName: up, NotificationID: 1}), recorder.ErrIntegrity, "lower tracking id later")
	require.NoError(t, r.InsertTracking(ctx, recorder.Tracking{ApplicationName: up, NotificationID: 5}))
	requireEvents(t, []recorder.StoredEvent{e1, e2}, s.selectEvents(t, r, a, recorder.EventQuery{}))
}
