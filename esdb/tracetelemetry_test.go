package esdb_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/esdb"
	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/follow/followtest"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/telemetry"
)

// One trace from a save on EventStoreDB to the follower that processes the
// event: the processing span is the child of the save span, through the
// trace context in the event's metadata; the append span names the backend.
func TestTraceAcrossEventStoreDB(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	p := telemetry.Providers{TracerProvider: tp}
	up := followtest.NewApplication(t, eventsourcing.Options{Name: "Up", Types: followtest.Types(), Telemetry: p},
		map[string]string{"PERSISTENCE_MODULE": "eventstoredb", esdb.KeyURI: esdbtestURI(t)})

	ctx, cmd := tp.Tracer("test").Start(t.Context(), "command")
	item := new(followtest.Item)
	eventsourcing.Create(item, eventsourcing.NewID(), followtest.Wanted{Seq: 1})
	_, err := up.Save(ctx, item)
	require.NoError(t, err)
	cmd.End()

	var handled context.Context
	f, err := follow.New(follow.Config{
		Name: "Down", Upstream: "Up", Source: up.Recorder(), Mapper: up.Mapper(), Tracker: projection.NewMemoryView(), Telemetry: p,
		Handler: follow.HandlerFunc(func(ctx context.Context, _ eventsourcing.Event, _ recorder.Tracking) (bool, error) {
			handled = ctx
			return false, nil
		}),
	})
	require.NoError(t, err)
	n, err := f.CatchUp(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.NotNil(t, handled)

	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range sr.Ended() {
		byName[s.Name()] = s
	}
	save, process, insert := byName["save Up"], byName["process Up"], byName["insert_events Up"]
	require.NotNil(t, save)
	require.NotNil(t, process)
	require.NotNil(t, insert)
	assert.Equal(t, save.SpanContext().TraceID(), process.SpanContext().TraceID())
	assert.Equal(t, save.SpanContext().SpanID(), process.Parent().SpanID(), "the processing span is the save span's child")
	assert.True(t, process.Parent().IsRemote(), "its parent came from the event's metadata")
	system := ""
	for _, kv := range insert.Attributes() {
		if kv.Key == telemetry.KeyDBSystem {
			system = kv.Value.AsString()
		}
	}
	assert.Equal(t, "eventstoredb", system)
	st := f.Status(t.Context())
	assert.Equal(t, follow.Positions, st.LagUnit, "the wrapped recorder still says its ids are positions")
}
