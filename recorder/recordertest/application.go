package recordertest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

var applicationCases = []testCase{
	{"InsertAndSelect", testApplicationInsertAndSelect},
	{"SelectNotificationVectors", testSelectNotificationVectors},
	{"MultiOriginatorBatch", testMultiOriginatorBatch},
	{"FailedBatchWritesNothing", testFailedBatchWritesNothing},
	{"NonInterleavingBatches", testNonInterleavingBatches},
	{"ConcurrentWritersAndReaders", testConcurrentWritersAndReaders},
}

// core.md §11 "application: insert select".
func testApplicationInsertAndSelect(t *testing.T, s *suite) {
	r := s.application(t)
	ctx := t.Context()

	_, ok := s.maxID(t, r)
	require.False(t, ok, "an empty log has no max notification id")
	require.Empty(t, s.selectNotifications(t, r, recorder.NotificationQuery{Limit: 10}), "an empty log")
	got, err := r.InsertEvents(ctx, nil)
	require.NoError(t, err, "an empty batch is allowed")
	require.Empty(t, got, "an empty batch returns no ids")

	a, b := newID(), newID()
	e1, e2, e3 := ev(a, 0, "t1", "e1"), ev(a, 1, "t2", "e2"), ev(b, 0, "t3", "e3")
	ids12 := s.insert(t, r, e1, e2)
	require.Len(t, ids12, 2, "one id per event")
	ids3 := s.insert(t, r, e3)
	require.Len(t, ids3, 1, "one id per event")
	all := append(append([]int64{}, ids12...), ids3...)
	if s.Caps.ContiguousIDs {
		require.Equal(t, []int64{1, 2, 3}, all, "ids start at 1 and are contiguous")
	} else {
		requireIncreasing(t, all, false, "ids of successive inserts")
	}

	for _, batch := range [][]recorder.StoredEvent{{e1}, {e3}, {e2}} {
		_, err := r.InsertEvents(ctx, batch)
		requireKind(t, err, recorder.ErrIntegrity, "re-insert "+string(batch[0].State))
	}
	maxID, ok := s.maxID(t, r)
	require.True(t, ok)
	require.Equal(t, all[2], maxID, "max notification id is the last event's")
	requireNotifications(t, notifications([]recorder.StoredEvent{e1, e2, e3}, all),
		s.selectNotifications(t, r, recorder.NotificationQuery{Limit: 10}))
	requireEvents(t, []recorder.StoredEvent{e1, e2}, s.selectEvents(t, r, a, recorder.EventQuery{}))
	requireEvents(t, []recorder.StoredEvent{e3}, s.selectEvents(t, r, b, recorder.EventQuery{}))
}

// The §4 vectors on three notifications (id n has topic tn), expressed in
// positions 1..3 that map to the backend's ids, so they hold with gaps too.
func testSelectNotificationVectors(t *testing.T, s *suite) {
	r := s.application(t)
	a, b := newID(), newID()
	events := []recorder.StoredEvent{ev(a, 0, "t1", "e1"), ev(a, 1, "t2", "e2"), ev(b, 0, "t3", "e3")}
	got := s.insert(t, r, events[0], events[1])
	got = append(got, s.insert(t, r, events[2])...)
	ns := notifications(events, got)
	after := func(p int) recorder.Position { // position 1..3 → after its id; 0 → the start
		if p == 0 {
			return recorder.Start()
		}
		return recorder.After(ns[p-1].ID)
	}
	upTo := func(p int) recorder.Bound { // position 1..3 → its id; 0 → no bound
		if p == 0 {
			return recorder.Bound{}
		}
		return recorder.Bounded(ns[p-1].ID)
	}

	vectors := []struct {
		start     int // position, 0 = nil
		limit     int
		exclusive bool
		stop      int // position, 0 = none
		topics    []string
		want      []int // positions
	}{
		{1, 10, true, 0, nil, []int{2, 3}},
		{2, 10, true, 0, nil, []int{3}},
		{3, 1, true, 0, nil, nil},
		{0, 10, false, 2, nil, []int{1, 2}},
		{2, 10, false, 2, nil, []int{2}},
		{1, 3, false, 0, []string{"t1", "t3"}, []int{1, 3}},
		{1, 3, false, 0, []string{"t2"}, []int{2}},
		{2, 1, false, 0, nil, []int{2}},
		{1, 1, true, 0, nil, []int{2}},
		{2, 2, false, 0, nil, []int{2, 3}},
		// And around them.
		{0, 10, false, 0, nil, []int{1, 2, 3}},
		{0, 10, true, 0, nil, []int{1, 2, 3}}, // exclusivity is ignored without a start
		{0, 2, false, 0, nil, []int{1, 2}},
		{0, 1, false, 0, []string{"t3"}, []int{3}}, // topics apply before the limit
		{0, 10, false, 0, []string{"t9"}, nil},
		{3, 10, false, 0, nil, []int{3}},
		{0, 10, false, 1, nil, []int{1}},
		{3, 10, false, 2, nil, nil},
	}
	for _, v := range vectors {
		q := recorder.NotificationQuery{After: after(v.start), Inclusive: !v.exclusive, Limit: v.limit, Stop: upTo(v.stop), Topics: v.topics}
		var want []recorder.Notification
		for _, p := range v.want {
			want = append(want, ns[p-1])
		}
		requireNotifications(t, want, s.selectNotifications(t, r, q),
			"start %d, limit %d, exclusive %v, stop %d, topics %v (positions)", v.start, v.limit, v.exclusive, v.stop, v.topics)
	}

	// Start 0 is valid everywhere (EventStoreDB's start of the log).
	requireNotifications(t, ns, s.selectNotifications(t, r, recorder.NotificationQuery{After: recorder.After(0), Inclusive: true, Limit: 10}), "start 0")
	// A start past the end is empty, unless starts must be record positions.
	beyond := recorder.NotificationQuery{After: recorder.After(ns[2].ID + 1), Inclusive: true, Limit: 10}
	page, err := r.SelectNotifications(t.Context(), beyond)
	if s.Caps.ExactStartPositions && err != nil {
		requireKind(t, err, recorder.ErrData, "a start that is not a record position")
	} else {
		require.NoError(t, err, "start past the end")
		require.Empty(t, page, "start past the end")
	}
	page, err = r.SelectNotifications(t.Context(), recorder.NotificationQuery{After: recorder.After(ns[2].ID), Limit: 10})
	require.NoError(t, err, "exclusive start at the last id")
	require.Empty(t, page, "exclusive start at the last id")
}

// One batch for several originators is atomic and gets contiguous ids; a
// backend without the capability refuses it and writes nothing.
func testMultiOriginatorBatch(t *testing.T, s *suite) {
	r := s.application(t)
	a, b := newID(), newID()
	batch := []recorder.StoredEvent{ev(a, 0, "t", "a0"), ev(b, 0, "t", "b0"), ev(a, 1, "t", "a1")}
	got, err := r.InsertEvents(t.Context(), batch)
	if !s.Caps.MultiOriginatorBatches {
		requireRefused(t, err, "a batch of two originators")
		require.Empty(t, s.all(t, r), "a refused batch writes nothing")
		return
	}
	require.NoError(t, err)
	require.Len(t, got, 3)
	requireIncreasing(t, got, s.Caps.ContiguousIDs, "ids of one batch")
	requireNotifications(t, notifications(batch, got), s.all(t, r))
	requireEvents(t, []recorder.StoredEvent{batch[0], batch[2]}, s.selectEvents(t, r, a, recorder.EventQuery{}))
	requireEvents(t, []recorder.StoredEvent{batch[1]}, s.selectEvents(t, r, b, recorder.EventQuery{}))
}

// lessons.md §2 case 8: a failing batch writes nothing, whichever event fails.
func testFailedBatchWritesNothing(t *testing.T, s *suite) {
	r := s.application(t)
	x := newID()
	stored := []recorder.StoredEvent{ev(x, 0, "t", "x0"), ev(x, 1, "t", "x1")}
	s.insert(t, r, stored...)
	before := s.all(t, r)
	maxBefore, _ := s.maxID(t, r)
	y, z := newID(), newID()

	type batch struct {
		name   string
		events []recorder.StoredEvent
	}
	batches := []batch{
		{"[existing, new]", []recorder.StoredEvent{ev(x, 1, "t", "x1'"), ev(x, 2, "t", "x2")}},
		{"[new, new] with one version twice", []recorder.StoredEvent{ev(x, 2, "t", "x2"), ev(x, 2, "t", "x2'")}},
	}
	if s.Caps.MultiOriginatorBatches {
		batches = append(batches,
			batch{"[new, existing] of two originators", []recorder.StoredEvent{ev(y, 0, "t", "y0"), ev(x, 0, "t", "x0'")}},
			batch{"[new, new, new] with one event twice", []recorder.StoredEvent{ev(y, 0, "t", "y0"), ev(z, 0, "t", "z0"), ev(y, 0, "t", "y0'")}},
		)
	}
	if s.Caps.RejectsVersionGaps {
		batches = append(batches, batch{"a version gap", []recorder.StoredEvent{ev(x, 2, "t", "x2"), ev(x, 4, "t", "x4")}})
	}
	for _, b := range batches {
		_, err := r.InsertEvents(t.Context(), b.events)
		requireKind(t, err, recorder.ErrIntegrity, b.name)
		requireEvents(t, stored, s.selectEvents(t, r, x, recorder.EventQuery{}), "%s: the stored events are unchanged", b.name)
		require.Empty(t, s.selectEvents(t, r, y, recorder.EventQuery{}), "%s wrote a new originator", b.name)
		require.Empty(t, s.selectEvents(t, r, z, recorder.EventQuery{}), "%s wrote a new originator", b.name)
		maxAfter, _ := s.maxID(t, r)
		require.Equal(t, maxBefore, maxAfter, "%s: max notification id changed", b.name)
		requireNotifications(t, before, s.all(t, r), "%s: the notification log changed", b.name)
	}
}

// lessons.md §2 case 7 and core.md §11 "non-interleaving ids": two racing
// batches get id ranges that do not overlap, and each is one run of the log.
func testNonInterleavingBatches(t *testing.T, s *suite) {
	r := s.application(t)
	const rounds = 3
	for round := range rounds {
		var batches [2][]recorder.StoredEvent
		var got [2][]int64
		var errs [2]error
		for i := range batches {
			batches[i] = stream(newID(), 0, int64(s.BatchSize-1), "t", fmt.Sprint(i))
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range batches {
			wg.Go(func() {
				<-start
				got[i], errs[i] = r.InsertEvents(t.Context(), batches[i])
			})
		}
		close(start)
		wg.Wait()
		for i := range batches {
			require.NoError(t, errs[i], "round %d batch %d", round, i)
			require.Len(t, got[i], s.BatchSize, "round %d batch %d", round, i)
			requireIncreasing(t, got[i], s.Caps.ContiguousIDs, fmt.Sprintf("round %d batch %d", round, i))
		}
		a, b := got[0], got[1]
		require.Truef(t, a[len(a)-1] < b[0] || b[len(b)-1] < a[0],
			"round %d: the batches' ids interleave: %d..%d and %d..%d", round, a[0], a[len(a)-1], b[0], b[len(b)-1])
	}
	// In the log, each batch is one uninterrupted run.
	log := s.all(t, r)
	require.Len(t, log, rounds*2*s.BatchSize)
	for i := 0; i < len(log); i += s.BatchSize {
		for j := i; j < i+s.BatchSize; j++ {
			require.Equalf(t, log[i].OriginatorID, log[j].OriginatorID, "position %d: a batch is interrupted in the log", j)
		}
	}
	if s.Caps.ContiguousIDs {
		for i, n := range log {
			require.Equal(t, int64(i+1), n.ID, "the log's ids are 1..n")
		}
	}
}

// core.md §11 "application: concurrent no conflicts": 10 writers insert
// 100-event batches while 2 readers page through the log.
func testConcurrentWritersAndReaders(t *testing.T, s *suite) {
	r := s.application(t)
	ctx := s.patient(t)
	const writers, perBatch, readers = 10, 100, 2
	total := writers * s.ConcurrentJobs * perBatch

	var wg sync.WaitGroup
	writeErrs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for j := range s.ConcurrentJobs {
				if _, err := r.InsertEvents(ctx, stream(newID(), 0, perBatch-1, "t", fmt.Sprint(w, j))); err != nil {
					writeErrs <- fmt.Errorf("writer %d job %d: %w", w, j, err)
					return
				}
			}
		})
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()

	type result struct {
		seen []int64
		err  error
	}
	results := make(chan result, readers)
	for range readers {
		go func() {
			var seen []int64
			var last recorder.Position
			done := false
			for {
				page, err := r.SelectNotifications(ctx, recorder.NotificationQuery{After: last, Limit: 100})
				if err != nil {
					results <- result{seen, err}
					return
				}
				for _, n := range page {
					seen = append(seen, n.ID)
				}
				if len(page) > 0 {
					last = recorder.After(page[len(page)-1].ID)
					continue
				}
				if done {
					results <- result{seen, nil}
					return
				}
				select {
				case <-writersDone:
					done = true // one more read after the last write
				case <-ctx.Done():
					results <- result{seen, ctx.Err()}
					return
				case <-time.After(time.Millisecond): // caught up: let the writers run
				}
			}
		}()
	}
	<-writersDone
	// Every reader ends before anything is asserted, so that a failure
	// does not close the recorder under a read still in flight.
	var all []result
	for range readers {
		all = append(all, <-results)
	}
	close(writeErrs)
	for err := range writeErrs {
		require.NoError(t, err)
	}
	for _, res := range all {
		require.NoError(t, res.err, "reader")
		require.Len(t, res.seen, total, "a reader saw every event once")
		requireIncreasing(t, res.seen, s.Caps.ContiguousIDs, "reader")
	}
	maxID, _ := s.maxID(t, r)
	if s.Caps.ContiguousIDs {
		require.Equal(t, int64(total), maxID)
	}
	require.NoError(t, ctx.Err(), "the case ran out of patience")
}
