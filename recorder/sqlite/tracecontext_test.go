package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/sqlite"
)

const sampledTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func openTraced(t *testing.T, path string, createTable bool) recorder.ProcessRecorder {
	t.Helper()
	cfg := sqlite.DefaultConfig(path)
	cfg.CreateTable = createTable
	f, err := sqlite.OpenConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	r, err := f.ProcessRecorder(t.Context())
	require.NoError(t, err)
	return r
}

// requireTrace checks that every read gives the event's trace context back.
func requireTrace(t *testing.T, r recorder.ApplicationRecorder, id, want string) {
	t.Helper()
	ctx := t.Context()
	events, err := r.SelectEvents(ctx, id, recorder.EventQuery{})
	require.NoError(t, err)
	require.Len(t, events, 1)
	assert.Equal(t, want, events[0].TraceParent, "SelectEvents")
	ns, err := r.SelectNotifications(ctx, recorder.NotificationQuery{Limit: 100})
	require.NoError(t, err)
	sub, err := r.Subscribe(ctx, recorder.Start(), nil)
	require.NoError(t, err)
	defer sub.Close()
	for _, n := range ns {
		got, err := sub.Next(ctx)
		require.NoError(t, err)
		if n.OriginatorID == id {
			assert.Equal(t, want, n.TraceParent, "SelectNotifications")
			assert.Equal(t, want, got.TraceParent, "Subscribe")
		}
	}
}

func insert(t *testing.T, r recorder.ApplicationRecorder, tp string) string {
	t.Helper()
	id := uuid.NewString()
	_, err := r.InsertEvents(t.Context(), []recorder.StoredEvent{{OriginatorID: id, Topic: "t", State: []byte("x"), TraceParent: tp}})
	require.NoError(t, err)
	return id
}

func TestTraceParentKept(t *testing.T) {
	r := openTraced(t, filepath.Join(t.TempDir(), "db"), true)
	requireTrace(t, r, insert(t, r, sampledTrace), sampledTrace)
	requireTrace(t, r, insert(t, r, ""), "")
}

// A database made before the trace context column gets it when tables are
// created, and its old events read back without a trace context.
func TestTraceColumnAddedToOldTables(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	raw := openRaw(t, path)
	_, err := raw.ExecContext(context.Background(), `CREATE TABLE stored_events (
		id INTEGER PRIMARY KEY, originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL,
		topic TEXT NOT NULL, state BLOB, UNIQUE (originator_id, originator_version))`)
	require.NoError(t, err)
	old := uuid.NewString()
	_, err = raw.ExecContext(context.Background(), `INSERT INTO stored_events (originator_id, originator_version, topic, state) VALUES (?, 0, 't', x'00')`, old)
	require.NoError(t, err)
	require.NoError(t, raw.Close())

	// Without CREATE_TABLE the table stays as it is, and works.
	r := openTraced(t, path, false)
	requireTrace(t, r, old, "")
	requireTrace(t, r, insert(t, r, sampledTrace), "")

	r = openTraced(t, path, true)
	requireTrace(t, r, old, "")
	requireTrace(t, r, insert(t, r, sampledTrace), sampledTrace)
	// Opening again finds the column there.
	r = openTraced(t, path, true)
	requireTrace(t, r, insert(t, r, sampledTrace), sampledTrace)
}
