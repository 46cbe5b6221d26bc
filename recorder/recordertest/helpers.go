package recordertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// newID returns a new originator id. Ids are UUIDs because PostgreSQL stores
// them in a uuid column by default.
func newID() string { return uuid.NewString() }

// ev builds a stored event.
func ev(id string, version int64, topic, state string) recorder.StoredEvent {
	return recorder.StoredEvent{OriginatorID: id, OriginatorVersion: version, Topic: topic, State: []byte(state)}
}

// stream builds versions from..to (inclusive) of one originator, with states
// that name the originator's version and a tag, so that a mixed-up read shows.
func stream(id string, from, to int64, topic, tag string) []recorder.StoredEvent {
	var events []recorder.StoredEvent
	for v := from; v <= to; v++ {
		events = append(events, ev(id, v, topic, fmt.Sprintf("%s:%s:%d", tag, id, v)))
	}
	return events
}

// row is a comparable view of a stored event or notification: States compare
// by bytes (so nil and empty are equal, as a database may return either), and
// testify prints readable diffs.
type row struct {
	ID         int64
	Originator string
	Version    int64
	Topic      string
	State      string
}

func rows(events []recorder.StoredEvent) []row {
	out := make([]row, len(events))
	for i, e := range events {
		out[i] = row{Originator: e.OriginatorID, Version: e.OriginatorVersion, Topic: e.Topic, State: string(e.State)}
	}
	return out
}

func notificationRows(ns []recorder.Notification) []row {
	out := make([]row, len(ns))
	for i, n := range ns {
		out[i] = row{ID: n.ID, Originator: n.OriginatorID, Version: n.OriginatorVersion, Topic: n.Topic, State: string(n.State)}
	}
	return out
}

// notifications pairs inserted events with the ids their insert returned.
func notifications(events []recorder.StoredEvent, ids []int64) []recorder.Notification {
	out := make([]recorder.Notification, len(events))
	for i := range events {
		out[i] = recorder.Notification{StoredEvent: events[i], ID: ids[i]}
	}
	return out
}

func ids(ns []recorder.Notification) []int64 {
	out := make([]int64, len(ns))
	for i, n := range ns {
		out[i] = n.ID
	}
	return out
}

func requireEvents(t testing.TB, want, got []recorder.StoredEvent, msgAndArgs ...any) {
	t.Helper()
	require.Equal(t, rows(want), rows(got), msgAndArgs...)
}

func requireNotifications(t testing.TB, want, got []recorder.Notification, msgAndArgs ...any) {
	t.Helper()
	require.Equal(t, notificationRows(want), notificationRows(got), msgAndArgs...)
}

// requireKind asserts that err matches kind with errors.Is; the message names
// the error's type, so that a raw driver error is easy to spot.
func requireKind(t testing.TB, err, kind error, what string) {
	t.Helper()
	require.Errorf(t, err, "%s: want an error matching %q, got none", what, kind)
	require.Truef(t, errors.Is(err, kind), "%s: want an error matching %q, got %T: %v", what, kind, err, err)
}

// requireRefused asserts a capability's clear refusal: ErrNotSupported, or
// ErrProgramming where the backend treats the request as a misuse.
func requireRefused(t testing.TB, err error, what string) {
	t.Helper()
	require.Errorf(t, err, "%s: want a refusal, got none", what)
	require.Truef(t, errors.Is(err, recorder.ErrNotSupported) || errors.Is(err, recorder.ErrProgramming),
		"%s: want ErrNotSupported or ErrProgramming, got %T: %v", what, err, err)
}

// requireIncreasing asserts ids strictly increase (and, with contiguous ids,
// step by one from first when first > 0).
func requireIncreasing(t testing.TB, got []int64, contiguous bool, what string) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		require.Greaterf(t, got[i], got[i-1], "%s: ids %v do not strictly increase", what, got)
		if contiguous {
			require.Equalf(t, got[i-1]+1, got[i], "%s: ids %v are not contiguous", what, got)
		}
	}
}

func (s *suite) insert(t testing.TB, r recorder.AggregateRecorder, events ...recorder.StoredEvent) []int64 {
	t.Helper()
	got, err := r.InsertEvents(t.Context(), events)
	require.NoError(t, err, "insert events")
	return got
}

func (s *suite) selectEvents(t testing.TB, r recorder.AggregateRecorder, id string, q recorder.EventQuery) []recorder.StoredEvent {
	t.Helper()
	got, err := r.SelectEvents(t.Context(), id, q)
	require.NoError(t, err, "select events of %s", id)
	return got
}

func (s *suite) selectNotifications(t testing.TB, r recorder.ApplicationRecorder, q recorder.NotificationQuery) []recorder.Notification {
	t.Helper()
	got, err := r.SelectNotifications(t.Context(), q)
	require.NoError(t, err, "select notifications")
	return got
}

// all reads the whole notification log.
func (s *suite) all(t testing.TB, r recorder.ApplicationRecorder) []recorder.Notification {
	t.Helper()
	var out []recorder.Notification
	var last recorder.Position
	for {
		page := s.selectNotifications(t, r, recorder.NotificationQuery{After: last, Limit: 500})
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		last = recorder.After(page[len(page)-1].ID)
	}
}

func (s *suite) maxID(t testing.TB, r recorder.ApplicationRecorder) (int64, bool) {
	t.Helper()
	id, ok, err := r.MaxNotificationID(t.Context())
	require.NoError(t, err, "max notification id")
	return id, ok
}

// next reads one notification, failing the test on an error or a hang.
func (s *suite) next(t testing.TB, ctx context.Context, sub recorder.Subscription) recorder.Notification {
	t.Helper()
	n, err := sub.Next(ctx)
	require.NoError(t, err, "subscription next")
	return n
}

// requireBlocks asserts that Next has nothing to deliver: it must still be
// blocking when a short context ends. This bounds a wait; it does not time the
// backend.
func requireBlocks(t testing.TB, sub recorder.Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	n, err := sub.Next(ctx)
	require.Errorf(t, err, "subscription delivered %+v, want it to block when caught up", n)
	require.ErrorIs(t, err, context.DeadlineExceeded, "a caught-up subscription must block until its context ends")
}

// await runs f in a goroutine and waits for it, failing as a hang after Patience.
func (s *suite) await(t testing.TB, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(s.Patience):
		t.Fatalf("%s: no answer after %v; it hangs", what, s.Patience)
		return nil
	}
}

func sortedCopy(v []int64) []int64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v
}
