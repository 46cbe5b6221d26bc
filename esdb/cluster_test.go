package esdb_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/esdb"
	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// clusterApp opens an application recorder on a connection string of a
// cluster.
func clusterApp(t *testing.T, uri string) recorder.ApplicationRecorder {
	t.Helper()
	return application(t, uri)
}

// writeOnce writes one event of a new aggregate, retrying through a
// failover: a write whose answer was lost may have committed, and is then
// refused as a conflict when it is sent again, so each aggregate ends up
// with exactly one event whatever the failures.
func writeOnce(ctx context.Context, r recorder.ApplicationRecorder, id string) error {
	ev := []recorder.StoredEvent{{OriginatorID: id, OriginatorVersion: 0, Topic: "t", State: []byte(id)}}
	var err error
	for attempt := range 100 {
		if _, err = r.InsertEvents(ctx, ev); err == nil {
			return nil
		}
		if attempt > 0 && errors.Is(err, recorder.ErrIntegrity) {
			return nil // an earlier attempt committed
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond) // pace the retries while the client rediscovers
	}
	return fmt.Errorf("writing %s: %w", id, err)
}

// allOriginators reads the whole notification log.
func allOriginators(ctx context.Context, t *testing.T, r recorder.ApplicationRecorder) []string {
	t.Helper()
	var out []string
	var after recorder.Position
	for {
		ns, err := r.SelectNotifications(ctx, recorder.NotificationQuery{After: after, Limit: 100})
		require.NoError(t, err)
		for _, n := range ns {
			out = append(out, n.OriginatorID)
		}
		if len(ns) < 100 {
			return out
		}
		after = recorder.After(ns[len(ns)-1].ID)
	}
}

func clusterCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// The module discovers a cluster from gossip seeds and from one node with
// esdb+discover://, and talks to the node its preference picks (followers
// forward writes to the leader, as EventStoreDB's do).
func TestClusterNodePreference(t *testing.T) {
	for _, c := range []struct {
		name, query string
		check       func(t *testing.T, c *esdbtest.Cluster)
	}{
		{"leader by default", "", func(t *testing.T, c *esdbtest.Cluster) {
			assert.Positive(t, c.Leader().Calls())
			for _, f := range c.Followers() {
				assert.Zero(t, f.Calls(), "follower %s", f.Addr())
			}
		}},
		{"leader", "&nodePreference=leader", func(t *testing.T, c *esdbtest.Cluster) {
			assert.Positive(t, c.Leader().Calls())
			for _, f := range c.Followers() {
				assert.Zero(t, f.Calls(), "follower %s", f.Addr())
			}
		}},
		{"follower", "&nodePreference=follower", func(t *testing.T, c *esdbtest.Cluster) {
			assert.Zero(t, c.Leader().Calls())
			var sum int64
			for _, f := range c.Followers() {
				sum += f.Calls()
			}
			assert.Positive(t, sum)
		}},
		{"random", "&nodePreference=random", func(t *testing.T, c *esdbtest.Cluster) {
			var sum int64
			for _, n := range c.Nodes() {
				sum += n.Calls()
			}
			assert.Positive(t, sum)
		}},
	} {
		for _, discover := range []bool{false, true} {
			name := c.name + "/seeds"
			if discover {
				name = c.name + "/discover"
			}
			t.Run(name, func(t *testing.T) {
				cl := esdbtest.StartCluster(t, 3)
				uri := cl.URI()
				if discover {
					// One follower as the seed: gossip names the others.
					uri = cl.Followers()[1].DiscoverURI()
				}
				ctx := clusterCtx(t)
				r := clusterApp(t, uri+c.query)
				id := uuid.NewString()
				require.NoError(t, writeOnce(ctx, r, id))
				assert.Equal(t, []string{id}, allOriginators(ctx, t, r))
				c.check(t, cl)
			})
		}
	}
}

// The leader is killed while several writers write: every write ends up
// stored exactly once, and the writers go on with the new leader.
func TestClusterLeaderKilledUnderWrites(t *testing.T) {
	cl := esdbtest.StartCluster(t, 3)
	nodes := cl.Nodes()
	ctx := clusterCtx(t)
	// The seed survives the kill: esdb+discover:// has only that one.
	r := clusterApp(t, nodes[2].DiscoverURI())
	// Each writer writes until the leader has been killed and it has
	// written `after` more, so that writes are in flight during the kill
	// and some follow it, however the goroutines are scheduled.
	const writers, before, after = 4, 8, 8
	ids := make([][]string, writers)
	written := make(chan struct{}, writers*before)
	killed := make(chan struct{})
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			sinceKill := 0
			for i := 0; sinceKill < after; i++ {
				select {
				case <-killed:
					sinceKill++
				default:
				}
				id := uuid.NewString()
				if err := writeOnce(ctx, r, id); err != nil {
					errs <- err
					return
				}
				ids[w] = append(ids[w], id)
				if i < before {
					written <- struct{}{}
				}
			}
			errs <- nil
		}()
	}
	finished := 0
	for range writers * before {
		select {
		case <-written:
		case err := <-errs:
			require.NoError(t, err)
			finished++
		}
	}
	old, err := cl.KillLeader()
	require.NoError(t, err)
	close(killed)
	for ; finished < writers; finished++ {
		require.NoError(t, <-errs)
	}
	assert.NotEqual(t, old, cl.Leader())
	assert.Positive(t, cl.Leader().Calls(), "the writers moved to the new leader")

	var want []string
	for _, w := range ids {
		want = append(want, w...)
	}
	got := allOriginators(ctx, t, r)
	assert.ElementsMatch(t, want, got, "every write once")
	assert.GreaterOrEqual(t, len(got), writers*(before+after))
}

// The leader is killed under a live catch-up subscription: the
// subscription resubscribes on the new leader from its last position and
// delivers every event once, in order.
func TestClusterLeaderKilledUnderSubscription(t *testing.T) {
	cl := esdbtest.StartCluster(t, 3)
	ctx := clusterCtx(t)
	logs := &afterValues{}
	f, err := esdb.OpenConfig(ctx, esdb.Config{URI: cl.URI(), Name: "app", Logger: slog.New(logs)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	r, err := f.ApplicationRecorder(ctx)
	require.NoError(t, err)
	sub, err := r.Subscribe(ctx, recorder.Start(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })

	var want, got []string
	write := func(n int) {
		for range n {
			id := uuid.NewString()
			require.NoError(t, writeOnce(ctx, r, id))
			want = append(want, id)
		}
	}
	receive := func(n int) {
		for range n {
			note, err := sub.Next(ctx)
			require.NoError(t, err)
			got = append(got, note.OriginatorID)
		}
	}
	write(20)
	receive(20) // live now
	killed, err := cl.KillLeader()
	require.NoError(t, err)
	write(20)
	receive(20)
	require.NoError(t, killed.Restart())
	cl.Leader().Kill() // and again, with the first node back as a follower
	write(20)
	receive(20)
	assert.Equal(t, want, got, "every event once, in order")
	requireNoMore(t, sub)
	afters := logs.all()
	require.NotEmpty(t, afters, "resubscriptions are logged")
	for _, a := range afters {
		assert.Regexp(t, `^\d+$`, a, "the log names the position it resubscribes after")
	}
}

// afterValues is a log handler that keeps the "after" attribute of every
// record, the position a subscription resubscribes after.
type afterValues struct {
	mu     sync.Mutex
	values []string
}

func (h *afterValues) Enabled(context.Context, slog.Level) bool { return true }
func (h *afterValues) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *afterValues) WithGroup(string) slog.Handler            { return h }

func (h *afterValues) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "after" {
			h.mu.Lock()
			h.values = append(h.values, a.Value.String())
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

func (h *afterValues) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.values...)
}
