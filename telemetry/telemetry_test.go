package telemetry_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/telemetry"
)

// Counter is the aggregate of the tests.
type Counter struct {
	es.Aggregate
	N int
}

type (
	Started     struct{}
	Incremented struct{}
)

func (c *Counter) Apply(data any) {
	if _, ok := data.(Incremented); ok {
		c.N++
	}
}

func newCounter() *Counter {
	c := new(Counter)
	es.Create(c, es.NewID(), Started{})
	return c
}

func counterTypes() *es.Types {
	types := es.NewTypes()
	es.MustRegister[Counter](types, "test:Counter")
	es.MustRegister[Started](types, "test:Counter.Started")
	es.MustRegister[Incremented](types, "test:Counter.Incremented")
	return types
}

func newApp(t testing.TB, name string, p telemetry.Providers, process bool) *es.Application {
	t.Helper()
	app, err := es.NewApplication(context.Background(), es.Options{
		Name: name, Types: counterTypes(), Lookup: es.NoEnvironment, Telemetry: p, Process: process})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, app.Close()) })
	return app
}

// upAndDown returns an upstream application and a process application that
// follows it, with its process recorder.
func upAndDown(t testing.TB, p telemetry.Providers) (up, down *es.Application, pr recorder.ProcessRecorder) {
	up = newApp(t, "Up", p, false)
	down = newApp(t, "Down", p, true)
	pr, _ = down.ProcessRecorder()
	return up, down, pr
}

func newTracer(t testing.TB) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, sr
}

// spanNamed returns the one ended span of that name.
func spanNamed(t *testing.T, sr *tracetest.SpanRecorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	require.Len(t, found, 1, "spans named %q", name)
	return found[0]
}

func requireChild(t *testing.T, parent, child sdktrace.ReadOnlySpan) {
	t.Helper()
	assert.Equal(t, parent.SpanContext().TraceID(), child.SpanContext().TraceID(), "%s in the trace of %s", child.Name(), parent.Name())
	assert.Equal(t, parent.SpanContext().SpanID(), child.Parent().SpanID(), "%s is a child of %s", child.Name(), parent.Name())
}

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func traceParentOf(s sdktrace.ReadOnlySpan) string {
	return telemetry.TraceParent(trace.ContextWithSpanContext(context.Background(), s.SpanContext()))
}

// A save inside a trace is a span of that trace, its append a span below
// it, and the stored events carry the save span's trace context.
func TestSaveSpanAndTraceParent(t *testing.T) {
	tp, sr := newTracer(t)
	app := newApp(t, "Counters", telemetry.Providers{TracerProvider: tp}, false)

	ctx, cmd := tp.Tracer("test").Start(context.Background(), "command")
	c := newCounter()
	_, err := app.Save(ctx, c)
	require.NoError(t, err)
	got, err := es.Get[Counter](ctx, app, c.ID())
	require.NoError(t, err)
	assert.Equal(t, c.ID(), got.ID())
	cmd.End()

	command, save, insert := spanNamed(t, sr, "command"), spanNamed(t, sr, "save Counters"), spanNamed(t, sr, "insert_events Counters")
	requireChild(t, command, save)
	requireChild(t, save, insert)
	get, sel := spanNamed(t, sr, "get Counters"), spanNamed(t, sr, "select_events Counters")
	requireChild(t, command, get)
	requireChild(t, get, sel)
	assert.Equal(t, "memory", attr(insert, telemetry.KeyDBSystem).AsString())
	assert.Equal(t, "insert_events", attr(insert, telemetry.KeyDBOperation).AsString())
	assert.Equal(t, c.ID().String(), attr(insert, telemetry.KeyOriginatorID).AsString())
	assert.Equal(t, trace.SpanKindClient, insert.SpanKind())

	stored, err := app.Recorder().SelectEvents(context.Background(), c.ID().String(), recorder.EventQuery{})
	require.NoError(t, err)
	require.Len(t, stored, 1)
	assert.Equal(t, traceParentOf(save), stored[0].TraceParent)
	ns, err := app.Recorder().SelectNotifications(context.Background(), recorder.NotificationQuery{Limit: 10})
	require.NoError(t, err)
	require.Len(t, ns, 1)
	assert.Equal(t, traceParentOf(save), ns[0].TraceParent)

	// Outside a trace: no spans, no trace context.
	before := len(sr.Ended())
	untraced := newCounter()
	_, err = app.Save(context.Background(), untraced)
	require.NoError(t, err)
	assert.Len(t, sr.Ended(), before)
	stored, err = app.Recorder().SelectEvents(context.Background(), untraced.ID().String(), recorder.EventQuery{})
	require.NoError(t, err)
	assert.Empty(t, stored[0].TraceParent)
}

// A follower processes an upstream event in a span that is the child of
// the upstream's save span, and the process application's own save inside
// the handler continues the same trace.
func TestFollowerContinuesTheTrace(t *testing.T) {
	tp, sr := newTracer(t)
	p := telemetry.Providers{TracerProvider: tp}
	up, down, pr := upAndDown(t, p)
	var saved *Counter
	f, err := follow.New(follow.Config{
		Name: "Down", Upstream: up.Name(), Source: up.Recorder(), Mapper: up.Mapper(), Tracker: pr, Telemetry: p,
		Handler: follow.HandlerFunc(func(ctx context.Context, e es.Event, tr recorder.Tracking) (bool, error) {
			saved = newCounter()
			_, err := down.SaveWithTracking(ctx, tr, saved)
			return true, err
		}),
	})
	require.NoError(t, err)

	ctx, cmd := tp.Tracer("test").Start(context.Background(), "command")
	_, err = up.Save(ctx, newCounter())
	require.NoError(t, err)
	cmd.End()
	n, err := f.CatchUp(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n)

	upSave, process := spanNamed(t, sr, "save Up"), spanNamed(t, sr, "process Up")
	downSave, downInsert := spanNamed(t, sr, "save Down"), spanNamed(t, sr, "insert_events Down")
	requireChild(t, upSave, process)
	requireChild(t, process, downSave)
	requireChild(t, downSave, downInsert)
	assert.Equal(t, trace.SpanKindConsumer, process.SpanKind())
	assert.Equal(t, "Down", attr(process, telemetry.KeyFollower).AsString())
	assert.Equal(t, "Up", attr(process, telemetry.KeyUpstream).AsString())
	assert.Equal(t, "applied", attr(process, telemetry.KeyOutcome).AsString())

	stored, err := down.Recorder().SelectEvents(context.Background(), saved.ID().String(), recorder.EventQuery{})
	require.NoError(t, err)
	require.Len(t, stored, 1)
	assert.Equal(t, traceParentOf(downSave), stored[0].TraceParent, "the downstream event carries the trace on")
}
