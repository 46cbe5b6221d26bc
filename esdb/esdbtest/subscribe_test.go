package esdbtest_test

import (
	"sync"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// subEvent is one thing a subscription delivered, flattened for asserts.
type subEvent struct {
	kind string // "event", "checkpoint", "caughtup", "dropped"
	ev   *esdb.ResolvedEvent
	pos  esdb.Position
	err  error
}

func next(sub *esdb.Subscription) subEvent {
	for {
		e := sub.Recv()
		switch {
		case e.EventAppeared != nil:
			return subEvent{kind: "event", ev: e.EventAppeared}
		case e.CheckPointReached != nil:
			return subEvent{kind: "checkpoint", pos: *e.CheckPointReached}
		case e.CaughtUp != nil:
			return subEvent{kind: "caughtup"}
		case e.SubscriptionDropped != nil:
			return subEvent{kind: "dropped", err: e.SubscriptionDropped.Error}
		}
	}
}

// untilCaughtUp collects events (and checkpoints) up to the caught-up signal.
func untilCaughtUp(t *testing.T, sub *esdb.Subscription) (events []*esdb.ResolvedEvent, checkpoints []esdb.Position) {
	t.Helper()
	for {
		e := next(sub)
		switch e.kind {
		case "event":
			events = append(events, e.ev)
		case "checkpoint":
			checkpoints = append(checkpoints, e.pos)
		case "caughtup":
			return events, checkpoints
		default:
			t.Fatalf("subscription dropped: %v", e.err)
		}
	}
}

func nextEvent(t *testing.T, sub *esdb.Subscription) *esdb.ResolvedEvent {
	t.Helper()
	for {
		e := next(sub)
		switch e.kind {
		case "event":
			return e.ev
		case "dropped":
			t.Fatalf("subscription dropped: %v", e.err)
		}
	}
}

func TestSubscribeToStream(t *testing.T) {
	_, c := startClient(t)
	ctx := ctxT(t)
	name := streamName()
	_, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, evs(3)...)
	require.NoError(t, err)

	sub, err := c.SubscribeToStream(ctx, name, esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	require.NoError(t, err)
	defer sub.Close()
	hist, _ := untilCaughtUp(t, sub)
	require.Len(t, hist, 3)

	_, err = c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, evs(1)...)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), nextEvent(t, sub).Event.EventNumber)

	// A revision start is exclusive.
	sub2, err := c.SubscribeToStream(ctx, name, esdb.SubscribeToStreamOptions{From: esdb.Revision(1)})
	require.NoError(t, err)
	defer sub2.Close()
	hist, _ = untilCaughtUp(t, sub2)
	require.Len(t, hist, 2)
	assert.Equal(t, uint64(2), hist[0].Event.EventNumber)

	// End delivers only new events.
	sub3, err := c.SubscribeToStream(ctx, name, esdb.SubscribeToStreamOptions{From: esdb.End{}})
	require.NoError(t, err)
	defer sub3.Close()
	hist, _ = untilCaughtUp(t, sub3)
	assert.Empty(t, hist)
	_, err = c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, evs(1)...)
	require.NoError(t, err)
	assert.Equal(t, uint64(4), nextEvent(t, sub3).Event.EventNumber)

	// A missing stream is confirmed and waits.
	missing := streamName()
	sub4, err := c.SubscribeToStream(ctx, missing, esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	require.NoError(t, err)
	defer sub4.Close()
	_, _ = untilCaughtUp(t, sub4)
	_, err = c.AppendToStream(ctx, missing, esdb.AppendToStreamOptions{}, evs(1)...)
	require.NoError(t, err)
	assert.Equal(t, missing, nextEvent(t, sub4).Event.StreamID)
}

func TestSubscribeToStreamTombstoned(t *testing.T) {
	_, c := startClient(t)
	ctx := ctxT(t)
	name := streamName()
	_, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, evs(1)...)
	require.NoError(t, err)
	sub, err := c.SubscribeToStream(ctx, name, esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	require.NoError(t, err)
	defer sub.Close()
	_, _ = untilCaughtUp(t, sub)
	_, err = c.TombstoneStream(ctx, name, esdb.TombstoneStreamOptions{})
	require.NoError(t, err)
	e := nextEvent(t, sub)
	assert.Equal(t, "$streamDeleted", e.Event.EventType)
	d := next(sub)
	require.Equal(t, "dropped", d.kind)
}

func TestSubscribeToAllFilters(t *testing.T) {
	_, c := startClient(t)
	ctx := ctxT(t)
	a, b := "orders-"+streamName(), "users-"+streamName()
	_, err := c.AppendToStream(ctx, a, esdb.AppendToStreamOptions{}, ev("OrderPlaced", "{}"), ev("OrderShipped", "{}"))
	require.NoError(t, err)
	_, err = c.AppendToStream(ctx, b, esdb.AppendToStreamOptions{}, ev("UserCreated", "{}"))
	require.NoError(t, err)

	cases := []struct {
		name   string
		filter *esdb.SubscriptionFilter
		want   []string
	}{
		{"type prefix", &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: []string{"Order"}}, []string{"OrderPlaced", "OrderShipped"}},
		{"type regex", &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: `^(?:UserCreated|OrderShipped)$`}, []string{"OrderShipped", "UserCreated"}},
		{"stream prefix", &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"users-"}}, []string{"UserCreated"}},
		{"exclude system", esdb.ExcludeSystemEventsFilter(), []string{"OrderPlaced", "OrderShipped", "UserCreated"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: tc.filter})
			require.NoError(t, err)
			defer sub.Close()
			hist, cps := untilCaughtUp(t, sub)
			var types []string
			for _, e := range hist {
				types = append(types, e.Event.EventType)
			}
			assert.Equal(t, tc.want, types)
			require.NotEmpty(t, cps, "the end of history is a checkpoint")
		})
	}

}

func TestSubscribeToAllCheckpoints(t *testing.T) {
	_, c := startClient(t)
	ctx := ctxT(t)
	name := streamName()
	_, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, evs(20)...)
	require.NoError(t, err)
	all, err := readAll(t, c, esdb.ReadAllOptions{}, 1000)
	require.NoError(t, err)
	last := all[len(all)-1].Event.Position

	sub, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.Start{},
		Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"nothing-"}}, MaxSearchWindow: 2, CheckpointInterval: 3})
	require.NoError(t, err)
	defer sub.Close()
	hist, cps := untilCaughtUp(t, sub)
	assert.Empty(t, hist)
	// Every 6 records considered, plus the end of history.
	require.Len(t, cps, len(all)/6+1)
	assert.Equal(t, all[5].Event.Position, cps[0])
	assert.Equal(t, last, cps[len(cps)-1], "never past the last record")
}

func TestSubscribeToAllPositions(t *testing.T) {
	_, c := startClient(t)
	ctx := ctxT(t)
	name := streamName()
	_, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, evs(3)...)
	require.NoError(t, err)
	mine, err := readStream(t, c, name, esdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)

	// A position start is exclusive.
	sub, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: mine[0].Event.Position})
	require.NoError(t, err)
	defer sub.Close()
	hist, _ := untilCaughtUp(t, sub)
	require.Len(t, hist, 2)
	assert.Equal(t, mine[1].Event.Position, hist[0].Event.Position)

	// A position inside a record: confirmed, then dropped.
	p := mine[0].Event.Position.Commit + 1
	bad, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.Position{Commit: p, Prepare: p}})
	require.NoError(t, err)
	defer bad.Close()
	assert.Equal(t, "dropped", next(bad).kind)
}

func TestSubscribeToAllLiveWithWriters(t *testing.T) {
	_, c := startClient(t)
	ctx := ctxT(t)
	sub, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.End{}, Filter: esdb.ExcludeSystemEventsFilter()})
	require.NoError(t, err)
	defer sub.Close()
	_, _ = untilCaughtUp(t, sub)

	const writers, each = 4, 50
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			name := streamName()
			for range each {
				_, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, evs(1)...)
				assert.NoError(t, err)
			}
		})
	}
	var prev uint64
	for range writers * each {
		e := nextEvent(t, sub)
		assert.Greater(t, e.Event.Position.Commit, prev)
		prev = e.Event.Position.Commit
	}
	wg.Wait()
}

func TestSubscriptionCancel(t *testing.T) {
	_, c := startClient(t)
	ctx := ctxT(t)
	sub, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.Start{}})
	require.NoError(t, err)
	_, _ = untilCaughtUp(t, sub)
	require.NoError(t, sub.Close())
	assert.Equal(t, "dropped", next(sub).kind)
	// The server keeps serving.
	_, err = c.AppendToStream(ctx, streamName(), esdb.AppendToStreamOptions{}, evs(1)...)
	require.NoError(t, err)
}
