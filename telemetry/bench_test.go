package telemetry_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
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
//     records its save and append spans.
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

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
