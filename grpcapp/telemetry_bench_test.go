package grpcapp_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/eventsourcing-go/eventsourcing/example/orders"
	"github.com/eventsourcing-go/eventsourcing/grpcapp"
)

// What OpenTelemetry costs a remote GetOrder query. Each iteration calls
// one server without any instrumentation and one instrumented server (each
// with its own client and application) in turn, alternating which goes
// first, so that both see the same load on a shared machine; it reports
// both medians and their ratio.
//
//   - disabled: the instrumentation a program gets when it configures
//     nothing (the global providers, which do nothing);
//   - enabled: every call sampled, spans batched into an in-memory
//     exporter, RPC durations into a manual metric reader, the W3C
//     propagator carrying the trace context;
//   - sampled-10pct: the same with one trace in ten sampled
//     (OTEL_TRACES_SAMPLER=parentbased_traceidratio, ..._ARG=0.1).
//   - traces, durations: the spans alone, the RPC durations alone.
func BenchmarkTelemetry(b *testing.B) {
	b.Run("disabled", func(b *testing.B) { benchTelemetry(b, nil, nil) })
	b.Run("enabled", func(b *testing.B) { benchEnabled(b, sdktrace.AlwaysSample()) })
	b.Run("sampled-10pct", func(b *testing.B) { benchEnabled(b, sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1))) })
	b.Run("traces", func(b *testing.B) {
		exp := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		benchTelemetry(b, &grpcapp.Telemetry{TracerProvider: tp, Propagator: propagation.TraceContext{}}, exp.Reset)
	})
	b.Run("durations", func(b *testing.B) {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
		benchTelemetry(b, &grpcapp.Telemetry{MeterProvider: mp}, nil)
	})
}

// benchEnabled is the enabled case with the given sampler.
func benchEnabled(b *testing.B, sampler sdktrace.Sampler) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSampler(sampler))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) })
	t := grpcapp.Telemetry{TracerProvider: tp, MeterProvider: mp, Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
	benchTelemetry(b, &t, exp.Reset)
}

// benchTelemetry compares calls without instrumentation with calls
// instrumented by t (the globals when nil); reset, when set, empties the
// exporter every 100 calls (200 spans, fewer than a batch the SDK sends at
// once), outside the timed calls, as an exporter lets go of what it sent.
func benchTelemetry(b *testing.B, t *grpcapp.Telemetry, reset func()) {
	ctx := context.Background()
	sopt, copt := []grpcapp.ServerOption{grpcapp.WithServerLogger(discard())}, []grpcapp.ClientOption(nil)
	if t != nil {
		sopt, copt = append(sopt, grpcapp.WithServerTelemetry(*t)), append(copt, grpcapp.WithClientTelemetry(*t))
	}
	bareS := startServer(b, newOrders(b), grpcapp.WithServerLogger(discard()), grpcapp.WithoutServerTelemetry)
	bare := connect(b, bareS.Addr(), grpcapp.WithoutClientTelemetry).App()
	otelS := startServer(b, newOrders(b), sopt...)
	inst := connect(b, otelS.Addr(), copt...).App()
	bareID, err := grpcapp.Call[uuid.UUID](ctx, bare, "CreateNewOrder")
	require.NoError(b, err)
	instID, err := grpcapp.Call[uuid.UUID](ctx, inst, "CreateNewOrder")
	require.NoError(b, err)
	get := func(p *grpcapp.AppProxy, id uuid.UUID) time.Duration {
		t0 := time.Now()
		if _, err := grpcapp.Call[orders.OrderView](ctx, p, "GetOrder", id); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	bareD := make([]time.Duration, 0, b.N)
	instD := make([]time.Duration, 0, b.N)
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			bareD = append(bareD, get(bare, bareID))
			instD = append(instD, get(inst, instID))
		} else {
			instD = append(instD, get(inst, instID))
			bareD = append(bareD, get(bare, bareID))
		}
		if i++; reset != nil && i%100 == 0 {
			reset()
		}
	}
	mb, mi := median(bareD), median(instD)
	b.ReportMetric(float64(mb.Nanoseconds())/1e3, "bare-p50-µs")
	b.ReportMetric(float64(mi.Nanoseconds())/1e3, "otel-p50-µs")
	b.ReportMetric(float64(mi)/float64(mb), "ratio")
}
