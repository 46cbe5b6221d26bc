package telemetry

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// ScopeName is the instrumentation scope of the framework's tracer and meter.
const ScopeName = "github.com/eventsourcing-go/eventsourcing"

// Providers say where the telemetry of an application or a follower goes.
// A nil field means OpenTelemetry's global provider (otel.GetTracerProvider,
// otel.GetMeterProvider) as it is when the application or follower is built.
type Providers struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// The global providers as OpenTelemetry starts: delegating to nothing until
// otel.SetTracerProvider and otel.SetMeterProvider are called. Instrumenting
// against them would cost a no-op call per operation and record nothing.
var (
	unsetTracerProvider = otel.GetTracerProvider()
	unsetMeterProvider  = otel.GetMeterProvider()
)

// Telemetry is a resolved pair of providers with the framework's instruments.
// New returns nil when neither provider records anything; every method of
// the framework checks for nil once and then costs nothing more.
type Telemetry struct {
	tracer trace.Tracer
	// tracing is set when the tracer provider was configured: followers
	// then start a span per event even when it carries no trace context.
	// Saves and reads start spans only inside a recording span.
	tracing bool
	// metering is set when the meter provider was configured.
	metering bool
	meter    metric.Meter
	inst     instruments
}

// New resolves p (nil fields: the global providers) and returns nil when
// neither the tracer provider nor the meter provider is configured: the
// global providers before otel.SetTracerProvider / otel.SetMeterProvider, or
// the no-op providers of go.opentelemetry.io/otel/{trace,metric}/noop.
func New(p Providers) *Telemetry {
	tp, mp := p.TracerProvider, p.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	tracing, metering := tracerLive(tp), meterLive(mp)
	if !tracing && !metering {
		return nil
	}
	t := &Telemetry{tracer: tp.Tracer(ScopeName), tracing: tracing, metering: metering, meter: mp.Meter(ScopeName)}
	t.inst = newInstruments(t.meter)
	return t
}

// TracerConfigured reports whether tp records spans: false for the global
// provider before otel.SetTracerProvider and for the no-op provider. A nil
// tp is the global provider as it is now. Instrumentation outside this
// package (grpcapp's) makes the same decision with it.
func TracerConfigured(tp trace.TracerProvider) bool {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tracerLive(tp)
}

// MeterConfigured reports whether mp records measurements, as
// TracerConfigured does for tracers.
func MeterConfigured(mp metric.MeterProvider) bool {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	return meterLive(mp)
}

func tracerLive(tp trace.TracerProvider) bool {
	if _, ok := tp.(tracenoop.TracerProvider); ok {
		return false
	}
	// An interface comparison: both are pointers when the types agree.
	return tp != unsetTracerProvider
}

func meterLive(mp metric.MeterProvider) bool {
	if _, ok := mp.(metricnoop.MeterProvider); ok {
		return false
	}
	return mp != unsetMeterProvider
}

// traceContext is the W3C Trace Context propagator, which formats and parses
// recorder.StoredEvent.TraceParent.
var traceContext propagation.TraceContext

// traceParentKey is the W3C header whose value TraceParent holds.
const traceParentKey = "traceparent"

// carrier holds one traceparent value for the propagator.
type carrier struct{ traceParent string }

func (c *carrier) Get(key string) string {
	if key == traceParentKey {
		return c.traceParent
	}
	return ""
}

func (c *carrier) Set(key, value string) {
	if key == traceParentKey {
		c.traceParent = value
	}
}

func (c *carrier) Keys() []string { return []string{traceParentKey} }

// TraceParent returns the W3C traceparent of the span in ctx, or "" when ctx
// holds no valid span context.
func TraceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	var c carrier
	traceContext.Inject(ctx, &c)
	return c.traceParent
}

// ContextWithTraceParent returns ctx with the remote span context of a W3C
// traceparent value, so that a span started from it is the child of the span
// that recorded an event. An empty or malformed value returns ctx as it is.
func ContextWithTraceParent(ctx context.Context, traceParent string) context.Context {
	if traceParent == "" {
		return ctx
	}
	return traceContext.Extract(ctx, &carrier{traceParent: traceParent})
}

// SpanContextOf parses a W3C traceparent value; the result is invalid when the
// value is empty or malformed.
func SpanContextOf(traceParent string) trace.SpanContext {
	return trace.SpanContextFromContext(ContextWithTraceParent(context.Background(), traceParent))
}

// recording reports whether ctx holds a span that records: saves and reads
// are traced inside a trace only, never as spans of their own.
func recording(ctx context.Context) bool { return trace.SpanFromContext(ctx).IsRecording() }

// End ends a span started by this package (nil means none was started),
// marking it failed when err is not nil.
func End(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(errorType.String(errorClass(err)))
	}
	span.End()
}

// errorClass names the kind of a recorder error (error.type), "other" for
// errors outside recorder's kinds.
func errorClass(err error) string {
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	}
	return "other"
}

// errorKinds are recorder's kinds, the most specific first.
var errorKinds = []struct {
	err  error
	name string
}{
	{recorder.ErrIntegrity, "integrity"},
	{recorder.ErrConnectionUnavailable, "connection_unavailable"},
	{recorder.ErrOperational, "operational"},
	{recorder.ErrData, "data"},
	{recorder.ErrInternal, "internal"},
	{recorder.ErrProgramming, "programming"},
	{recorder.ErrNotSupported, "not_supported"},
	{recorder.ErrInterface, "interface"},
	{recorder.ErrDatabase, "database"},
	{recorder.ErrTimeout, "timeout"},
	{recorder.ErrSubscriptionClosed, "subscription_closed"},
}

// epoch is the origin of the clock durations are read from: time.Since
// reads the monotonic clock only, where time.Now reads the wall clock too,
// so a duration costs two clock reads instead of three.
var epoch = time.Now()

// Timer is when a measured operation started; the zero Timer measures nothing.
type Timer struct {
	at time.Duration
	on bool
}

// StartTimer starts measuring a duration.
func StartTimer() Timer { return Timer{at: time.Since(epoch), on: true} }

// Seconds returns the seconds since the timer started.
func (t Timer) Seconds() float64 { return (time.Since(epoch) - t.at).Seconds() }
