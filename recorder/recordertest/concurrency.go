package recordertest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

var concurrencyCases = []testCase{
	{"RaceCreateSameStream", testRaceCreateSameStream},
	{"RaceAppendSameStream", testRaceAppendSameStream},
	{"InterleavedCommitNotSkipped", testInterleavedCommitNotSkipped},
	{"WritersWithFollower", testWritersWithFollower},
}

// race runs Racers goroutines released together by a barrier; each inserts the
// batch make(i) builds. It asserts one success and Racers-1 conflicts, nothing
// else, and returns the winner's index.
func (s *suite) race(t *testing.T, r recorder.ApplicationRecorder, round int, batch func(i int) []recorder.StoredEvent) int {
	t.Helper()
	batches := make([][]recorder.StoredEvent, s.Racers)
	for i := range batches {
		batches[i] = batch(i)
	}
	errs := make([]error, s.Racers)
	barrier := make(chan struct{})
	var ready, wg sync.WaitGroup
	for i := range batches {
		ready.Add(1)
		wg.Go(func() {
			ready.Done()
			<-barrier
			_, errs[i] = r.InsertEvents(t.Context(), batches[i])
		})
	}
	ready.Wait()
	close(barrier)
	wg.Wait()

	winner, wins := -1, 0
	for i, err := range errs {
		switch {
		case err == nil:
			winner = i
			wins++
		case !errors.Is(err, recorder.ErrIntegrity):
			t.Fatalf("round %d racer %d: want nil or an error matching ErrIntegrity, got %T: %v", round, i, err, err)
		}
	}
	require.Equal(t, 1, wins, "round %d: exactly one racer must win", round)
	return winner
}

// lessons.md §2 case 1 (F1, F2): racers create the same originator.
func testRaceCreateSameStream(t *testing.T, s *suite) {
	r := s.application(t)
	for round := range s.RaceRounds {
		id := newID()
		winner := s.race(t, r, round, func(i int) []recorder.StoredEvent {
			return []recorder.StoredEvent{ev(id, 0, "Created", fmt.Sprintf("racer %d", i))}
		})
		got := s.selectEvents(t, r, id, recorder.EventQuery{})
		require.Len(t, got, 1, "round %d: one event stored", round)
		require.Equal(t, fmt.Sprintf("racer %d", winner), string(got[0].State), "round %d: the winner's state is stored", round)
	}
	if s.Caps.ContiguousIDs {
		maxID, _ := s.maxID(t, r)
		require.Equal(t, int64(s.RaceRounds), maxID, "failed inserts take no notification ids")
	}
}

// lessons.md §2 case 2: racers append the same versions to an existing originator.
func testRaceAppendSameStream(t *testing.T, s *suite) {
	r := s.application(t)
	const n = 2 // the stream is at version n; each racer appends n+1..n+3
	for round := range s.RaceRounds {
		id := newID()
		head := stream(id, 0, n, "t", "head")
		s.insert(t, r, head...)
		winner := s.race(t, r, round, func(i int) []recorder.StoredEvent {
			return stream(id, n+1, n+3, "t", fmt.Sprint("racer ", i))
		})
		want := append(slices.Clone(head), stream(id, n+1, n+3, "t", fmt.Sprint("racer ", winner))...)
		requireEvents(t, want, s.selectEvents(t, r, id, recorder.EventQuery{}),
			"round %d: contiguous versions, the winner's whole batch and no loser's event", round)
	}
}

// lessons.md §2 case 5 (F3): insert A is held open, B commits after it took its
// ids; a polling follower and a subscription still see both, exactly once, in
// increasing order, and (ContiguousIDs) never B while A is hidden.
func testInterleavedCommitNotSkipped(t *testing.T, s *suite) {
	if !s.Caps.HoldInsert {
		t.Skip("the backend cannot hold an insert open (Caps.HoldInsert); WritersWithFollower covers it")
	}
	r := s.application(t)
	holder, ok := r.(Holder)
	if !ok {
		t.Fatalf("Caps.HoldInsert is set but %T does not implement recordertest.Holder", r)
	}
	ctx := s.patient(t)

	var sub recorder.Subscription
	if s.Caps.Subscribe {
		var err error
		sub, err = r.Subscribe(ctx, recorder.Start(), nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = sub.Close() })
	}
	var last recorder.Position
	var polls [][]int64
	poll := func() error {
		page, err := r.SelectNotifications(ctx, recorder.NotificationQuery{After: last, Limit: 100})
		if err != nil {
			return err
		}
		polls = append(polls, ids(page))
		if len(page) > 0 {
			last = recorder.After(page[len(page)-1].ID)
		}
		return nil
	}

	a, b := ev(newID(), 0, "t", "A"), ev(newID(), 0, "t", "B")
	commitA, err := holder.HoldInsertEvents(ctx, []recorder.StoredEvent{a})
	require.NoError(t, err, "hold insert A")
	committed := false
	commit := func() ([]int64, error) { committed = true; return commitA() }
	t.Cleanup(func() {
		if !committed {
			_, _ = commitA()
		}
	})

	type insertResult struct {
		ids []int64
		err error
	}
	bDone := make(chan insertResult, 1)
	go func() {
		got, err := r.InsertEvents(ctx, []recorder.StoredEvent{b})
		bDone <- insertResult{got, err}
	}()
	// The first poll may block behind A on a backend whose held insert excludes
	// readers, so it runs beside the commit.
	time.Sleep(200 * time.Millisecond)
	poll1 := make(chan error, 1)
	go func() { poll1 <- poll() }()
	time.Sleep(50 * time.Millisecond)

	idsA, err := commit()
	require.NoError(t, err, "commit A")
	require.Len(t, idsA, 1)
	var resB insertResult
	select {
	case resB = <-bDone:
	case <-ctx.Done():
		t.Fatalf("insert B did not finish after A committed: %v", ctx.Err())
	}
	require.NoError(t, resB.err, "insert B")
	require.Len(t, resB.ids, 1)
	require.NoError(t, s.await(t, "the poll during the held insert", func() error { return <-poll1 }))
	require.NoError(t, poll())

	want := sortedCopy([]int64{idsA[0], resB.ids[0]})
	var seen []int64
	for _, p := range polls {
		seen = append(seen, p...)
	}
	require.Equal(t, want, seen, "the follower sees A and B exactly once, in increasing order across polls %v", polls)
	if s.Caps.ContiguousIDs {
		var k int64
		for i, p := range polls {
			for _, id := range p {
				k++
				require.Equal(t, k, id, "poll %d (%v) is not a contiguous prefix: B visible while A hidden", i, polls)
			}
		}
	}
	if sub != nil {
		var got []int64
		for range 2 {
			got = append(got, s.next(t, ctx, sub).ID)
		}
		require.Equal(t, want, got, "the subscription delivers A and B exactly once, in order")
		requireBlocks(t, sub)
	}
}

// lessons.md §2 case 6: writers insert single events while a polling follower
// and a subscription read; each reader sees every event exactly once, in
// strictly increasing order.
func testWritersWithFollower(t *testing.T, s *suite) {
	r := s.application(t)
	ctx := s.patient(t)
	total := s.Writers * s.InsertsPerWriter

	var sub recorder.Subscription
	if s.Caps.Subscribe {
		var err error
		sub, err = r.Subscribe(ctx, recorder.Start(), nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = sub.Close() })
	}

	written := make([][]int64, s.Writers)
	writeErrs := make([]error, s.Writers)
	var writers sync.WaitGroup
	var writing atomic.Bool
	writing.Store(true)
	for w := range s.Writers {
		writers.Go(func() {
			for range s.InsertsPerWriter {
				got, err := r.InsertEvents(ctx, []recorder.StoredEvent{ev(newID(), 0, "t", fmt.Sprint("writer ", w))})
				if err != nil {
					writeErrs[w] = err
					return
				}
				written[w] = append(written[w], got...)
			}
		})
	}

	followerDone := make(chan error, 1)
	var followed []int64
	go func() {
		var last recorder.Position
		for {
			stillWriting := writing.Load()
			page, err := r.SelectNotifications(ctx, recorder.NotificationQuery{After: last, Limit: 50})
			if err != nil {
				followerDone <- err
				return
			}
			for _, n := range page {
				followed = append(followed, n.ID)
			}
			if len(page) > 0 {
				last = recorder.After(page[len(page)-1].ID)
				continue
			}
			if !stillWriting {
				followerDone <- nil // an empty page read after the last write: caught up
				return
			}
			select {
			case <-ctx.Done():
				followerDone <- ctx.Err()
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()

	subDone := make(chan error, 1)
	var subscribed []int64
	if sub != nil {
		go func() {
			for len(subscribed) < total {
				n, err := sub.Next(ctx)
				if err != nil {
					subDone <- err
					return
				}
				subscribed = append(subscribed, n.ID)
			}
			subDone <- nil
		}()
	}

	writers.Wait()
	writing.Store(false)
	for w, err := range writeErrs {
		require.NoError(t, err, "writer %d", w)
	}
	var all []int64
	for _, w := range written {
		all = append(all, w...)
	}
	all = sortedCopy(all)
	require.Len(t, all, total)
	maxID, _ := s.maxID(t, r)
	require.Equal(t, all[len(all)-1], maxID)
	if s.Caps.ContiguousIDs {
		requireIncreasing(t, all, true, "ids of all writers")
		require.Equal(t, int64(1), all[0])
	}

	require.NoError(t, <-followerDone, "follower")
	requireIncreasing(t, followed, false, "follower")
	require.Equal(t, all, followed, "the follower sees every event exactly once")
	if sub != nil {
		require.NoError(t, <-subDone, "subscription")
		requireIncreasing(t, subscribed, false, "subscription")
		require.Equal(t, all, subscribed, "the subscription sees every event exactly once")
		requireBlocks(t, sub)
	}
}
