package grpcapp_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

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

// spanNamed returns the ended span of that name.
func spanNamed(spans tracetest.SpanStubs, name string) (tracetest.SpanStub, bool) {
	for _, s := range spans {
		if s.Name == name {
			return s, true
		}
	}
	return tracetest.SpanStub{}, false
}

// A command called through a client is one trace: the client's RPC span,
// the server's RPC span as its child, and the command's span (named by the
// application and method) as the server span's child. Polled RPCs (Ping,
// Status) get no span.
func TestCallSpans(t *testing.T) {
	tp, exp := recordingProvider(t)
	s := startServer(t, newOrders(t), grpcapp.WithServerLogger(discard()), grpcapp.WithServerTelemetry(telemetryOf(tp)))
	c := connect(t, s.Addr(), grpcapp.WithClientTelemetry(telemetryOf(tp)))
	_, err := c.Status(t.Context())
	require.NoError(t, err)
	exp.Reset()

	id, err := grpcapp.Call[uuid.UUID](t.Context(), c.App(), "CreateNewOrder")
	require.NoError(t, err)
	_, err = c.App().Call(t.Context(), "GetOrder", uuid.New())
	require.Error(t, err, "no such order")

	spans := exp.GetSpans()
	var client, server []tracetest.SpanStub
	for _, sp := range spans {
		switch sp.SpanKind {
		case trace.SpanKindClient:
			client = append(client, sp)
		case trace.SpanKindServer:
			server = append(server, sp)
		}
		assert.NotContains(t, []string{"eventsourcing_grpc.Application/Ping", "eventsourcing_grpc.Application/Status"}, sp.Name, "polled calls are not traced")
	}
	require.Len(t, client, 2, "%v", spans)
	require.Len(t, server, 2)
	cmd, ok := spanNamed(spans, "Orders.CreateNewOrder")
	require.True(t, ok, "a span per command: %v", spans)
	assert.Equal(t, "eventsourcing_grpc.Application/Call", server[0].Name)
	assert.Equal(t, client[0].SpanContext.TraceID(), cmd.SpanContext.TraceID(), "one trace from client to command")
	assert.Equal(t, server[0].SpanContext.SpanID(), cmd.Parent.SpanID())
	assert.Equal(t, client[0].SpanContext.SpanID(), server[0].Parent.SpanID())
	assert.Contains(t, cmd.Attributes, attribute.String("eventsourcing.method", "CreateNewOrder"))
	assert.Contains(t, cmd.Attributes, attribute.String("eventsourcing.application", "Orders"))
	_ = id

	q, ok := spanNamed(spans, "Orders.GetOrder")
	require.True(t, ok)
	assert.Equal(t, "Error", q.Status.Code.String(), "a failed query's span says so")
}

// Without providers (the globals, which do nothing unless set), calls
// work and nothing is recorded anywhere.
func TestCallWithoutTelemetry(t *testing.T) {
	s := startServer(t, newOrders(t), grpcapp.WithServerLogger(discard()))
	c := connect(t, s.Addr())
	_, err := grpcapp.Call[uuid.UUID](t.Context(), c.App(), "CreateNewOrder")
	require.NoError(t, err)
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

func (r tracedRecorder) Subscribe(ctx context.Context, after *int64, topics []string) (recorder.Subscription, error) {
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

	sub, err := src.Subscribe(t.Context(), nil, nil)
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
