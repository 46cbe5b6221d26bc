package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The W3C trace context an event was recorded with
// (recorder.StoredEvent.TraceParent) is kept in the nullable text column
// trace_parent of the events table, so that a follower of this database
// continues the trace of the save that recorded an event. An empty trace
// context is stored as NULL, and NULL reads back as "".
//
// Tables made before the column existed get it when the factory creates
// tables (CREATE_TABLE, the default): ALTER TABLE ... ADD COLUMN, which for a
// nullable column without a default changes only the catalogue, not the
// rows. It is run only when the column is missing, since it waits for the
// table's other users. A table without the column (CREATE_TABLE off) still
// works: its events carry no trace context.

const traceColumn = "trace_parent"

// hasTraceColumnSQL reports whether the table named by $1 (qualified and
// quoted) has the trace context column; false when there is no such table.
const hasTraceColumnSQL = "SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute" +
	" WHERE attrelid = to_regclass($1) AND attname = '" + traceColumn + "' AND NOT attisdropped)"

// hasTraceColumn reports whether the events table keeps the trace context.
func (f *Factory) hasTraceColumn(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (bool, error) {
	var has bool
	err := q.QueryRow(ctx, hasTraceColumnSQL, f.events).Scan(&has)
	return has, err
}

// addTraceColumn adds the trace context column to the events table, in the
// transaction that creates the tables, when the table lacks it.
func (f *Factory) addTraceColumn(ctx context.Context, tx pgx.Tx) error {
	has, err := f.hasTraceColumn(ctx, tx)
	if err != nil || has {
		return err
	}
	_, err = tx.Exec(ctx, "ALTER TABLE "+f.events+" ADD COLUMN IF NOT EXISTS "+traceColumn+" text")
	if err != nil {
		return fmt.Errorf("add the column %s to %s (as the table's owner: ALTER TABLE %s ADD COLUMN %s text; or set %s off to use the table without trace context): %w",
			traceColumn, f.events, f.events, traceColumn, KeyCreateTable, err)
	}
	return nil
}

// detectTraceColumn sets whether the events table keeps the trace context;
// it is also the check that the server is reachable.
func (f *Factory) detectTraceColumn(ctx context.Context) error {
	const op = "open postgres"
	c, err := f.acquire(ctx, op)
	if err != nil {
		return err
	}
	defer c.Release()
	f.traced, err = f.hasTraceColumn(ctx, c)
	return wrap(ctx, op, err)
}

// traceSelect is the column that reads the trace context after the others
// ("" for none, so that it scans into a string).
func (r *AggregateRecorder) traceSelect() string {
	if r.traced {
		return ", coalesce(" + traceColumn + ", '')"
	}
	return ""
}
