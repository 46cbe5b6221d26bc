package grpcapp

import (
	"context"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/stats"
)

// Servers and clients are instrumented with OpenTelemetry (otelgrpc): a
// span and a duration per RPC, and on the server a span per command or
// query named by the application and method ("Orders.CreateNewOrder").
// They use the global tracer and meter providers and the global
// propagator (the eventsourcing-grpc command sets them from the OTEL_*
// variables), or those of WithServerTelemetry and WithClientTelemetry;
// the trace context travels in the calls' metadata. A server that starts,
// or a client that is made, while neither provider records (the globals
// before a program sets them, or no-op providers) installs no
// instrumentation at all, so set the globals first.
//
// The calls that are polled rather than made (Ping, Status, the health and
// reflection services) get no span: a follower reads its leader's head
// every few seconds, and a trace per read would bury the ones that matter.

// scopeName is the instrumentation scope of the command and query spans.
const scopeName = "github.com/eventsourcing-go/eventsourcing/grpcapp"

// Span attributes of a command or query span.
const (
	attrApplication = attribute.Key("eventsourcing.application")
	attrMethod      = attribute.Key("eventsourcing.method")
	attrQuery       = attribute.Key("eventsourcing.query")
)

// Telemetry is where a server or client sends its spans and durations,
// and how it carries trace context in the calls' metadata. A nil field is
// the global one (otel.GetTracerProvider, otel.GetMeterProvider,
// otel.GetTextMapPropagator).
type Telemetry struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Propagator     propagation.TextMapPropagator
}

// instrumentation is a server's or client's choice of providers.
type instrumentation struct {
	Telemetry
	off bool // no instrumentation at all
}

// providers returns the tracer and meter providers: those given, else
// the globals.
func (t instrumentation) providers() (trace.TracerProvider, metric.MeterProvider) {
	tp, mp := t.TracerProvider, t.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	return tp, mp
}

// handler returns the stats handler of a server (server true) or client,
// or nil when instrumentation is off.
func (t instrumentation) handler(server bool) stats.Handler {
	if t.off {
		return nil
	}
	tp, mp := t.providers()
	opts := []otelgrpc.Option{otelgrpc.WithTracerProvider(tp), otelgrpc.WithMeterProvider(mp), otelgrpc.WithFilter(traced)}
	if t.Propagator != nil {
		opts = append(opts, otelgrpc.WithPropagators(t.Propagator))
	}
	if !t.records() {
		// otelgrpc does its work with no-op providers too (a tenth of a
		// local call), and gRPC keeps more of each call for a stats
		// handler: a program that configures no telemetry pays nothing.
		return nil
	}
	if server {
		return otelgrpc.NewServerHandler(opts...)
	}
	return otelgrpc.NewClientHandler(opts...)
}

// The global providers before a program sets them: they record nothing.
var (
	unsetTracerProvider = otel.GetTracerProvider()
	unsetMeterProvider  = otel.GetMeterProvider()
)

// records reports whether a provider records: one given, or a global one
// that the program has set, other than a no-op.
func (t instrumentation) records() bool {
	tp, mp := t.providers()
	_, noopTP := tp.(noop.TracerProvider)
	_, noopMP := mp.(metricnoop.MeterProvider)
	return tp != unsetTracerProvider && !noopTP || mp != unsetMeterProvider && !noopMP
}

// methodTracer returns the tracer of the command and query spans.
func (t instrumentation) methodTracer() trace.Tracer {
	tp, _ := t.providers()
	if t.off {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(scopeName)
}

// traced reports whether an RPC gets a span: not the polled ones.
func traced(info *stats.RPCTagInfo) bool {
	m := info.FullMethodName
	switch {
	case strings.HasPrefix(m, "/grpc.health."), strings.HasPrefix(m, "/grpc.reflection."):
		return false
	case m == "/eventsourcing_grpc.Application/Ping", m == "/eventsourcing_grpc.Application/Status":
		return false
	}
	return true
}

// WithServerTelemetry sets the providers of the server's RPC and command
// spans and RPC durations, and its propagator (default: the global ones,
// which do nothing until the program sets them).
func WithServerTelemetry(t Telemetry) ServerOption {
	return func(o *serverOptions) { o.telemetry = instrumentation{Telemetry: t} }
}

// WithClientTelemetry sets the providers of the client's RPC spans and
// durations, and its propagator (default: the global ones).
func WithClientTelemetry(t Telemetry) ClientOption {
	return func(o *clientOptions) { o.telemetry = instrumentation{Telemetry: t} }
}

// startMethodSpan starts the span of one command or query, as a child of
// the RPC's span. It starts none when the RPC's span is not recorded
// (instrumentation off, or not sampled), which costs a call nothing.
func (s *Server) startMethodSpan(ctx context.Context, m *method) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, parent
	}
	return s.tracer.Start(ctx, s.name+"."+m.name, trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(attrApplication.String(s.name), attrMethod.String(m.name), attrQuery.Bool(m.query)))
}

// endMethodSpan ends a command or query span with the call's outcome.
func endMethodSpan(span trace.Span, err error) {
	if !span.IsRecording() {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
