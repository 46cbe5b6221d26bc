package recordertest

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

var aggregateCases = []testCase{
	{"InsertAndSelect", testAggregateInsertAndSelect},
	{"ReadAfterVersionNoHoles", testReadAfterVersionNoHoles},
	{"CreateTwiceNoOverwrite", testCreateTwiceNoOverwrite},
	{"VersionGaps", testVersionGaps},
	{"StateRoundTrip", testStateRoundTrip},
	{"Snapshots", testSnapshots},
	{"UnknownPurpose", testUnknownPurpose},
}

// A purpose other than events and snapshots is a programming error, named in
// the error.
func testUnknownPurpose(t *testing.T, s *suite) {
	r, err := s.open(t).AggregateRecorder(t.Context(), recorder.Purpose("snapshot"))
	require.ErrorIs(t, err, recorder.ErrProgramming)
	require.ErrorContains(t, err, `"snapshot"`)
	require.Nil(t, r)
}

// core.md §11 "aggregate: insert and select". First versions are 0 throughout,
// which every backend accepts (EventStoreDB streams start at revision 0).
func testAggregateInsertAndSelect(t *testing.T, s *suite) {
	r := s.aggregate(t, recorder.PurposeEvents)
	ctx := t.Context()
	id := newID()

	got, err := r.InsertEvents(ctx, nil)
	require.NoError(t, err, "an empty batch is allowed")
	require.Empty(t, got, "an empty batch returns no ids")
	require.Empty(t, s.selectEvents(t, r, id, recorder.EventQuery{}), "an unknown originator has no events")

	e1 := ev(id, 0, "topic1", "state1")
	e2 := ev(id, 1, "topic2", "state2")
	e3 := ev(id, 2, "topic3", "state3")
	s.insert(t, r, e1)
	requireEvents(t, []recorder.StoredEvent{e1}, s.selectEvents(t, r, id, recorder.EventQuery{}))

	for _, batch := range []struct {
		name   string
		events []recorder.StoredEvent
	}{
		{"re-insert", []recorder.StoredEvent{e1}},
		{"[existing, new]", []recorder.StoredEvent{e1, e2}},
		{"[new, new] with one version twice", []recorder.StoredEvent{e2, e2}},
	} {
		_, err := r.InsertEvents(ctx, batch.events)
		requireKind(t, err, recorder.ErrIntegrity, batch.name)
		requireEvents(t, []recorder.StoredEvent{e1}, s.selectEvents(t, r, id, recorder.EventQuery{}),
			"%s must write nothing", batch.name)
	}

	s.insert(t, r, e2, e3)
	requireEvents(t, []recorder.StoredEvent{e1, e2, e3}, s.selectEvents(t, r, id, recorder.EventQuery{}))
	requireEvents(t, []recorder.StoredEvent{e3}, s.selectEvents(t, r, id, recorder.EventQuery{Desc: true, Limit: 1}),
		"desc, limit 1 is the last event")
	requireEvents(t, []recorder.StoredEvent{e2}, s.selectEvents(t, r, id, recorder.EventQuery{UpTo: recorder.Bounded(1), Desc: true, Limit: 1}),
		"lte 1, desc, limit 1")
	requireEvents(t, []recorder.StoredEvent{e2}, s.selectEvents(t, r, id, recorder.EventQuery{After: recorder.Bounded(0), UpTo: recorder.Bounded(1)}),
		"gt 0, lte 1")
	requireEvents(t, []recorder.StoredEvent{e1, e2}, s.selectEvents(t, r, id, recorder.EventQuery{Limit: 2}),
		"limit applies after ascending order")
	requireEvents(t, []recorder.StoredEvent{e3, e2}, s.selectEvents(t, r, id, recorder.EventQuery{Desc: true, Limit: 2}),
		"limit applies after descending order")
	require.Empty(t, s.selectEvents(t, r, id, recorder.EventQuery{After: recorder.Bounded(2)}), "gt last")

	other := newID()
	o1 := ev(other, 0, "topic1", "other")
	s.insert(t, r, o1)
	requireEvents(t, []recorder.StoredEvent{o1}, s.selectEvents(t, r, other, recorder.EventQuery{}),
		"another originator may also start at version 0")
	requireEvents(t, []recorder.StoredEvent{e1, e2, e3}, s.selectEvents(t, r, id, recorder.EventQuery{}))
}

// lessons.md §2 case 9 (F5): every combination of gt, lte, desc and limit on a
// 10-event stream returns exactly the versions it should, with no zero values.
func testReadAfterVersionNoHoles(t *testing.T, s *suite) {
	r := s.aggregate(t, recorder.PurposeEvents)
	id := newID()
	events := stream(id, 0, 9, "topic", "s")
	s.insert(t, r, events...)
	// A neighbour, so that a backend that scans instead of indexing is seen.
	s.insert(t, r, stream(newID(), 0, 9, "topic", "n")...)

	bounds := []recorder.Bound{{}, recorder.Bounded(-1), recorder.Bounded(0), recorder.Bounded(1),
		recorder.Bounded(5), recorder.Bounded(8), recorder.Bounded(9), recorder.Bounded(10)}
	for _, gt := range bounds {
		for _, lte := range bounds {
			for _, desc := range []bool{false, true} {
				for _, limit := range []int{0, 1, 3, 100} {
					q := recorder.EventQuery{After: gt, UpTo: lte, Desc: desc, Limit: limit}
					var want []recorder.StoredEvent
					for _, e := range events {
						g, hasGT := gt.Value()
						l, hasLTE := lte.Value()
						if (!hasGT || e.OriginatorVersion > g) && (!hasLTE || e.OriginatorVersion <= l) {
							want = append(want, e)
						}
					}
					if desc {
						for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
							want[i], want[j] = want[j], want[i]
						}
					}
					if limit > 0 && len(want) > limit {
						want = want[:limit]
					}
					requireEvents(t, want, s.selectEvents(t, r, id, q),
						"gt %s, lte %s, desc %v, limit %d", gt, lte, desc, limit)
				}
			}
		}
	}
}

// lessons.md §2 case 4 (F4): a second create of an existing originator fails and
// leaves the first events unchanged, byte for byte.
func testCreateTwiceNoOverwrite(t *testing.T, s *suite) {
	r := s.aggregate(t, recorder.PurposeEvents)
	id := newID()
	first := []recorder.StoredEvent{ev(id, 0, "Created", "\x00first\xff"), ev(id, 1, "Renamed", "\x01first\xfe")}
	s.insert(t, r, first...)

	_, err := r.InsertEvents(t.Context(), []recorder.StoredEvent{ev(id, 0, "Created", "second")})
	requireKind(t, err, recorder.ErrIntegrity, "create twice")
	_, err = r.InsertEvents(t.Context(), []recorder.StoredEvent{ev(id, 0, "Created", "second"), ev(id, 1, "Renamed", "second")})
	requireKind(t, err, recorder.ErrIntegrity, "create twice with a longer batch")
	requireEvents(t, first, s.selectEvents(t, r, id, recorder.EventQuery{}), "the first events must be unchanged")
}

// Capabilities.RejectsVersionGaps, both ways.
func testVersionGaps(t *testing.T, s *suite) {
	r := s.aggregate(t, recorder.PurposeEvents)
	ctx := t.Context()
	id := newID()
	if s.Caps.RejectsVersionGaps {
		e0 := ev(id, 0, "t", "0")
		s.insert(t, r, e0)
		for _, batch := range []struct {
			name   string
			events []recorder.StoredEvent
		}{
			{"a batch that skips a version after the stored one", []recorder.StoredEvent{ev(id, 2, "t", "2")}},
			{"a batch with a gap inside", []recorder.StoredEvent{ev(id, 1, "t", "1"), ev(id, 3, "t", "3")}},
		} {
			_, err := r.InsertEvents(ctx, batch.events)
			requireKind(t, err, recorder.ErrIntegrity, batch.name)
		}
		requireEvents(t, []recorder.StoredEvent{e0}, s.selectEvents(t, r, id, recorder.EventQuery{}), "gapped batches write nothing")
		_, err := r.InsertEvents(ctx, []recorder.StoredEvent{ev(newID(), 1, "t", "1")})
		requireKind(t, err, recorder.ErrIntegrity, "a new originator starting at version 1")
		return
	}
	// Without the restriction, versions are stored as given: they may start at
	// 1 (the domain's default initial version), skip, and arrive out of order.
	e1, e3, e5, e2 := ev(id, 1, "t", "1"), ev(id, 3, "t", "3"), ev(id, 5, "t", "5"), ev(id, 2, "t", "2")
	s.insert(t, r, e1)
	s.insert(t, r, e3, e5)
	requireEvents(t, []recorder.StoredEvent{e1, e3, e5}, s.selectEvents(t, r, id, recorder.EventQuery{}))
	requireEvents(t, []recorder.StoredEvent{e3}, s.selectEvents(t, r, id, recorder.EventQuery{After: recorder.Bounded(1), UpTo: recorder.Bounded(4)}))
	s.insert(t, r, e2)
	requireEvents(t, []recorder.StoredEvent{e1, e2, e3, e5}, s.selectEvents(t, r, id, recorder.EventQuery{}),
		"a lower version inserted later is read in version order")
	requireEvents(t, []recorder.StoredEvent{e5, e3}, s.selectEvents(t, r, id, recorder.EventQuery{After: recorder.Bounded(2), Desc: true}))
}

// State bytes round-trip exactly: binary, empty, large, and a nanosecond
// timestamp inside the state (the records carry no timestamp column: an event's
// time lives in its state, so exact bytes are exact times on every backend,
// lessons.md §2 case 10). Neither the caller's input nor a read result aliases
// the store.
func testStateRoundTrip(t *testing.T, s *suite) {
	r := s.application(t)
	id := newID()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	large := make([]byte, 100<<10)
	_, _ = rand.Read(large)
	when := time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.FixedZone("", 5*3600+30*60))
	stamp, err := when.MarshalBinary()
	require.NoError(t, err)
	states := []struct {
		name  string
		topic string
		state []byte
	}{
		{"every byte value", "eventsourcing_grpc.example:Order.Created", all},
		{"empty", "example:Empty", []byte{}},
		{"nil", "example:Nil", nil},
		{"100 KiB of random bytes", "example:Large", large},
		{"nanosecond timestamp", "example:Timed", stamp},
		{"non-ASCII text with NUL", "übung:Ereignis ✓", []byte("naïve \x00 日本 \"quoted\"")},
	}
	var events []recorder.StoredEvent
	for i, st := range states {
		events = append(events, recorder.StoredEvent{OriginatorID: id, OriginatorVersion: int64(i), Topic: st.topic, State: bytes.Clone(st.state)})
	}
	newIDs := s.insert(t, r, events...)
	// Mutating what was inserted must not reach the store.
	for _, e := range events {
		for i := range e.State {
			e.State[i] ^= 0xff
		}
	}
	check := func(got []recorder.StoredEvent, how string) {
		t.Helper()
		require.Len(t, got, len(states), how)
		for i, st := range states {
			require.Equalf(t, st.topic, got[i].Topic, "%s: topic of %s", how, st.name)
			require.Truef(t, bytes.Equal(st.state, got[i].State), "%s: state of %s differs: got %d bytes, want %d",
				how, st.name, len(got[i].State), len(st.state))
		}
		var back time.Time
		require.NoError(t, back.UnmarshalBinary(got[4].State), how)
		require.True(t, when.Equal(back), "%s: timestamp %v read back as %v", how, when, back)
	}
	got := s.selectEvents(t, r, id, recorder.EventQuery{})
	check(got, "select events")
	// Mutating what was read must not reach the store either.
	for _, e := range got {
		for i := range e.State {
			e.State[i] ^= 0xff
		}
	}
	check(s.selectEvents(t, r, id, recorder.EventQuery{}), "select events again")

	ns := s.selectNotifications(t, r, recorder.NotificationQuery{Limit: 100})
	require.Equal(t, newIDs, ids(ns))
	evs := make([]recorder.StoredEvent, len(ns))
	for i := range ns {
		evs[i] = ns[i].StoredEvent
	}
	check(evs, "select notifications")
}

// The snapshots recorder (recorder.PurposeSnapshots): one snapshot per insert, at versions with gaps;
// the last one, and (SnapshotUpTo) the latest at or before a version.
func testSnapshots(t *testing.T, s *suite) {
	r := s.aggregate(t, recorder.PurposeSnapshots)
	id := newID()
	s2, s5, s9 := ev(id, 2, "example:Dog.Snapshot", "2"), ev(id, 5, "example:Dog.Snapshot", "5"), ev(id, 9, "example:Dog.Snapshot", "9")
	for _, snap := range []recorder.StoredEvent{s2, s5, s9} {
		s.insert(t, r, snap)
	}
	requireEvents(t, []recorder.StoredEvent{s9}, s.selectEvents(t, r, id, recorder.EventQuery{Desc: true, Limit: 1}), "the last snapshot")
	require.Empty(t, s.selectEvents(t, r, newID(), recorder.EventQuery{Desc: true, Limit: 1}), "no snapshot of an unknown originator")
	if !s.Caps.SnapshotUpTo {
		return
	}
	requireEvents(t, []recorder.StoredEvent{s5}, s.selectEvents(t, r, id, recorder.EventQuery{UpTo: recorder.Bounded(7), Desc: true, Limit: 1}),
		"the latest snapshot at or before 7")
	requireEvents(t, []recorder.StoredEvent{s5}, s.selectEvents(t, r, id, recorder.EventQuery{UpTo: recorder.Bounded(5), Desc: true, Limit: 1}),
		"the latest snapshot at or before 5")
	require.Empty(t, s.selectEvents(t, r, id, recorder.EventQuery{UpTo: recorder.Bounded(1), Desc: true, Limit: 1}),
		"no snapshot at or before 1")
}
