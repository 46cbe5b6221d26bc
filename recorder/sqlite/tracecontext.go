package sqlite

import (
	"context"
	"database/sql"
	"strings"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// The W3C trace context an event was recorded with
// (recorder.StoredEvent.TraceParent) is kept in the nullable column
// trace_parent of the events table, so that a follower of this database
// continues the trace of the save that recorded an event. Tables made
// before the column existed get it when the factory creates tables
// (CREATE_TABLE, the default): ALTER TABLE ... ADD COLUMN, which SQLite does
// without rewriting the table. A table without the column (made elsewhere,
// CREATE_TABLE off) still works: its events carry no trace context.

const traceColumn = "trace_parent"

// addTraceColumn adds the trace context column to the events table when it
// lacks it. Another process doing the same at once is not an error.
func addTraceColumn(ctx context.Context, tx *sql.Tx) error {
	has, err := hasColumn(ctx, tx, EventsTable, traceColumn)
	if err != nil || has {
		return err
	}
	_, err = tx.ExecContext(ctx, "ALTER TABLE "+EventsTable+" ADD COLUMN "+traceColumn+" TEXT")
	if err != nil && strings.Contains(err.Error(), "duplicate column") {
		return nil
	}
	return err
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func hasColumn(ctx context.Context, q queryer, table, column string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?", table, column).Scan(&n)
	return n > 0, err
}

// detectTraceColumns records which tables hold the trace context column.
func (d *database) detectTraceColumns(ctx context.Context) error {
	d.traced = map[string]bool{}
	for _, table := range []string{EventsTable, SnapshotsTable} {
		has, err := hasColumn(ctx, d.rdb, table, traceColumn)
		if err != nil {
			return recorder.Errorf(recorder.ErrOperational, "open sqlite", "read the columns of %s: %w", table, err)
		}
		d.traced[table] = has
	}
	return nil
}

// traced reports whether the recorder's table keeps the trace context.
func (r *AggregateRecorder) traced() bool { return r.db.traced[r.table] }

// insertSQL is the statement that inserts one event.
func (r *AggregateRecorder) insertSQL() string {
	if r.traced() {
		return "INSERT INTO " + r.table + " (originator_id, originator_version, topic, state, " + traceColumn + ") VALUES (?, ?, ?, ?, ?)"
	}
	return "INSERT INTO " + r.table + " (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)"
}

// execInsert inserts one event with the statement of insertSQL.
func (r *AggregateRecorder) execInsert(ctx context.Context, stmt *sql.Stmt, e recorder.StoredEvent) (sql.Result, error) {
	if r.traced() {
		var tp any // NULL when the event carries none
		if e.TraceParent != "" {
			tp = e.TraceParent
		}
		return stmt.ExecContext(ctx, e.OriginatorID, e.OriginatorVersion, e.Topic, e.State, tp)
	}
	return stmt.ExecContext(ctx, e.OriginatorID, e.OriginatorVersion, e.Topic, e.State)
}

// traceSelect is the column that reads the trace context after the others
// (” for none, so that it scans into a string).
func (r *AggregateRecorder) traceSelect() string {
	if r.traced() {
		return ", COALESCE(" + traceColumn + ", '')"
	}
	return ""
}
