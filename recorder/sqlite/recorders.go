package sqlite

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"time"

	"github.com/eventsourcing-go/eventsourcing/internal/sqlrows"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// AggregateRecorder stores the events (or snapshots) of aggregates.
type AggregateRecorder struct {
	db    *database
	table string
	ids   bool // the table is the notification log: return the ids
}

var _ recorder.AggregateRecorder = (*AggregateRecorder)(nil)

// InsertEvents records a batch atomically; see recorder.AggregateRecorder.
func (r *AggregateRecorder) InsertEvents(ctx context.Context, events []recorder.StoredEvent, opts ...recorder.InsertOption) ([]int64, error) {
	const op = "insert events"
	if err := r.db.check(op); err != nil {
		return nil, err
	}
	o := recorder.ApplyInsertOptions(opts)
	if len(events) == 0 && o.Tracking == nil {
		if r.ids {
			return []int64{}, nil
		}
		return nil, nil
	}
	w, err := r.prepare(ctx, o.Tracking != nil)
	if err != nil {
		return nil, wrap(ctx, op, err)
	}
	var ids []int64
	err = r.db.writer.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		ids, err = r.insert(ctx, tx, w, events, o.Tracking)
		return err
	}, op)
	if err != nil {
		return nil, sqlrows.Conflict(err, events)
	}
	return ids, nil
}

// writeStmts are the prepared statements of an insert. They are prepared
// before the write is queued: the writer's one connection is busy inside the
// transaction.
type writeStmts struct {
	insert, tracking *sql.Stmt
}

func (r *AggregateRecorder) prepare(ctx context.Context, tracking bool) (w writeStmts, err error) {
	w.insert, err = r.db.wstmt(ctx, r.insertSQL())
	if err == nil && tracking {
		w.tracking, err = r.db.trackingStmt(ctx)
	}
	return w, err
}

// insert writes the tracking position (if any) and the events in tx.
func (r *AggregateRecorder) insert(ctx context.Context, tx *sql.Tx, w writeStmts, events []recorder.StoredEvent, t *recorder.Tracking) ([]int64, error) {
	if t != nil {
		if err := insertTracking(ctx, tx, w.tracking, *t); err != nil {
			return nil, err
		}
	}
	var ids []int64
	if r.ids {
		ids = make([]int64, 0, len(events))
	}
	if len(events) == 0 {
		return ids, nil
	}
	stmt := tx.StmtContext(ctx, w.insert)
	defer stmt.Close()
	for _, e := range events {
		res, err := r.execInsert(ctx, stmt, e)
		if err != nil {
			return nil, err
		}
		if r.ids {
			id, err := res.LastInsertId()
			if err != nil {
				return nil, err
			}
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// SelectEvents returns one originator's events; see recorder.EventQuery.
func (r *AggregateRecorder) SelectEvents(ctx context.Context, originatorID string, q recorder.EventQuery) ([]recorder.StoredEvent, error) {
	const op = "select events"
	if err := r.db.check(op); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("SELECT originator_version, topic, state" + r.traceSelect() + " FROM ")
	b.WriteString(r.table)
	b.WriteString(" WHERE originator_id = ?")
	args := []any{originatorID}
	if after, ok := q.After.Value(); ok {
		b.WriteString(" AND originator_version > ?")
		args = append(args, after)
	}
	if upTo, ok := q.UpTo.Value(); ok {
		b.WriteString(" AND originator_version <= ?")
		args = append(args, upTo)
	}
	b.WriteString(" ORDER BY originator_version")
	if q.Desc {
		b.WriteString(" DESC")
	}
	if q.Limit > 0 {
		b.WriteString(" LIMIT ?")
		args = append(args, q.Limit)
	}
	stmt, err := r.db.stmt(ctx, b.String())
	if err != nil {
		return nil, wrap(ctx, op, err)
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, wrap(ctx, op, err)
	}
	defer rows.Close()
	events, err := sqlrows.Events(rows, originatorID, r.traced())
	if err != nil {
		return nil, wrap(ctx, op, err)
	}
	return events, nil
}

// ApplicationRecorder stores events in the notification log.
type ApplicationRecorder struct {
	AggregateRecorder
}

var _ recorder.ApplicationRecorder = (*ApplicationRecorder)(nil)

// MaxTopics is the most topics a notification filter may name (each is an
// SQL parameter, and SQLite allows 32,766 in one statement).
const MaxTopics = 10000

// SelectNotifications returns notifications in id order; see
// recorder.NotificationQuery. A filter of more than MaxTopics topics fails
// with recorder.ErrProgramming.
func (r *ApplicationRecorder) SelectNotifications(ctx context.Context, q recorder.NotificationQuery) ([]recorder.Notification, error) {
	const op = "select notifications"
	if err := r.db.check(op); err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		return nil, recorder.Errorf(recorder.ErrProgramming, op, "limit must be positive, got %d", q.Limit)
	}
	if len(q.Topics) > MaxTopics {
		return nil, recorder.Errorf(recorder.ErrProgramming, op, "at most %d topics in a filter, got %d", MaxTopics, len(q.Topics))
	}
	var b strings.Builder
	b.WriteString("SELECT id, originator_id, originator_version, topic, state" + r.traceSelect() + " FROM ")
	b.WriteString(r.table)
	args := make([]any, 0, 3+len(q.Topics))
	where := " WHERE "
	if start, ok := q.After.ID(); ok {
		b.WriteString(where)
		if !q.Inclusive {
			b.WriteString("id > ?")
		} else {
			b.WriteString("id >= ?")
		}
		args = append(args, start)
		where = " AND "
	}
	if stop, ok := q.Stop.Value(); ok {
		b.WriteString(where)
		b.WriteString("id <= ?")
		args = append(args, stop)
		where = " AND "
	}
	if len(q.Topics) > 0 {
		b.WriteString(where)
		b.WriteString("topic IN (?")
		b.WriteString(strings.Repeat(", ?", len(q.Topics)-1))
		b.WriteString(")")
		for _, t := range q.Topics {
			args = append(args, t)
		}
	}
	b.WriteString(" ORDER BY id LIMIT ?")
	args = append(args, q.Limit)
	query := b.String()
	var (
		rows *sql.Rows
		err  error
	)
	if len(q.Topics) > 8 {
		// Do not fill the statement cache with one entry per filter size.
		rows, err = r.db.rdb.QueryContext(ctx, query, args...)
	} else {
		var stmt *sql.Stmt
		if stmt, err = r.db.stmt(ctx, query); err == nil {
			rows, err = stmt.QueryContext(ctx, args...)
		}
	}
	if err != nil {
		return nil, wrap(ctx, op, err)
	}
	defer rows.Close()
	ns, err := sqlrows.Notifications(rows, min(q.Limit, 1024), r.traced())
	if err != nil {
		return nil, wrap(ctx, op, err)
	}
	return ns, nil
}

// MaxNotificationID returns the last notification id.
func (r *ApplicationRecorder) MaxNotificationID(ctx context.Context) (int64, bool, error) {
	const op = "max notification id"
	if err := r.db.check(op); err != nil {
		return 0, false, err
	}
	stmt, err := r.db.stmt(ctx, "SELECT MAX(id) FROM "+r.table)
	if err != nil {
		return 0, false, wrap(ctx, op, err)
	}
	var id sql.NullInt64
	if err := stmt.QueryRowContext(ctx).Scan(&id); err != nil {
		return 0, false, wrap(ctx, op, err)
	}
	return id.Int64, id.Valid, nil
}

// Subscribe yields the notifications after the position; see recorder.ApplicationRecorder.
// A caught-up subscription wakes on this process's commits and polls for other
// processes' every SQLITE_POLL_INTERVAL.
func (r *ApplicationRecorder) Subscribe(ctx context.Context, after recorder.Position, topics []string) (recorder.Subscription, error) {
	if err := r.db.check("subscribe"); err != nil {
		return nil, err
	}
	if len(topics) > MaxTopics {
		return nil, recorder.Errorf(recorder.ErrProgramming, "subscribe", "at most %d topics in a filter, got %d", MaxTopics, len(topics))
	}
	return recorder.NewPollingSubscription(r.SelectNotifications, r.db.signal, r.db.cfg.PollInterval, after, topics), nil
}

// HoldInsert is a test hook: it inserts events in a transaction that stays open
// (holding the write lock) until the returned function commits it (true) or
// rolls it back (false). It returns the ids the events will have.
func (r *ApplicationRecorder) HoldInsert(ctx context.Context, events []recorder.StoredEvent) ([]int64, func(ctx context.Context, commit bool) error, error) {
	const op = "hold insert"
	if err := r.db.check(op); err != nil {
		return nil, nil, err
	}
	w, err := r.prepare(ctx, false)
	if err != nil {
		return nil, nil, wrap(ctx, op, err)
	}
	var ids []int64
	finish, err := r.db.writer.hold(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		ids, err = r.insert(ctx, tx, w, events, nil)
		return err
	}, op)
	if err != nil {
		return nil, nil, err
	}
	return ids, finish, nil
}

// TrackingRecorder stores tracking positions, one row per upstream application.
type TrackingRecorder struct {
	db *database
}

var _ recorder.TrackingRecorder = (*TrackingRecorder)(nil)

// trackingStmt is the prepared upsert of the tracking table.
func (d *database) trackingStmt(ctx context.Context) (*sql.Stmt, error) {
	return d.wstmt(ctx, sqlrows.UpsertTrackingSQL(TrackingTable, "?, ?"))
}

// insertTracking moves the application's position forward, or fails with an
// integrity error when it would not advance.
func insertTracking(ctx context.Context, tx *sql.Tx, prepared *sql.Stmt, t recorder.Tracking) error {
	res, err := tx.StmtContext(ctx, prepared).ExecContext(ctx, t.ApplicationName, t.NotificationID)
	if err != nil {
		return err
	}
	return sqlrows.Upserted(res, t)
}

// InsertTracking records a position; see recorder.TrackingRecorder.
func (r *TrackingRecorder) InsertTracking(ctx context.Context, t recorder.Tracking) error {
	const op = "insert tracking"
	if err := r.db.check(op); err != nil {
		return err
	}
	stmt, err := r.db.trackingStmt(ctx)
	if err != nil {
		return wrap(ctx, op, err)
	}
	return r.db.writer.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return insertTracking(ctx, tx, stmt, t)
	}, op)
}

// MaxTrackingID returns the application's recorded position.
func (r *TrackingRecorder) MaxTrackingID(ctx context.Context, applicationName string) (int64, bool, error) {
	const op = "max tracking id"
	if err := r.db.check(op); err != nil {
		return 0, false, err
	}
	stmt, err := r.db.stmt(ctx, sqlrows.SelectTrackingSQL(TrackingTable, "?"))
	if err != nil {
		return 0, false, wrap(ctx, op, err)
	}
	id, ok, err := sqlrows.ScanTracking(stmt.QueryRowContext(ctx, applicationName), sql.ErrNoRows)
	if err != nil {
		return 0, false, wrap(ctx, op, err)
	}
	return id, ok, nil
}

// HasTrackingID reports whether the position has reached notificationID.
func (r *TrackingRecorder) HasTrackingID(ctx context.Context, applicationName string, notificationID int64) (bool, error) {
	return recorder.HasTrackingID(ctx, r.MaxTrackingID, applicationName, notificationID)
}

// Wait returns when the position has reached notificationID; see recorder.WaitFor.
func (r *TrackingRecorder) Wait(ctx context.Context, applicationName string, notificationID int64, timeout time.Duration) error {
	return recorder.WaitTracking(ctx, r.HasTrackingID, r.db.signal, applicationName, notificationID, timeout)
}

// ProcessRecorder stores events and tracking positions atomically.
type ProcessRecorder struct {
	ApplicationRecorder
	TrackingRecorder
}

var _ recorder.ProcessRecorder = (*ProcessRecorder)(nil)

// String names the database, for logs.
func (f *Factory) String() string { return "sqlite(" + strconv.Quote(f.db.cfg.DBName) + ")" }

// HoldInsertEvents is the recordertest.Holder hook: HoldInsert with a commit
// function that returns the batch's ids.
func (r *ApplicationRecorder) HoldInsertEvents(ctx context.Context, events []recorder.StoredEvent) (func() ([]int64, error), error) {
	return sqlrows.HoldInsertEvents(ctx, events, r.HoldInsert)
}
