package telemetry_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/telemetry"
)

func newMeter(t testing.TB) (*sdkmetric.MeterProvider, *sdkmetric.ManualReader) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp, reader
}

type collected struct{ rm metricdata.ResourceMetrics }

func collect(t *testing.T, r *sdkmetric.ManualReader) collected {
	t.Helper()
	var c collected
	require.NoError(t, r.Collect(context.Background(), &c.rm))
	return c
}

func (c collected) metric(t *testing.T, name string) metricdata.Metrics {
	t.Helper()
	for _, sm := range c.rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				assert.Equal(t, telemetry.ScopeName, sm.Scope.Name)
				return m
			}
		}
	}
	t.Fatalf("no metric %q", name)
	return metricdata.Metrics{}
}

func matches(set attribute.Set, want map[string]string) bool {
	for k, v := range want {
		if got, ok := set.Value(attribute.Key(k)); !ok || got.AsString() != v {
			return false
		}
	}
	return true
}

// int64s returns the value of the points of an int64 sum or gauge whose
// attributes include want, summed, and how many points matched.
func (c collected) int64s(t *testing.T, name string, want map[string]string) (int64, int) {
	t.Helper()
	var points []metricdata.DataPoint[int64]
	switch d := c.metric(t, name).Data.(type) {
	case metricdata.Sum[int64]:
		points = d.DataPoints
	case metricdata.Gauge[int64]:
		points = d.DataPoints
	default:
		t.Fatalf("%s is a %T", name, d)
	}
	var sum int64
	n := 0
	for _, p := range points {
		if matches(p.Attributes, want) {
			sum += p.Value
			n++
		}
	}
	return sum, n
}

// histogramCount returns the count of the histogram points whose attributes include want.
func (c collected) histogramCount(t *testing.T, name string, want map[string]string) uint64 {
	t.Helper()
	h, ok := c.metric(t, name).Data.(metricdata.Histogram[float64])
	require.True(t, ok, "%s is a float64 histogram", name)
	var n uint64
	for _, p := range h.DataPoints {
		if matches(p.Attributes, want) {
			n += p.Count
			assert.GreaterOrEqual(t, p.Sum, 0.0)
		}
	}
	return n
}

var errPolicy = errors.New("policy refuses")

// The framework's metrics, read with a manual reader: events recorded,
// append and read durations, processing outcomes and durations, and the
// observed lag, position and state of a follower.
func TestMetrics(t *testing.T) {
	mp, reader := newMeter(t)
	p := telemetry.Providers{MeterProvider: mp}
	up, down, pr := upAndDown(t, p)
	ctx := context.Background()
	for range 3 {
		_, err := up.Save(ctx, newCounter())
		require.NoError(t, err)
	}
	// The first event is applied, the second ignored, the third fails and
	// is skipped as a dead letter.
	f, err := follow.New(follow.Config{
		Name: "Down", Upstream: "Up", Source: up.Recorder(), Mapper: up.Mapper(), Tracker: pr, Telemetry: p, SkipFailed: true,
		Handler: follow.HandlerFunc(func(ctx context.Context, e es.Event, tr recorder.Tracking) (bool, error) {
			switch tr.NotificationID {
			case 1:
				_, err := down.SaveWithTracking(ctx, tr, newCounter())
				return true, err
			case 2:
				return false, nil
			}
			return false, errPolicy
		}),
	})
	require.NoError(t, err)
	n, err := f.CatchUp(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, n)

	// A follower without SkipFailed stops at its first failure.
	failing, err := follow.New(follow.Config{
		Name: "Failing", Upstream: "Up", Source: up.Recorder(), Mapper: up.Mapper(), Tracker: newApp(t, "FailingView", p, true).Recorder().(recorder.ProcessRecorder), Telemetry: p,
		Handler: follow.HandlerFunc(func(context.Context, es.Event, recorder.Tracking) (bool, error) { return false, errPolicy }),
	})
	require.NoError(t, err)
	_, err = failing.CatchUp(ctx)
	require.ErrorIs(t, err, errPolicy)

	c := collect(t, reader)
	got, _ := c.int64s(t, telemetry.MetricEventsRecorded, map[string]string{"application": "Up", "db.system.name": "memory"})
	assert.Equal(t, int64(3), got, "events recorded by Up")
	got, _ = c.int64s(t, telemetry.MetricEventsRecorded, map[string]string{"application": "Down"})
	assert.Equal(t, int64(1), got, "events recorded by Down")
	assert.Equal(t, uint64(3), c.histogramCount(t, telemetry.MetricAppendDuration,
		map[string]string{"application": "Up", "db.operation.name": "insert_events", "db.system.name": "memory"}))
	assert.NotZero(t, c.histogramCount(t, telemetry.MetricReadDuration,
		map[string]string{"application": "Up", "db.operation.name": "select_notifications"}))
	assert.NotZero(t, c.histogramCount(t, telemetry.MetricAppendDuration,
		map[string]string{"application": "Down", "db.operation.name": "insert_tracking"}), "the ignored and skipped positions")

	for outcome, want := range map[string]int64{"applied": 1, "ignored": 1, "skipped": 1, "failed": 0} {
		got, _ := c.int64s(t, telemetry.MetricEventsProcessed, map[string]string{"follower": "Down", "upstream": "Up", "outcome": outcome})
		assert.Equal(t, want, got, "Down %s", outcome)
		assert.Equal(t, uint64(want), c.histogramCount(t, telemetry.MetricProcessingDuration,
			map[string]string{"follower": "Down", "outcome": outcome}), "Down %s duration", outcome)
	}
	got, _ = c.int64s(t, telemetry.MetricEventsProcessed, map[string]string{"follower": "Failing", "outcome": "failed"})
	assert.Equal(t, int64(1), got, "Failing failed")

	lag, points := c.int64s(t, telemetry.MetricLag, map[string]string{"follower": "Down", "upstream": "Up", "unit": "events"})
	assert.Equal(t, 1, points)
	assert.Zero(t, lag, "caught up")
	pos, _ := c.int64s(t, telemetry.MetricPosition, map[string]string{"follower": "Down"})
	assert.Equal(t, int64(3), pos)
	idle, _ := c.int64s(t, telemetry.MetricState, map[string]string{"follower": "Down", "state": "idle"})
	assert.Equal(t, int64(1), idle)
	all, states := c.int64s(t, telemetry.MetricState, map[string]string{"follower": "Down"})
	assert.Equal(t, int64(1), all, "one state is current")
	assert.Equal(t, 6, states, "every state is reported")
	resubs, _ := c.int64s(t, telemetry.MetricResubscribes, map[string]string{"follower": "Down"})
	assert.Zero(t, resubs)

	// Two more upstream events: the lag counts them.
	for range 2 {
		_, err := up.Save(ctx, newCounter())
		require.NoError(t, err)
	}
	lag, _ = collect(t, reader).int64s(t, telemetry.MetricLag, map[string]string{"follower": "Down", "unit": "events"})
	assert.Equal(t, int64(2), lag)
}
