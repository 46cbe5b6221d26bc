package telemetry_test

import (
	"context"
	"errors"
	"maps"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/telemetry"
)

// Telemetry is live only with a configured provider: the global providers
// before they are set and the no-op providers leave applications alone.
func TestLiveOnlyWhenConfigured(t *testing.T) {
	tp, _ := newTracer(t)
	mp, _ := newMeter(t)
	for _, c := range []struct {
		name string
		p    telemetry.Providers
		live bool
	}{
		{"globals not set", telemetry.Providers{}, false},
		{"no-op providers", telemetry.Providers{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()}, false},
		{"explicit global tracer, unset", telemetry.Providers{TracerProvider: otel.GetTracerProvider()}, false},
		{"tracer", telemetry.Providers{TracerProvider: tp}, true},
		{"meter", telemetry.Providers{MeterProvider: mp}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.live, telemetry.New(c.p) != nil)
			app := newApp(t, "App", c.p, false)
			assert.Equal(t, c.live, app.Telemetry() != nil)
			_, wrapped := app.Recorder().(interface {
				Unwrap() recorder.ApplicationRecorder
			})
			assert.Equal(t, c.live, wrapped, "the recorder is wrapped only when live")
		})
	}
}

// A command is a span of its own, the parent of the saves it makes; a
// failed one is marked as such.
func TestCommandSpan(t *testing.T) {
	tp, sr := newTracer(t)
	app := newApp(t, "Orders", telemetry.Providers{TracerProvider: tp}, false)
	ctx, span := app.Telemetry().StartCommand(context.Background(), "CreateOrder")
	require.NotNil(t, span)
	_, err := app.Save(ctx, newCounter())
	require.NoError(t, err)
	telemetry.End(span, nil)
	requireChild(t, spanNamed(t, sr, "Orders.CreateOrder"), spanNamed(t, sr, "save Orders"))

	_, span = app.Telemetry().StartCommand(context.Background(), "PayOrder")
	telemetry.End(span, errors.New("no such order"))
	failed := spanNamed(t, sr, "Orders.PayOrder")
	assert.Equal(t, codes.Error, failed.Status().Code)
	assert.Equal(t, "other", attr(failed, "error.type").AsString())

	// Without telemetry the calls are safe and do nothing.
	var none *telemetry.App
	ctx2, span := none.StartCommand(context.Background(), "CreateOrder")
	assert.Nil(t, span)
	assert.Equal(t, context.Background(), ctx2)
	telemetry.End(span, nil)
}

// A conflict is an error of the append span, with error.type integrity.
func TestConflictSpan(t *testing.T) {
	tp, sr := newTracer(t)
	app := newApp(t, "Counters", telemetry.Providers{TracerProvider: tp}, false)
	c := newCounter()
	_, err := app.Save(context.Background(), c)
	require.NoError(t, err)
	again, err := es.Get[Counter](context.Background(), app, c.ID())
	require.NoError(t, err)
	es.Trigger(again, Incremented{})
	es.Trigger(c, Incremented{})
	_, err = app.Save(context.Background(), again)
	require.NoError(t, err)
	ctx, parent := tp.Tracer("test").Start(context.Background(), "command")
	_, err = app.Save(ctx, c)
	parent.End()
	require.ErrorIs(t, err, es.ErrIntegrity)
	insert := spanNamed(t, sr, "insert_events Counters")
	assert.Equal(t, codes.Error, insert.Status().Code)
	assert.Equal(t, "integrity", attr(insert, "error.type").AsString())
	assert.Equal(t, codes.Error, spanNamed(t, sr, "save Counters").Status().Code)
}

// batchTracker is a tracker that commits batches, the first of which it
// rolls back after running it.
type batchTracker struct {
	mu       sync.Mutex
	pos      map[string]int64
	rollback bool
}

func (b *batchTracker) MaxTrackingID(_ context.Context, app string) (int64, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.pos[app]
	return p, ok, nil
}

func (b *batchTracker) InsertTracking(_ context.Context, t recorder.Tracking) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.pos[t.ApplicationName]; ok && t.NotificationID <= p {
		return recorder.ErrIntegrity
	}
	b.pos[t.ApplicationName] = t.NotificationID
	return nil
}

func (b *batchTracker) Batch(ctx context.Context, fn func(context.Context) error) error {
	b.mu.Lock()
	saved := maps.Clone(b.pos)
	b.mu.Unlock()
	if err := fn(ctx); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rollback {
		b.rollback, b.pos = false, saved
		return errors.New("rolled back")
	}
	return nil
}

// The outcomes of a batch that is rolled back are not counted: its events
// are counted once, when processed again one by one.
func TestRolledBackBatchCountedOnce(t *testing.T) {
	mp, reader := newMeter(t)
	p := telemetry.Providers{MeterProvider: mp}
	up := newApp(t, "Up", p, false)
	for range 3 {
		_, err := up.Save(context.Background(), newCounter())
		require.NoError(t, err)
	}
	f, err := follow.New(follow.Config{
		Name: "View", Upstream: "Up", Source: up.Recorder(), Mapper: up.Mapper(), Telemetry: p,
		Tracker: &batchTracker{pos: map[string]int64{}, rollback: true}, CheckpointInterval: time.Hour,
		Handler: follow.HandlerFunc(func(context.Context, es.Event, recorder.Tracking) (bool, error) { return false, nil }),
	})
	require.NoError(t, err)
	_, err = f.CatchUp(context.Background())
	require.NoError(t, err)
	got, _ := collect(t, reader).int64s(t, telemetry.MetricEventsProcessed, map[string]string{"follower": "View", "outcome": "ignored"})
	assert.Equal(t, int64(3), got)
	// The next batch commits: its own three only.
	for range 3 {
		_, err := up.Save(context.Background(), newCounter())
		require.NoError(t, err)
	}
	_, err = f.CatchUp(context.Background())
	require.NoError(t, err)
	got, _ = collect(t, reader).int64s(t, telemetry.MetricEventsProcessed, map[string]string{"follower": "View", "outcome": "ignored"})
	assert.Equal(t, int64(6), got)
}

// The trace context survives the W3C round trip, and bad values are ignored.
func TestTraceParentRoundTrip(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	sc := telemetry.SpanContextOf(tp)
	require.True(t, sc.IsValid())
	assert.True(t, sc.IsRemote())
	assert.True(t, sc.IsSampled())
	assert.Equal(t, tp, telemetry.TraceParent(telemetry.ContextWithTraceParent(context.Background(), tp)))
	for _, bad := range []string{"", "nonsense", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"} {
		assert.False(t, telemetry.SpanContextOf(bad).IsValid(), bad)
		assert.Empty(t, telemetry.TraceParent(telemetry.ContextWithTraceParent(context.Background(), bad)), bad)
	}
}

// A follower's readings stop when it is garbage-collected: the meter holds
// it weakly.
func TestFollowerReadingsEndWithIt(t *testing.T) {
	mp, reader := newMeter(t)
	p := telemetry.Providers{MeterProvider: mp}
	up := newApp(t, "Up", p, false)
	func() {
		f, err := follow.New(follow.Config{
			Name: "Gone", Upstream: "Up", Source: up.Recorder(), Mapper: up.Mapper(), Tracker: &batchTracker{pos: map[string]int64{}}, Telemetry: p,
			Handler: follow.HandlerFunc(func(context.Context, es.Event, recorder.Tracking) (bool, error) { return false, nil }),
		})
		require.NoError(t, err)
		_, points := collect(t, reader).int64s(t, telemetry.MetricLag, map[string]string{"follower": "Gone"})
		require.Equal(t, 1, points)
		_ = f
	}()
	require.Eventually(t, func() bool {
		runtime.GC()
		var c collected
		require.NoError(t, reader.Collect(context.Background(), &c.rm))
		for _, sm := range c.rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name == telemetry.MetricLag {
					return len(m.Data.(metricdata.Gauge[int64]).DataPoints) == 0
				}
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "the collected follower is no longer read")
}

// With telemetry, a get still replays from the memory recorder's views of
// its own memory (AppendEventViews), through the instrumented recorder.
func TestInstrumentedRecorderKeepsViews(t *testing.T) {
	mp, _ := newMeter(t)
	app := newApp(t, "Views", telemetry.Providers{MeterProvider: mp}, false)
	_, ok := app.Repository().Events().(interface {
		AppendEventViews(context.Context, []recorder.StoredEvent, string, recorder.EventQuery) ([]recorder.StoredEvent, error)
	})
	assert.True(t, ok)
}
