package telemetry_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/telemetry"
)

// BenchmarkNoopSpan is what starting and ending a span costs on OpenTelemetry's
// global tracer before a provider is set: the cost the framework avoids by
// deciding once, when an application is built, whether telemetry is live.
func BenchmarkNoopSpan(b *testing.B) {
	tracer := otel.GetTracerProvider().Tracer("bench")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, span := tracer.Start(ctx, "save")
		span.End()
	}
}

// saveRound is savesPerRound one-event saves on one application.
const savesPerRound = 200

// BenchmarkSaveOverhead saves one-event aggregates on the memory backend in
// four configurations, interleaved round by round (savesPerRound saves per
// configuration and round, in an order that rotates), and reports the
// median time per save of each and its ratio to the uninstrumented one:
//
//   - absent: no providers configured (the default);
//   - disabled: OpenTelemetry's no-op providers passed explicitly;
//   - enabled: an SDK tracer provider (synchronous in-memory exporter) and
//     meter provider (manual reader), saving outside any trace;
//   - traced: the same, saving inside a sampled span, so that each save
//     records its save and append spans;
//   - nodurations: enabled, with an SDK view that drops the duration
//     histograms (what is left: the checks and the events-recorded count).
func BenchmarkSaveOverhead(b *testing.B) {
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	mp, _ := newMeter(b)
	enabled := telemetry.Providers{TracerProvider: tp, MeterProvider: mp}
	tracedCtx, parent := tp.Tracer("bench").Start(context.Background(), "bench")
	defer parent.End()
	configs := []struct {
		name string
		app  *es.Application
		ctx  context.Context
		ns   []float64
	}{
		{name: "absent", app: newApp(b, "Absent", telemetry.Providers{}, false), ctx: context.Background()},
		{name: "disabled", app: newApp(b, "Disabled", telemetry.Providers{
			TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()}, false), ctx: context.Background()},
		{name: "enabled", app: newApp(b, "Enabled", enabled, false), ctx: context.Background()},
		{name: "traced", app: newApp(b, "Traced", enabled, false), ctx: tracedCtx},
		{name: "nodurations", app: newApp(b, "NoDurations", telemetry.Providers{TracerProvider: tp, MeterProvider: dropDurations(b)}, false),
			ctx: context.Background()},
	}
	round := 0
	b.ReportAllocs()
	for b.Loop() {
		for k := range configs {
			c := &configs[(k+round)%len(configs)]
			start := time.Now()
			for range savesPerRound {
				if _, err := c.app.Save(c.ctx, newCounter()); err != nil {
					b.Fatal(err)
				}
			}
			c.ns = append(c.ns, float64(time.Since(start).Nanoseconds())/savesPerRound)
		}
		b.StopTimer()
		exporter.Reset()
		b.StartTimer()
		round++
	}
	base := median(configs[0].ns)
	for _, c := range configs {
		m := median(c.ns)
		b.ReportMetric(m, c.name+"-ns/save")
		if c.name != "absent" {
			b.ReportMetric(m/base, c.name+"/absent")
		}
	}
}

// dropDurations is a meter provider whose view drops the duration histograms.
func dropDurations(b *testing.B) *sdkmetric.MeterProvider {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()),
		sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Name: "eventsourcing.*.duration"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationDrop{}})))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkDurationParts is what one duration measurement of a recorder call
// costs when enabled, in its two parts: the clock reads around the call and
// the SDK's histogram Record with the call's three precomputed attributes.
func BenchmarkDurationParts(b *testing.B) {
	b.Run("clock", func(b *testing.B) {
		var d float64
		for b.Loop() {
			d += telemetry.StartTimer().Seconds()
		}
		_ = d
	})
	b.Run("record", func(b *testing.B) {
		mp, _ := newMeter(b)
		h, _ := mp.Meter("bench").Float64Histogram("eventsourcing.append.duration")
		opts := []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
			telemetry.KeyApplication.String("Orders"), telemetry.KeyDBSystem.String("memory"), telemetry.KeyDBOperation.String("insert_events")))}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			h.Record(ctx, 0.000001, opts...)
		}
	})
}
