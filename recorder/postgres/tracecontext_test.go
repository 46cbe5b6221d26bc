package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/postgres"
)

// traceParent returns a sampled W3C traceparent whose span id ends in n.
func traceParent(n int) string {
	return fmt.Sprintf("00-4bf92f3577b34da6a3ce929d0e0e4736-%016x-01", n+1)
}

type eventKey struct {
	id string
	v  int64
}

func openTraced(t *testing.T, env config.Env) *postgres.ProcessRecorder {
	t.Helper()
	f, err := postgres.Open(t.Context(), env)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	r, err := f.ProcessRecorder(t.Context())
	require.NoError(t, err)
	return r.(*postgres.ProcessRecorder)
}

// requireTraces checks that SelectEvents, SelectNotifications and Subscribe
// all give each event of want its trace context back.
func requireTraces(t *testing.T, r *postgres.ProcessRecorder, want map[eventKey]string) {
	t.Helper()
	ctx := t.Context()
	for k, tp := range want {
		events, err := r.SelectEvents(ctx, k.id, recorder.EventQuery{})
		require.NoError(t, err)
		found := false
		for _, e := range events {
			if e.OriginatorVersion == k.v {
				found = true
				assert.Equal(t, tp, e.TraceParent, "SelectEvents %v", k)
			}
		}
		assert.True(t, found, "SelectEvents %v", k)
	}
	ns, err := r.SelectNotifications(ctx, recorder.NotificationQuery{Limit: 1000})
	require.NoError(t, err)
	sub, err := r.Subscribe(ctx, recorder.Start(), nil)
	require.NoError(t, err)
	defer sub.Close()
	seen := 0
	for _, n := range ns {
		got, err := sub.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, n.ID, got.ID)
		k := eventKey{n.OriginatorID, n.OriginatorVersion}
		if tp, ok := want[k]; ok {
			seen++
			assert.Equal(t, tp, n.TraceParent, "SelectNotifications %v", k)
			assert.Equal(t, tp, got.TraceParent, "Subscribe %v", k)
		}
	}
	assert.Equal(t, len(want), seen, "notifications of the events")
}

// insertTraced records events through each of the recorder's insert
// statements (one event or a batch, with and without tracking, and a held
// insert), with trace contexts given, or empty when traced is false, and
// returns the trace contexts they should read back with.
func insertTraced(t *testing.T, r *postgres.ProcessRecorder, traced, kept bool) map[eventKey]string {
	t.Helper()
	ctx := t.Context()
	want := map[eventKey]string{}
	n := 0
	batch := func(size int) []recorder.StoredEvent {
		id := uuid.NewString()
		events := make([]recorder.StoredEvent, size)
		for i := range events {
			events[i] = recorder.StoredEvent{OriginatorID: id, OriginatorVersion: int64(i), Topic: "t", State: []byte("x")}
			if traced && i != 1 { // the second event of a batch has none
				events[i].TraceParent = traceParent(n)
			}
			n++
			if kept {
				want[eventKey{id, int64(i)}] = events[i].TraceParent
			} else {
				want[eventKey{id, int64(i)}] = ""
			}
		}
		return events
	}
	upstream, tracking := uuid.NewString(), 0
	track := func() recorder.InsertOption {
		tracking++
		return recorder.WithTracking(recorder.Tracking{ApplicationName: upstream, NotificationID: int64(tracking)})
	}
	for _, c := range []struct {
		name   string
		events []recorder.StoredEvent
		opts   []recorder.InsertOption
	}{
		{"one", batch(1), nil},
		{"one with tracking", batch(1), []recorder.InsertOption{track()}},
		{"batch", batch(3), nil},
		{"batch with tracking", batch(3), []recorder.InsertOption{track()}},
	} {
		_, err := r.InsertEvents(ctx, c.events, c.opts...)
		require.NoError(t, err, c.name)
	}
	commit, err := r.HoldInsertEvents(ctx, batch(2))
	require.NoError(t, err)
	_, err = commit()
	require.NoError(t, err)
	return want
}

func TestTraceParentKept(t *testing.T) {
	r := openTraced(t, testEnv(t, "traced"))
	requireTraces(t, r, insertTraced(t, r, true, true))
	requireTraces(t, r, insertTraced(t, r, false, true))
}

// An events table made before the trace context column gets it when tables
// are created; until then it works without trace context, and its old
// events read back without one.
func TestTraceColumnAddedToOldTables(t *testing.T) {
	env := testEnv(t, "old")
	schema, _ := env.Lookup("POSTGRES_SCHEMA")
	tables, err := postgres.TableNames("old")
	require.NoError(t, err)
	events := pgx.Identifier{schema, tables.Events}.Sanitize()
	adminExec(t, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize())
	adminExec(t, `CREATE TABLE `+events+` (
		originator_id uuid NOT NULL, originator_version bigint NOT NULL, topic text NOT NULL,
		state bytea, notification_id bigint NOT NULL UNIQUE,
		PRIMARY KEY (originator_id, originator_version))`)
	old := uuid.NewString()
	adminExec(t, "INSERT INTO "+events+" VALUES ($1, 0, 't', 'x', 1)", old)
	adminExec(t, "CREATE TABLE "+pgx.Identifier{schema, tables.Tracking}.Sanitize()+
		" (application_name text PRIMARY KEY, notification_id bigint NOT NULL)")
	oldEvents := map[eventKey]string{{old, 0}: ""}

	// Without CREATE_TABLE the table stays as it is, and works.
	r := openTraced(t, schemaEnv("old", schema, "CREATE_TABLE", "off"))
	requireTraces(t, r, oldEvents)
	untraced := insertTraced(t, r, true, false)
	requireTraces(t, r, untraced)
	require.False(t, hasTraceColumn(t, events))

	// With it, the column is added.
	r = openTraced(t, schemaEnv("old", schema))
	require.True(t, hasTraceColumn(t, events))
	requireTraces(t, r, oldEvents)
	requireTraces(t, r, untraced)
	requireTraces(t, r, insertTraced(t, r, true, true))
	// Opening again finds the column there.
	r = openTraced(t, schemaEnv("old", schema))
	requireTraces(t, r, insertTraced(t, r, true, true))
}

func hasTraceColumn(t *testing.T, table string) bool {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	conn, err := pgx.Connect(ctx, adminDSN())
	require.NoError(t, err)
	defer conn.Close(ctx)
	var has bool
	require.NoError(t, conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'trace_parent')", table).Scan(&has))
	return has
}
