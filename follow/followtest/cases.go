package followtest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/system"
)

// Run runs every case of the suite on the harness's source.
func Run(t *testing.T, h Harness) {
	t.Helper()
	require.NotNil(t, h.Open, "a harness needs Open")
	for _, c := range []struct {
		name string
		run  func(t *testing.T, fx *fixture)
	}{
		{"CatchUpThenLive", testCatchUpThenLive},
		{"TrickleOneSubscription", testTrickle},
		{"IgnoredAndFilteredAdvanceTracking", testIgnoredAndFiltered},
		{"DroppedSubscriptionResumes", testDropped},
		{"DroppedWhileCatchingUp", testDroppedCatchingUp},
		{"RestartResumes", testRestart},
		{"RacingWriters", testRacingWriters},
		{"SourceErrorsRetried", testSourceErrors},
		{"ResetRereads", testReset},
		{"StopInHandlerOfProjectionRunner", testStopInHandler(projectionRunner)},
		{"StopInHandlerOfMultiThreadedRunner", testStopInHandler(multiThreadedRunner)},
		{"StopInHandlerOfSingleThreadedRunner", testStopInHandler(singleThreadedRunner)},
		{"HandlerErrorStops", testHandlerError},
		{"SkipFailed", testSkipFailed},
		{"FailedBatchRetriedOneByOne", testFailedBatch},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, newFixture(t, h, testLogger(t))) })
	}
}

// Events written before the start are caught up with, then events written
// while live arrive through the subscription: each once, in order.
func testCatchUpThenLive(t *testing.T, fx *fixture) {
	ctx := t.Context()
	const n = 300
	before := fx.writeN(ctx, 0, n)
	f := fx.follower(&handler{view: fx.view}, func(c *follow.Config) { c.PageSize = 64 })
	st := f.Status(ctx)
	assert.Equal(t, follow.Idle, st.State)
	assert.False(t, st.HasPosition)
	assert.True(t, st.HasHead)
	assert.Equal(t, before[n-1], st.Head)
	assert.Equal(t, before[n-1], st.Lag, "lag from nothing processed")
	if fx.src.SparseNotificationIDs() {
		assert.Equal(t, follow.Positions, st.LagUnit)
	} else {
		assert.Equal(t, follow.Events, st.LagUnit)
		assert.Equal(t, int64(n), st.Lag, "lag in events")
	}
	fx.run(f)
	fx.waitLive(f)
	ids := fx.writeN(ctx, n, n)
	fx.wait(ctx, ids[len(ids)-1])
	seen := fx.requireExactlyOnce(ctx)
	require.Equal(t, count(0, 2*n), seqs(seen), "every event once, in the order written")
	fx.settled(f, "Status to show the last position and every event processed", func(st follow.Status) bool {
		return st.HasPosition && st.Position == ids[len(ids)-1] && st.Processed == uint64(2*n) && st.Lag == 0
	})
}

// A trickle, each event written once the previous one is processed, is
// followed through one subscription: no resubscription per event.
func testTrickle(t *testing.T, fx *fixture) {
	ctx := t.Context()
	f := fx.live(&handler{view: fx.view})
	const n = 1000
	for i := range n {
		fx.wait(ctx, fx.write(ctx, Wanted{Seq: i}))
	}
	seen := fx.requireExactlyOnce(ctx)
	require.Equal(t, count(0, n), seqs(seen))
	assert.Equal(t, int64(1), fx.src.Subscriptions(), "subscriptions opened at the source")
	st := fx.settled(f, "Status to show no lag, live", func(st follow.Status) bool { return st.Lag == 0 && st.State == follow.Live })
	assert.Equal(t, int64(1), st.Subscriptions, "subscriptions in Status")
}

// Positions of events the handler ignores and of events the filter leaves
// out are tracked, while catching up and live, so that waiting for them
// returns; the handler never sees a filtered event.
func testIgnoredAndFiltered(t *testing.T, fx *fixture) {
	ctx := t.Context()
	h := &handler{view: fx.view}
	topics := []string{TopicWanted, TopicSkipped}
	// A mix, ending with a run of events the follower records nothing for.
	mix := func(from int) (lastSkipped, last int64) {
		for i := range 20 {
			switch i % 4 {
			case 0, 1:
				fx.write(ctx, Wanted{Seq: from + i})
			case 2:
				fx.write(ctx, Skipped{Seq: from + i})
			case 3:
				fx.write(ctx, Filtered{Seq: from + i})
			}
		}
		for i := range 5 {
			lastSkipped = fx.write(ctx, Skipped{Seq: from + 20 + i})
		}
		for i := range 5 {
			last = fx.write(ctx, Filtered{Seq: from + 25 + i})
		}
		return lastSkipped, last
	}
	lastSkipped, last := mix(0)
	f := fx.follower(h, func(c *follow.Config) { c.Topics = topics; c.PageSize = 7 })
	fx.run(f)
	fx.wait(ctx, lastSkipped)
	fx.wait(ctx, last)
	fx.waitLive(f)

	lastSkipped, last = mix(100)
	fx.wait(ctx, lastSkipped)
	fx.wait(ctx, last)
	pos, ok, err := fx.view.MaxTrackingID(ctx, fx.app.Name())
	require.NoError(t, err)
	require.True(t, ok)
	assert.GreaterOrEqual(t, pos, last, "the tracked position reaches the last filtered event")
	fx.requireExactlyOnce(ctx)
	assert.Zero(t, h.filteredSeen(), "filtered events handed to the handler")
	// Wanted and Skipped events are handed over, Filtered ones are not.
	const handed = 2 * (10 + 5 + 5)
	st := fx.settled(f, "Status to show no lag", func(st follow.Status) bool { return st.Lag == 0 && st.Processed >= handed })
	assert.Equal(t, uint64(handed), st.Processed)
}

// Live subscriptions dropped while events are being written resume from the
// last position processed: nothing lost, nothing twice.
func testDropped(t *testing.T, fx *fixture) {
	ctx := t.Context()
	f := fx.live(&handler{view: fx.view})
	const n, drops = 300, 3
	var wg sync.WaitGroup
	ids := make([]int64, n)
	wg.Go(func() {
		for i := range n {
			var err error
			if ids[i], err = fx.writeRetrying(ctx, Wanted{Seq: i}); err != nil {
				t.Errorf("no write succeeded for %v: %v", Timeout, err)
				return
			}
			if i%10 == 9 {
				time.Sleep(time.Millisecond) // a steady stream rather than one burst
			}
		}
	})
	for d := 1; d <= drops; d++ {
		fx.eventually("events processed before the next drop", func() bool { return t.Failed() || len(fx.seen(ctx)) >= d*n/(drops+1) })
		fx.waitLive(f)
		fx.drop(t)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	fx.wait(ctx, ids[n-1])
	seen := fx.requireExactlyOnce(ctx)
	require.Equal(t, count(0, n), seqs(seen))
	if fx.drops != nil {
		// The last drop may come after the last event was processed: the
		// follower still subscribes again.
		fx.eventually("a subscription opened again after each drop", func() bool { return fx.src.Subscriptions() >= 1+drops })
	}
}

// The source dropped (a server restarted) while the follower reads pages:
// it goes on from the last position processed, nothing lost or twice.
func testDroppedCatchingUp(t *testing.T, fx *fixture) {
	ctx := t.Context()
	const n = 1000
	ids := fx.writeN(ctx, 0, n)
	slow := &handler{view: fx.view, hook: func(context.Context, eventsourcing.Event) { time.Sleep(100 * time.Microsecond) }}
	f := fx.follower(slow, func(c *follow.Config) { c.PageSize = 20 })
	fx.run(f)
	fx.eventually("a part of the events processed", func() bool { return len(fx.seen(ctx)) >= n/4 })
	fx.drop(t)
	fx.wait(ctx, ids[n-1])
	seen := fx.requireExactlyOnce(ctx)
	require.Equal(t, count(0, n), seqs(seen))
}

// A follower stopped in the middle of catching up (inside its handler),
// and a new one on the same view, process every event once between them.
func testRestart(t *testing.T, fx *fixture) {
	ctx := t.Context()
	const n = 2000
	ids := fx.writeN(ctx, 0, n)
	small := func(c *follow.Config) { c.PageSize = 50 }
	reached := make(chan struct{})
	h := &handler{view: fx.view, hook: func(ctx context.Context, e eventsourcing.Event) {
		if w, ok := e.Data.(Wanted); ok && w.Seq == n/2 {
			close(reached)
			<-ctx.Done() // held until the follower is stopped
		}
	}}
	_, stop := fx.runStoppable(fx.follower(h, small))
	select {
	case <-reached:
	case <-time.After(Timeout):
		t.Fatalf("the follower did not reach event %d within %v", n/2, Timeout)
	}
	stop()
	require.LessOrEqual(t, len(fx.seen(ctx)), n/2, "nothing recorded after the event the follower was stopped in")
	fx.run(fx.follower(&handler{view: fx.view}, small))
	fx.wait(ctx, ids[n-1])
	seen := fx.requireExactlyOnce(ctx)
	require.Equal(t, count(0, n), seqs(seen))
}

// Several goroutines writing at once while the follower is live: every
// event processed once, in the log's order.
func testRacingWriters(t *testing.T, fx *fixture) {
	ctx := t.Context()
	f := fx.live(&handler{view: fx.view})
	const writers, each = 4, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := fx.save(ctx, Wanted{Seq: w*each + i}); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	// CatchUp beside Run, as the single-threaded runner pulls: processing
	// is serialised, so nothing is processed twice.
	var written atomic.Bool
	pulled := make(chan struct{})
	go func() {
		defer close(pulled)
		for !written.Load() {
			if _, err := f.CatchUp(ctx); err != nil {
				t.Errorf("CatchUp beside Run: %v", err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Wait()
	written.Store(true)
	<-pulled
	ids := fx.logIDs(ctx, TopicWanted)
	require.Len(t, ids, writers*each)
	fx.wait(ctx, ids[len(ids)-1])
	seen := fx.requireExactlyOnce(ctx)
	got := map[int]int{}
	for _, s := range seen {
		got[s.Seq]++
	}
	for seq := range writers * each {
		require.Equal(t, 1, got[seq], "event %d processed once", seq)
	}
	fx.settled(f, "Status to count every event processed", func(st follow.Status) bool { return st.Processed == writers*each })
}

// Reads of the source that fail with an error of the infrastructure are
// retried with backoff, shown by Status meanwhile; once the source answers
// again, every event is processed once.
func testSourceErrors(t *testing.T, fx *fixture) {
	ctx := t.Context()
	ids := fx.writeN(ctx, 0, 50)
	src := &failingSource{Source: fx.src, sparse: sparse{fx.src}}
	src.failing.Store(true)
	f := fx.follower(&handler{view: fx.view}, func(c *follow.Config) { c.Source = src })
	fx.run(f)
	fx.eventually("the follower backing off with the source's error", func() bool {
		st := f.Status(ctx)
		return st.State == follow.BackingOff && errors.Is(st.Err, errUnavailable) && src.failures.Load() >= 2
	})
	assert.NoError(t, f.Err(), "Err is for failures, not for retries")
	assert.Empty(t, fx.seen(ctx))
	src.failing.Store(false)
	fx.wait(ctx, ids[len(ids)-1])
	fx.waitLive(f)
	ids = fx.writeN(ctx, 50, 50)
	fx.wait(ctx, ids[len(ids)-1])
	seen := fx.requireExactlyOnce(ctx)
	require.Equal(t, count(0, 100), seqs(seen))
	st := f.Status(ctx)
	assert.Equal(t, follow.Live, st.State)
	assert.NoError(t, st.Err, "no error shown once live again")
}

// Reset under a live follower empties the view and reads the upstream from
// the start again: afterwards the view holds every event once.
func testReset(t *testing.T, fx *fixture) {
	r, ok := fx.view.(projection.Rebuilder)
	if !ok {
		t.Skip("the harness's view does not implement projection.Rebuilder")
	}
	ctx := t.Context()
	ids := fx.writeN(ctx, 0, 100)
	f := fx.live(&handler{view: fx.view})
	fx.wait(ctx, ids[len(ids)-1])
	for round := range 3 {
		require.NoError(t, f.Reset(ctx, r.Reset))
		more := fx.writeN(ctx, 100*(round+1), 100)
		fx.wait(ctx, more[len(more)-1])
		seen := fx.requireExactlyOnce(ctx)
		require.Equal(t, count(0, 100*(round+2)), seqs(seen), "after reset %d", round+1)
	}
	fx.eventually("a new subscription after each reset", func() bool { return fx.src.Subscriptions() >= 4 })
}

// A runner of the suite's projection, for the Stop cases: start starts it
// with h as the projection's handler and returns its Stop and follower.
type stopRunner struct {
	start func(t *testing.T, fx *fixture, h *handler) (stop func() error, f *follow.Follower)
	// inHandler is what Stop returns when called from inside the handler.
	inHandler error
	// pulls: the runner pulls on its upstream's saves (single-threaded)
	// instead of following it live, and leaves its follower Idle.
	pulls bool
}

// projectionRunner runs the projection alone, under projection.Runner.
var projectionRunner = stopRunner{
	start: func(t *testing.T, fx *fixture, h *handler) (func() error, *follow.Follower) {
		r := projection.NewRunnerFor(fx.app, proj{h: h}, fx.view, projection.WithFollowConfig(fx.adapt))
		require.NoError(t, r.Start(t.Context()))
		return r.Stop, r.Follower().Follow()
	},
	inHandler: projection.ErrStopInHandler,
}

// borrowed is the fixture's application as a system's member: the
// system's runner closes its members, and the fixture still needs it.
type borrowed struct{ *eventsourcing.Application }

func (borrowed) Close() error { return nil }

// unclosable hides a view's Close from the system's runner (and its
// batching, which the Stop cases do not need).
type unclosable struct{ View }

// runner is what the Stop cases use of a system's runner.
type runner interface {
	Start(ctx context.Context) error
	Stop() error
	Projection(name string) (*projection.Follower, error)
}

// systemRunner runs the projection as a member of a system, under the
// runner newRunner makes.
func systemRunner(newRunner func(*system.System, ...system.RunnerOption) runner) func(t *testing.T, fx *fixture, h *handler) (func() error, *follow.Follower) {
	return func(t *testing.T, fx *fixture, h *handler) (func() error, *follow.Follower) {
		up := system.NewApp(fx.app.Name(), func(context.Context, map[string]string) (borrowed, error) { return borrowed{fx.app}, nil })
		sys, err := system.New(system.Pipe(up))
		require.NoError(t, err)
		sys, err = sys.WithProjections(system.NewProjection("FollowTest", up, func(context.Context, map[string]string) (projection.Projection, projection.View, error) {
			return proj{h: h}, unclosable{fx.view}, nil
		}))
		require.NoError(t, err)
		r := newRunner(sys, system.WithFollowConfig(fx.adapt))
		require.NoError(t, r.Start(t.Context()))
		pf, err := r.Projection("FollowTest")
		require.NoError(t, err)
		return r.Stop, pf.Follow()
	}
}

// The system's runners, for the Stop cases.
var (
	multiThreadedRunner = stopRunner{
		start: systemRunner(func(sys *system.System, opts ...system.RunnerOption) runner {
			return system.NewMultiThreadedRunner(sys, nil, opts...)
		}),
		inHandler: system.ErrStopInPolicy,
	}
	singleThreadedRunner = stopRunner{
		start: systemRunner(func(sys *system.System, opts ...system.RunnerOption) runner {
			return system.NewSingleThreadedRunner(sys, nil, opts...)
		}),
		inHandler: system.ErrStopInPolicy,
		pulls:     true,
	}
)

// Stop called from inside a projection's Process returns an error at once
// instead of waiting for itself, and the runner stops once Process returns.
func testStopInHandler(r stopRunner) func(t *testing.T, fx *fixture) {
	return func(t *testing.T, fx *fixture) {
		ctx := t.Context()
		var stop func() error
		stopped := make(chan error, 1)
		h := &handler{view: fx.view}
		h.hook = func(_ context.Context, e eventsourcing.Event) {
			if w, ok := e.Data.(Wanted); ok && w.Seq == 5 {
				stopped <- stop()
			}
		}
		stop, f := r.start(t, fx, h)
		t.Cleanup(func() { _ = stop() })
		if !r.pulls {
			fx.waitLive(f)
		}
		fx.writeN(ctx, 0, 10)
		select {
		case err := <-stopped:
			require.ErrorIs(t, err, r.inHandler)
		case <-time.After(Timeout):
			t.Fatalf("Stop called inside Process did not return within %v", Timeout)
		}
		done := make(chan error, 1)
		go func() { done <- stop() }()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(Timeout):
			t.Fatalf("the runner did not stop within %v of Stop called inside Process", Timeout)
		}
		if r.pulls {
			assert.Equal(t, count(0, 6), seqs(fx.seen(ctx)), "the pull stopped in ends its event; no event written after it is processed")
			return
		}
		assert.Equal(t, follow.Stopped, f.State())
		// What was recorded is a prefix (a batch cut short by the stop is
		// not recorded at all).
		seen := fx.seen(ctx)
		assert.Equal(t, count(0, len(seen)), seqs(seen), "processed in order up to the stop")
	}
}

// writePoisoned writes five Wanted events, a Poison and five more, and
// returns the Poison's id and the last id.
func (fx *fixture) writePoisoned(ctx context.Context, from int) (poison, last int64) {
	fx.writeN(ctx, from, 5)
	poison = fx.write(ctx, Poison{Seq: from + 5})
	ids := fx.writeN(ctx, from+6, 5)
	return poison, ids[len(ids)-1]
}

// A handler error stops the follower: Run returns it, the state is Failed,
// and nothing at or after the failed event is recorded.
func testHandlerError(t *testing.T, fx *fixture) {
	ctx := t.Context()
	poison, _ := fx.writePoisoned(ctx, 0)
	f := fx.follower(&handler{view: fx.view}, func(c *follow.Config) { c.PageSize = 4 })
	var err error
	select {
	case err = <-fx.run(f):
	case <-time.After(Timeout):
		t.Fatalf("the follower did not fail within %v", Timeout)
	}
	var perr *follow.ProcessingError
	require.ErrorAs(t, err, &perr)
	assert.ErrorIs(t, err, errPoison)
	assert.Equal(t, poison, perr.NotificationID)
	assert.Equal(t, follow.Failed, f.State())
	require.ErrorIs(t, f.Err(), errPoison)
	st := f.Status(ctx)
	assert.Equal(t, follow.Failed, st.State)
	require.ErrorIs(t, st.Err, errPoison)
	assert.Equal(t, count(0, 5), seqs(fx.seen(ctx)), "the events before the failed one, and nothing after")
	pos, ok, err := fx.view.MaxTrackingID(ctx, fx.app.Name())
	require.NoError(t, err)
	require.True(t, ok)
	assert.Less(t, pos, poison, "the failed event's position is not recorded")
}

// With SkipFailed, a failed event becomes a dead letter shown by Status and
// processing goes on, while catching up and live.
func testSkipFailed(t *testing.T, fx *fixture) {
	ctx := t.Context()
	var mu sync.Mutex
	var skipped []follow.DeadLetter
	poison1, last := fx.writePoisoned(ctx, 0)
	f := fx.follower(&handler{view: fx.view}, func(c *follow.Config) {
		c.PageSize, c.SkipFailed = 4, true
		c.OnSkip = func(_ context.Context, d follow.DeadLetter) error {
			mu.Lock()
			defer mu.Unlock()
			skipped = append(skipped, d)
			return nil
		}
	})
	result := fx.run(f)
	fx.wait(ctx, last)
	fx.waitLive(f)
	poison2, last := fx.writePoisoned(ctx, 11)
	fx.wait(ctx, last)
	select {
	case err := <-result:
		t.Fatalf("the follower stopped: %v", err)
	default:
	}
	seen := fx.requireExactlyOnce(ctx)
	assert.Equal(t, append(count(0, 5), append(count(6, 10), count(17, 5)...)...), seqs(seen))
	st := f.Status(ctx)
	assert.NotEqual(t, follow.Failed, st.State)
	require.Len(t, st.DeadLetters, 2)
	for i, id := range []int64{poison1, poison2} {
		d := st.DeadLetters[i]
		assert.Equal(t, id, d.NotificationID)
		assert.Equal(t, TopicPoison, d.Topic)
		assert.Contains(t, d.Err, errPoison.Error())
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, skipped, 2, "OnSkip told of every dead letter")
	assert.Equal(t, poison2, skipped[1].NotificationID)
	assert.NoError(t, f.Err())
}

// A batch that fails to commit is done again event by event: every event
// once, and a skipped event one dead letter.
func testFailedBatch(t *testing.T, fx *fixture) {
	b, ok := fx.view.(follow.Batcher)
	if !ok {
		t.Skip("the harness's view does not batch (follow.Batcher)")
	}
	ctx := t.Context()
	view := &failingBatches{View: fx.view, batcher: b}
	view.fail.Store(2)
	poison, last := fx.writePoisoned(ctx, 0)
	f := fx.follower(&handler{view: view}, func(c *follow.Config) { c.PageSize, c.SkipFailed, c.Tracker = 4, true, view })
	fx.run(f)
	fx.wait(ctx, last)
	assert.Less(t, view.fail.Load(), int32(0), "the batches failed")
	seen := fx.requireExactlyOnce(ctx)
	assert.Equal(t, append(count(0, 5), count(6, 5)...), seqs(seen))
	st := f.Status(ctx)
	require.Len(t, st.DeadLetters, 1, "one dead letter for one skipped event")
	assert.Equal(t, poison, st.DeadLetters[0].NotificationID)
}
