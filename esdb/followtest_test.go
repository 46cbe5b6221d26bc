package esdb_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/esdb"
	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
	"github.com/eventsourcing-go/eventsourcing/follow/followtest"
)

// The subscription runtime on EventStoreDB (an esdbtest server): a
// catch-up subscription to $all with the server-side filter. Drop restarts
// the server on the same address and data.
var followHarness = followtest.Harness{
	Name: "eventstoredb on esdbtest",
	Open: func(tb testing.TB, opts eventsourcing.Options) followtest.Upstream {
		dir := tb.TempDir()
		srv, err := esdbtest.NewServer(esdbtest.WithDataDir(dir))
		require.NoError(tb, err)
		var mu sync.Mutex
		tb.Cleanup(func() { mu.Lock(); defer mu.Unlock(); _ = srv.Close() })
		addr := srv.Addr().String()
		app := followtest.NewApplication(tb, opts, map[string]string{"PERSISTENCE_MODULE": "eventstoredb", esdb.KeyURI: srv.URI()})
		restart := func(tb testing.TB) {
			mu.Lock()
			defer mu.Unlock()
			require.NoError(tb, srv.Close())
			srv, err = esdbtest.NewServer(esdbtest.WithAddr(addr), esdbtest.WithDataDir(dir))
			require.NoError(tb, err)
			require.Eventually(tb, func() bool {
				_, _, err := app.Recorder().MaxNotificationID(tb.Context())
				return err == nil
			}, followtest.Timeout, 10*time.Millisecond, "the restarted server answers")
		}
		return followtest.Upstream{App: app, Drop: restart}
	},
}

func TestFollow(t *testing.T) { followtest.Run(t, followHarness) }

func BenchmarkFollowLiveTail(b *testing.B) { followtest.BenchLiveTail(b, followHarness) }

// Catching up with 100,000 events through the runtime (pages, decoded,
// into a memory view) beside the official client's bare SubscribeToAll
// over the same events: three rounds of each, alternating, per iteration,
// so that both see the same load; reports the medians and their ratio.
func BenchmarkFollowCatchUpVsSubscribeToAll(b *testing.B) {
	up := followHarness.Open(b, eventsourcing.Options{Name: "FollowTestUpstream", Types: followtest.Types()})
	last := followtest.Fill(b, up.App, followtest.CatchUpEvents)
	uri, ok := up.App.Env().Lookup(esdb.KeyURI)
	require.True(b, ok)
	c := newClient(b, uri)
	var runtime, bare []time.Duration
	b.ResetTimer()
	for range b.N {
		for range 3 {
			bare = append(bare, bareCatchUp(b, c, uint64(last)))
			runtime = append(runtime, followtest.CatchUp(b, up.App, up.App.Recorder()))
		}
	}
	b.StopTimer()
	rt, bt := median(runtime), median(bare)
	b.ReportMetric(followtest.CatchUpEvents/rt.Seconds(), "runtime-events/s")
	b.ReportMetric(followtest.CatchUpEvents/bt.Seconds(), "bare-events/s")
	b.ReportMetric(rt.Seconds()/bt.Seconds(), "ratio")
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

// bareCatchUp reads $all from the start with a catch-up subscription until
// the event at position last, and returns how long that took.
func bareCatchUp(b *testing.B, c *esdbclient.Client, last uint64) time.Duration {
	start := time.Now()
	sub, err := c.SubscribeToAll(b.Context(), esdbclient.SubscribeToAllOptions{From: esdbclient.Start{}, Filter: esdbclient.ExcludeSystemEventsFilter()})
	require.NoError(b, err)
	defer sub.Close()
	for {
		ev := sub.Recv()
		require.Nil(b, ev.SubscriptionDropped)
		if ev.EventAppeared != nil && ev.EventAppeared.OriginalEvent().Position.Commit >= last {
			return time.Since(start)
		}
	}
}
