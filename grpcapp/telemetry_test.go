package grpcapp_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/eventsourcing-go/eventsourcing/grpcapp"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// recordingProvider returns a tracer provider that keeps every span in
// memory, synchronously.
func recordingProvider(t testing.TB) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exp
}

// telemetryOf sends spans to tp and carries the W3C trace context.
func telemetryOf(tp trace.TracerProvider) grpcapp.Telemetry {
	return grpcapp.Telemetry{TracerProvider: tp, Propagator: propagation.TraceContext{}}
}

// A command called through a client is one trace: the client's RPC span,
// and the server's as its child, which is the command's span: named by the
// application and method, with the RPC conventions' attributes and the
// command's. Polled RPCs (Ping, Status) get no span.
func TestCallSpans(t *testing.T) {
	s, c, exp := tracedCalls(t)
	_, err := c.Status(t.Context())
	require.NoError(t, err)
	require.NoError(t, c.Ping(t.Context()))
	assert.Empty(t, exp.GetSpans(), "polled calls are not traced")

	_, err = grpcapp.Call[uuid.UUID](t.Context(), c.App(), "CreateNewOrder")
	require.NoError(t, err)

	spans := exp.GetSpans()
	require.Len(t, spans, 2, "%v", spans)
	client, server := spanOfKind(t, spans, trace.SpanKindClient), spanOfKind(t, spans, trace.SpanKindServer)
	assert.Equal(t, "eventsourcing_grpc.Application/Call", client.Name)
	assert.Equal(t, "Orders.CreateNewOrder", server.Name, "the server span is the command's")
	assert.Equal(t, client.SpanContext.TraceID(), server.SpanContext.TraceID(), "one trace from client to command")
	assert.Equal(t, client.SpanContext.SpanID(), server.Parent.SpanID(), "the server's span is the client's child")
	assert.True(t, server.Parent.IsRemote())

	for _, sp := range []tracetest.SpanStub{client, server} {
		assert.Contains(t, sp.Attributes, attribute.String("rpc.system.name", "grpc"))
		assert.Contains(t, sp.Attributes, attribute.String("rpc.method", "eventsourcing_grpc.Application/Call"))
		assert.Contains(t, sp.Attributes, attribute.String("rpc.response.status_code", "OK"))
		assert.Equal(t, codes.Unset, sp.Status.Code)
	}
	host, port, err := net.SplitHostPort(s.Addr())
	require.NoError(t, err)
	assert.Contains(t, client.Attributes, attribute.String("server.address", host))
	assert.Contains(t, client.Attributes, attribute.Int("server.port", atoi(t, port)))
	assert.Contains(t, server.Attributes, attribute.String("application", "Orders"))
	assert.Contains(t, server.Attributes, attribute.String("eventsourcing.method", "CreateNewOrder"))
	assert.Contains(t, server.Attributes, attribute.Bool("eventsourcing.query", false))
}

// A failed call says so on both sides: the client's span is an error
// whatever the code; the server's, the method's span, is an error when the
// method failed, and otherwise only for the codes that are the server's
// fault (an unknown method is). Every span carries the status code.
func TestCallSpansOnError(t *testing.T) {
	_, c, exp := tracedCalls(t)

	_, err := c.App().Call(t.Context(), "GetOrder", uuid.New())
	require.Equal(t, grpccodes.NotFound, status.Code(err), "%v", err)
	spans := exp.GetSpans()
	require.Len(t, spans, 2, "%v", spans)
	client, query := spanOfKind(t, spans, trace.SpanKindClient), spanOfKind(t, spans, trace.SpanKindServer)
	assert.Equal(t, "Orders.GetOrder", query.Name)
	for _, sp := range []tracetest.SpanStub{client, query} {
		assert.Equal(t, codes.Error, sp.Status.Code, sp.Name)
		assert.Contains(t, sp.Status.Description, "not found")
		assert.Contains(t, sp.Attributes, attribute.String("rpc.response.status_code", "NOT_FOUND"))
		assert.Contains(t, sp.Attributes, attribute.String("error.type", "NOT_FOUND"))
	}
	assert.Contains(t, query.Attributes, attribute.Bool("eventsourcing.query", true))

	exp.Reset()
	_, err = c.App().Call(t.Context(), "NoSuchMethod")
	require.Error(t, err)
	spans = exp.GetSpans()
	require.Len(t, spans, 2, "%v", spans)
	server := spanOfKind(t, spans, trace.SpanKindServer)
	assert.Equal(t, "eventsourcing_grpc.Application/Call", server.Name, "no method, no method span")
	assert.Contains(t, server.Attributes, attribute.String("rpc.response.status_code", "UNIMPLEMENTED"))
	assert.Equal(t, codes.Error, server.Status.Code, "Unimplemented is the server's")
}

// tracedCalls starts a traced server and connects a traced client, whose
// spans go to exp once the client knows the server's methods.
func tracedCalls(t *testing.T) (*grpcapp.Server, *grpcapp.Client, *tracetest.InMemoryExporter) {
	t.Helper()
	tp, exp := recordingProvider(t)
	s := startServer(t, newOrders(t), grpcapp.WithServerLogger(discard()), grpcapp.WithServerTelemetry(telemetryOf(tp)))
	c := connect(t, s.Addr(), grpcapp.WithClientTelemetry(telemetryOf(tp)))
	warmUp(t, c)
	exp.Reset()
	return s, c, exp
}

// warmUp makes the client describe the server's methods, which its first
// call does, so that the calls a test looks at are the only ones.
func warmUp(t *testing.T, c *grpcapp.Client) {
	t.Helper()
	_, err := grpcapp.Call[uuid.UUID](t.Context(), c.App(), "CreateNewOrder")
	require.NoError(t, err)
}

// spanOfKind returns the one span of that kind.
func spanOfKind(t *testing.T, spans tracetest.SpanStubs, kind trace.SpanKind) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, sp := range spans {
		if sp.SpanKind == kind {
			found = append(found, sp)
		}
	}
	require.Len(t, found, 1, "spans of kind %v: %v", kind, spans)
	return found[0]
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}

// keyPropagator carries a span context in one metadata key of its own,
// "x-span", as "<trace id>/<span id>", and nothing else.
type keyPropagator struct{}

func (keyPropagator) Inject(ctx context.Context, c propagation.TextMapCarrier) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		c.Set("x-span", sc.TraceID().String()+"/"+sc.SpanID().String())
	}
}

func (keyPropagator) Extract(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	tid, sid, ok := strings.Cut(c.Get("x-span"), "/")
	if !ok {
		return ctx
	}
	traceID, err1 := trace.TraceIDFromHex(tid)
	spanID, err2 := trace.SpanIDFromHex(sid)
	if err1 != nil || err2 != nil {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled, Remote: true}))
}

func (keyPropagator) Fields() []string { return []string{"x-span"} }

// The trace context travels with the propagator given: the server reads
// what the client's wrote, in the metadata key of its choosing.
func TestCallCustomPropagator(t *testing.T) {
	tp, exp := recordingProvider(t)
	tel := grpcapp.Telemetry{TracerProvider: tp, Propagator: keyPropagator{}}
	var seen []string
	s := startServer(t, newOrders(t), grpcapp.WithServerLogger(discard()), grpcapp.WithServerTelemetry(tel))
	c := connect(t, s.Addr(), grpcapp.WithClientTelemetry(tel), grpcapp.WithDialOptions(grpc.WithChainUnaryInterceptor(
		func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			md, _ := metadata.FromOutgoingContext(ctx)
			seen = append(seen, md.Get("x-span")...)
			seen = append(seen, md.Get("traceparent")...)
			return invoker(ctx, method, req, reply, cc, opts...)
		})))
	warmUp(t, c)
	exp.Reset()
	seen = nil
	_, err := grpcapp.Call[uuid.UUID](t.Context(), c.App(), "CreateNewOrder")
	require.NoError(t, err)

	spans := exp.GetSpans()
	client, server := spanOfKind(t, spans, trace.SpanKindClient), spanOfKind(t, spans, trace.SpanKindServer)
	assert.Equal(t, []string{client.SpanContext.TraceID().String() + "/" + client.SpanContext.SpanID().String()}, seen, "only the propagator's own key")
	assert.Equal(t, client.SpanContext.SpanID(), server.Parent.SpanID())
	assert.Equal(t, client.SpanContext.TraceID(), server.SpanContext.TraceID())
}

// Each RPC but the polled ones records one duration on each side, with the
// method, the status code and, on failure, error.type.
func TestCallDurations(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	tel := grpcapp.Telemetry{MeterProvider: mp}
	s := startServer(t, newOrders(t), grpcapp.WithServerLogger(discard()), grpcapp.WithServerTelemetry(tel))
	c := connect(t, s.Addr(), grpcapp.WithClientTelemetry(tel))
	_, err := c.Status(t.Context())
	require.NoError(t, err)
	warmUp(t, c)
	_, err = c.App().Call(t.Context(), "NoSuchMethod")
	require.Error(t, err)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(t.Context(), &rm))
	counts := map[string]uint64{}
	for _, sm := range rm.ScopeMetrics {
		assert.Equal(t, "github.com/eventsourcing-go/eventsourcing/grpcapp", sm.Scope.Name)
		for _, m := range sm.Metrics {
			assert.Equal(t, "s", m.Unit)
			h, ok := m.Data.(metricdata.Histogram[float64])
			require.True(t, ok, m.Name)
			for _, dp := range h.DataPoints {
				method, _ := dp.Attributes.Value("rpc.method")
				code, _ := dp.Attributes.Value("rpc.response.status_code")
				errType, _ := dp.Attributes.Value("error.type")
				system, _ := dp.Attributes.Value("rpc.system.name")
				assert.Equal(t, "grpc", system.AsString())
				assert.NotEqual(t, "eventsourcing_grpc.Application/Status", method.AsString(), "Status is polled")
				if method.AsString() != "eventsourcing_grpc.Application/Call" {
					continue // Describe
				}
				counts[m.Name+" "+method.AsString()+" "+code.AsString()+" "+errType.AsString()] += dp.Count
			}
		}
	}
	assert.Equal(t, map[string]uint64{
		"rpc.server.call.duration eventsourcing_grpc.Application/Call OK ":                         1,
		"rpc.client.call.duration eventsourcing_grpc.Application/Call OK ":                         1,
		"rpc.server.call.duration eventsourcing_grpc.Application/Call UNIMPLEMENTED UNIMPLEMENTED": 1,
		"rpc.client.call.duration eventsourcing_grpc.Application/Call UNIMPLEMENTED UNIMPLEMENTED": 1,
	}, counts)
}

// tracedRecorder is a recorder whose notifications carry a trace context,
// as a backend that keeps it in event metadata returns them.
type tracedRecorder struct {
	recorder.ApplicationRecorder
	traceParent string
}

func (r tracedRecorder) SelectNotifications(ctx context.Context, q recorder.NotificationQuery) ([]recorder.Notification, error) {
	ns, err := r.ApplicationRecorder.SelectNotifications(ctx, q)
	for i := range ns {
		ns[i].TraceParent = r.traceParent
	}
	return ns, err
}

func (r tracedRecorder) Subscribe(ctx context.Context, after recorder.Position, topics []string) (recorder.Subscription, error) {
	sub, err := r.ApplicationRecorder.Subscribe(ctx, after, topics)
	if err != nil {
		return nil, err
	}
	return tracedSubscription{sub, r.traceParent}, nil
}

type tracedSubscription struct {
	recorder.Subscription
	traceParent string
}

func (s tracedSubscription) Next(ctx context.Context) (recorder.Notification, error) {
	n, err := s.Subscription.Next(ctx)
	n.TraceParent = s.traceParent
	return n, err
}

// tracedApp serves an application through a tracedRecorder.
type tracedApp struct {
	grpcapp.Application
	rec recorder.ApplicationRecorder
}

func (a tracedApp) Recorder() recorder.ApplicationRecorder { return a.rec }

// A follower reading over gRPC gets each event's trace context, from pages
// and from the live stream alike.
func TestRemoteSourceTraceParent(t *testing.T) {
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	app := newOrders(t)
	s := startServer(t, tracedApp{app, tracedRecorder{app.Recorder(), tp}}, grpcapp.WithServerLogger(discard()))
	c := connect(t, s.Addr())
	src := grpcapp.NewRemoteSource(c)
	_, err := app.CreateNewOrder(t.Context())
	require.NoError(t, err)

	ns, err := src.SelectNotifications(t.Context(), recorder.NotificationQuery{Limit: 10})
	require.NoError(t, err)
	require.Len(t, ns, 1)
	assert.Equal(t, tp, ns[0].TraceParent)

	sub, err := src.Subscribe(t.Context(), recorder.Start(), nil)
	require.NoError(t, err)
	defer sub.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	n, err := sub.Next(ctx)
	require.NoError(t, err)
	assert.Equal(t, tp, n.TraceParent)

	// And the trace context parses as the W3C propagator reads it.
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": n.TraceParent}))
	assert.True(t, sc.IsValid())
}
