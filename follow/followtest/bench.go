package followtest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// CatchUpEvents is how many events BenchCatchUp follows.
const CatchUpEvents = 100_000

// Bench runs the suite's benchmarks on the harness's source: LiveTail (into
// the harness's view, and into a memory view when that is another), and
// CatchUp of CatchUpEvents events.
func Bench(b *testing.B, h Harness) {
	b.Run("LiveTail", func(b *testing.B) { BenchLiveTail(b, h) })
	if h.View != nil {
		// The source alone, without the cost of the harness's view.
		b.Run("LiveTailMemoryView", func(b *testing.B) { BenchLiveTail(b, Harness{Name: h.Name, Open: h.Open}) })
	}
	b.Run("CatchUp", func(b *testing.B) { BenchCatchUp(b, h, CatchUpEvents) })
}

// BenchLiveTail measures how long an event takes from its Save returning
// to being visible in the view of a live follower, one event at a time,
// and reports the p50 and p99 in microseconds (an event seen before Save
// returned counts as 0: a source may deliver before the writer hears back).
// It reports the same from the call of Save too (call-p50-µs, call-p99-µs).
func BenchLiveTail(b *testing.B, h Harness) {
	fx := newFixture(b, h, discardLogger())
	ctx := b.Context()
	type visible struct {
		id int64
		at time.Time
	}
	seen := make(chan visible, 1024)
	record := follow.HandlerFunc(func(ctx context.Context, e eventsourcing.Event, t recorder.Tracking) (bool, error) {
		w, _ := e.Data.(Wanted)
		if err := fx.view.Record(ctx, t, Seen{NotificationID: t.NotificationID, Seq: w.Seq}); err != nil {
			return false, err
		}
		seen <- visible{t.NotificationID, time.Now()}
		return true, nil
	})
	fx.live(record)
	// A few events first, so that connections and caches are warm.
	for i := range 20 {
		fx.wait(ctx, fx.write(ctx, Wanted{Seq: -1 - i}))
		<-seen
	}
	lat := make([]time.Duration, 0, b.N)
	call := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		called := time.Now()
		id := fx.write(ctx, Wanted{Seq: i})
		saved := time.Now()
		for v := range seen {
			if v.id == id {
				lat = append(lat, max(v.at.Sub(saved), 0))
				call = append(call, v.at.Sub(called))
				break
			}
		}
	}
	b.StopTimer()
	ReportLatency(b, "", lat)
	ReportLatency(b, "call-", call)
}

// ReportLatency reports the p50 and p99 of d (which it sorts) in
// microseconds, as prefix+"p50-µs" and prefix+"p99-µs".
func ReportLatency(b *testing.B, prefix string, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds())/1e3, prefix+"p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Nanoseconds())/1e3, prefix+"p99-µs")
}

// BenchCatchUp measures a follower catching up with n events into a
// memory view, and reports events/s.
func BenchCatchUp(b *testing.B, h Harness, n int) {
	fx := newFixture(b, h, discardLogger())
	Fill(b, fx.app, n)
	var total time.Duration
	b.ResetTimer()
	for range b.N {
		total += CatchUp(b, fx.app, fx.src, fx.configure)
	}
	b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "events/s")
}

// Fill writes n Wanted events to app, in aggregates of up to 100 events
// saved at once, and returns the last one's notification id.
func Fill(tb testing.TB, app *eventsourcing.Application, n int) int64 {
	tb.Helper()
	var last int64
	for seq := 0; seq < n; {
		item := new(Item)
		eventsourcing.Create(item, eventsourcing.NewID(), Wanted{Seq: seq})
		seq++
		for i := 1; i < 100 && seq < n; i++ {
			eventsourcing.Trigger(item, Wanted{Seq: seq})
			seq++
		}
		recs, err := app.Save(tb.Context(), item)
		require.NoError(tb, err)
		last = recs[len(recs)-1].NotificationID
	}
	return last
}

// CatchUp follows src (app's log) from the start into a fresh memory view,
// through the runtime's catch-up (pages, a batch each), and returns how long
// it took to process everything src held. configure, when set, changes the
// follower's configuration.
func CatchUp(tb testing.TB, app *eventsourcing.Application, src follow.Source, configure ...func(*follow.Config)) time.Duration {
	tb.Helper()
	view := NewMemoryView()
	cfg := follow.Config{
		Name: "FollowTestCatchUp", Upstream: app.Name(), Source: src, Mapper: app.Mapper(),
		Handler: &handler{view: view}, Tracker: view, Logger: discardLogger(),
	}
	for _, fn := range configure {
		if fn != nil {
			fn(&cfg)
		}
	}
	f, err := follow.New(cfg)
	require.NoError(tb, err)
	start := time.Now()
	n, err := f.CatchUp(tb.Context())
	elapsed := time.Since(start)
	require.NoError(tb, err)
	require.Positive(tb, n)
	return elapsed
}
