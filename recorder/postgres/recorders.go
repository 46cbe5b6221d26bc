package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventsourcing-go/eventsourcing/internal/sqlrows"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// AggregateRecorder stores the events (or snapshots) of aggregates.
type AggregateRecorder struct {
	f     *Factory
	table string // qualified and quoted
	log   bool   // the table has notification ids: inserts go through the committer
	ids   bool   // return the notification ids
	// traced: the table keeps the trace context (the events table, when it
	// has the column; see tracecontext.go).
	traced bool
}

var _ recorder.AggregateRecorder = (*AggregateRecorder)(nil)

// idParam is how an originator id parameter is passed: as text, cast to the
// column's type by the server.
func (r *AggregateRecorder) idCast() string {
	if r.f.cfg.OriginatorIDType == "uuid" {
		return "::uuid"
	}
	return ""
}

// InsertEvents records a batch atomically; see recorder.AggregateRecorder.
// Saves to the events table are grouped with concurrent ones into shared
// transactions (see committer); snapshots and tracking alone are one
// statement each.
func (r *AggregateRecorder) InsertEvents(ctx context.Context, events []recorder.StoredEvent, opts ...recorder.InsertOption) ([]int64, error) {
	const op = "insert events"
	o := recorder.ApplyInsertOptions(opts)
	if r.f.closed.Load() {
		return nil, &recorder.Error{Kind: recorder.ErrConnectionUnavailable, Op: op, Err: errClosed}
	}
	var ids []int64
	var err error
	switch {
	case len(events) == 0 && o.Tracking == nil:
		ids = []int64{}
	case len(events) == 0:
		ids, err = []int64{}, r.f.upsertTracking(ctx, *o.Tracking)
	case !r.log:
		err = r.insertUnlogged(ctx, events, o.Tracking)
	case hasDuplicates(events):
		// Refused before it joins a group, where its unique violation would
		// cost the group a rollback to its savepoint.
		err = &recorder.Error{Kind: recorder.ErrIntegrity, Op: op, Err: errDuplicateInBatch}
	default:
		s := &save{ctx: ctx, events: events, track: o.Tracking}
		if err = r.f.committer.do(s); err == nil {
			ids = s.ids
		}
	}
	if err != nil {
		return nil, sqlrows.Conflict(wrap(ctx, op, err), events)
	}
	if !r.ids {
		return nil, nil
	}
	return ids, nil
}

// insertUnlogged inserts into a table without notification ids (snapshots):
// no lock and no ids to draw, so one autocommitted statement, atomic by itself.
func (r *AggregateRecorder) insertUnlogged(ctx context.Context, events []recorder.StoredEvent, t *recorder.Tracking) error {
	c, err := r.f.acquire(ctx, "insert events")
	if err != nil {
		return err
	}
	defer c.Release()
	tag, err := c.Exec(ctx, insertSQL(r.table, r.idCast(), false, t != nil, r.traced, r.f.tracking), insertArgs(events, t, r.traced)...)
	if err != nil {
		return err
	}
	if t != nil && tag.RowsAffected() == 0 {
		return sqlrows.TrackingNotAdvanced(*t)
	}
	if t != nil {
		r.f.signal.Notify()
	}
	return nil
}

var (
	errDuplicateInBatch = errors.New("the batch holds two events with the same originator id and version")
)

func hasDuplicates(events []recorder.StoredEvent) bool {
	if len(events) < 2 {
		return false
	}
	type key struct {
		id string
		v  int64
	}
	seen := make(map[key]struct{}, len(events))
	for _, e := range events {
		k := key{e.OriginatorID, e.OriginatorVersion}
		if _, dup := seen[k]; dup {
			return true
		}
		seen[k] = struct{}{}
	}
	return false
}

// insertSQL is the statement that inserts a batch of events, passed as arrays
// (insertArgs), into table.
//
// With log, ids are drawn as max+1, max+2... and returned: the caller holds
// the table lock, so no other insert runs meanwhile and they are exact, and
// unlike a sequence an insert that fails (a conflict) draws none, so the log
// has no gaps. max() is one step down the unique index; each statement sees
// the rows of the statements before it in its transaction, so the saves of a
// group get consecutive ids in the group's order.
//
// With tracking, the position is upserted by a data-modifying WITH that gates
// the insert: a position that does not advance writes neither it nor the
// events, and no statement fails, so a group needs no round trip to decide
// whether to go on; the caller tells by the rows inserted.
//
// With traced, the events' trace contexts are a fifth array, and an empty
// one is stored as NULL.
func insertSQL(table, idCast string, log, tracking, traced bool, trackingTable string) string {
	var b strings.Builder
	cols, vals, arrays, names := "", "", "", ""
	if traced {
		cols, vals, arrays, names = ", "+traceColumn, ", nullif(u.p, '')", ", $5::text[]", ", p"
	}
	gate := trackingGate(&b, tracking, traced, trackingTable)
	b.WriteString("INSERT INTO " + table)
	unnest := " FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bytea[]" + arrays + ")"
	if log {
		b.WriteString(" (originator_id, originator_version, topic, state, notification_id" + cols + ")" +
			" SELECT u.i" + idCast + ", u.v, u.t, u.s, m.id + u.o" + vals +
			unnest + " WITH ORDINALITY AS u(i, v, t, s" + names + ", o)," +
			" (SELECT coalesce(max(notification_id), 0) AS id FROM " + table + ") AS m" + gate +
			" RETURNING notification_id")
	} else {
		b.WriteString(" (originator_id, originator_version, topic, state" + cols + ")" +
			" SELECT u.i" + idCast + ", u.v, u.t, u.s" + vals +
			unnest + " AS u(i, v, t, s" + names + ")" + gate)
	}
	return b.String()
}

// insertOneSQL is insertSQL with log for a batch of one event, passed as
// scalars (insertOneArgs): the same row, id and gate, without building and
// unnesting four arrays, which is most of what a one-event save costs the
// server beyond a plain INSERT.
func insertOneSQL(table, idCast string, tracking, traced bool, trackingTable string) string {
	var b strings.Builder
	cols, vals := "", ""
	if traced {
		cols, vals = ", "+traceColumn, ", nullif($5::text, '')"
	}
	gate := trackingGate(&b, tracking, traced, trackingTable)
	b.WriteString("INSERT INTO " + table +
		" (originator_id, originator_version, topic, state, notification_id" + cols + ")" +
		" SELECT $1::text" + idCast + ", $2::bigint, $3::text, $4::bytea, m.id + 1" + vals +
		" FROM (SELECT coalesce(max(notification_id), 0) AS id FROM " + table + ") AS m" + gate +
		" RETURNING notification_id")
	return b.String()
}

// trackingGate writes, with tracking, the WITH that upserts the position
// ($5, $6, or $6, $7 after the trace contexts) and returns the WHERE that
// lets the insert run only when it advanced.
func trackingGate(b *strings.Builder, tracking, traced bool, trackingTable string) (where string) {
	if !tracking {
		return ""
	}
	params := "$5, $6"
	if traced {
		params = "$6, $7"
	}
	b.WriteString("WITH k AS (")
	b.WriteString(sqlrows.UpsertTrackingSQL(trackingTable, params))
	b.WriteString(" RETURNING 1) ")
	return " WHERE EXISTS (SELECT FROM k)"
}

// insertArgs are insertSQL's parameters: the events as four arrays (five
// with traced), then the tracking position, if any.
func insertArgs(events []recorder.StoredEvent, t *recorder.Tracking, traced bool) []any {
	oids := make([]string, len(events))
	versions := make([]int64, len(events))
	topics := make([]string, len(events))
	states := make([][]byte, len(events))
	for i, e := range events {
		oids[i], versions[i], topics[i], states[i] = e.OriginatorID, e.OriginatorVersion, e.Topic, e.State
	}
	args := make([]any, 0, 7)
	args = append(args, oids, versions, topics, states)
	if traced {
		parents := make([]string, len(events))
		for i, e := range events {
			parents[i] = e.TraceParent
		}
		args = append(args, parents)
	}
	if t != nil {
		args = append(args, t.ApplicationName, t.NotificationID)
	}
	return args
}

// insertOneArgs are insertOneSQL's parameters.
func insertOneArgs(e recorder.StoredEvent, t *recorder.Tracking, traced bool) []any {
	args := make([]any, 0, 7)
	args = append(args, e.OriginatorID, e.OriginatorVersion, e.Topic, e.State)
	if traced {
		args = append(args, e.TraceParent)
	}
	if t != nil {
		args = append(args, t.ApplicationName, t.NotificationID)
	}
	return args
}

// endTx ends a transaction that a failure left open (or aborted) before the
// connection goes back to the pool; a connection it cannot clean is closed,
// and the pool drops it.
func endTx(ctx context.Context, conn *pgx.Conn) {
	if conn.PgConn().TxStatus() == 'I' {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(rctx, "ROLLBACK"); err != nil {
		_ = conn.Close(rctx)
	}
}

// SelectEvents returns one originator's events; see recorder.EventQuery.
func (r *AggregateRecorder) SelectEvents(ctx context.Context, originatorID string, q recorder.EventQuery) ([]recorder.StoredEvent, error) {
	const op = "select events"
	var b strings.Builder
	b.WriteString("SELECT originator_version, topic, state" + r.traceSelect() + " FROM ")
	b.WriteString(r.table)
	b.WriteString(" WHERE originator_id = $1::text")
	b.WriteString(r.idCast())
	args := []any{originatorID}
	if after, ok := q.After.Value(); ok {
		args = append(args, after)
		fmt.Fprintf(&b, " AND originator_version > $%d", len(args))
	}
	if upTo, ok := q.UpTo.Value(); ok {
		args = append(args, upTo)
		fmt.Fprintf(&b, " AND originator_version <= $%d", len(args))
	}
	b.WriteString(" ORDER BY originator_version")
	if q.Desc {
		b.WriteString(" DESC")
	}
	if q.Limit > 0 {
		args = append(args, q.Limit)
		fmt.Fprintf(&b, " LIMIT $%d", len(args))
	}
	return query(ctx, r.f, op, b.String(), args, func(rows pgx.Rows) ([]recorder.StoredEvent, error) {
		return sqlrows.Events(rows, originatorID, r.traced)
	})
}

// query runs a select on a connection of the pool and reads its rows with
// scan (sqlrows.Events or sqlrows.Notifications).
func query[T any](ctx context.Context, f *Factory, op, sql string, args []any, scan func(pgx.Rows) ([]T, error)) ([]T, error) {
	c, err := f.acquire(ctx, op)
	if err != nil {
		return nil, err
	}
	defer c.Release()
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		return nil, wrap(ctx, op, err)
	}
	defer rows.Close()
	out, err := scan(rows)
	if err != nil {
		return nil, wrap(ctx, op, err)
	}
	return out, nil
}

// ApplicationRecorder stores events in the notification log.
type ApplicationRecorder struct {
	AggregateRecorder
}

var _ recorder.ApplicationRecorder = (*ApplicationRecorder)(nil)

// SelectNotifications returns notifications in id order; see recorder.NotificationQuery.
func (r *ApplicationRecorder) SelectNotifications(ctx context.Context, q recorder.NotificationQuery) ([]recorder.Notification, error) {
	const op = "select notifications"
	if q.Limit <= 0 {
		return nil, recorder.Errorf(recorder.ErrProgramming, op, "limit must be positive, got %d", q.Limit)
	}
	var b strings.Builder
	b.WriteString("SELECT notification_id, originator_id::text, originator_version, topic, state" + r.traceSelect() + " FROM ")
	b.WriteString(r.table)
	var args []any
	where := " WHERE "
	if start, ok := q.After.ID(); ok {
		args = append(args, start)
		if !q.Inclusive {
			fmt.Fprintf(&b, "%snotification_id > $%d", where, len(args))
		} else {
			fmt.Fprintf(&b, "%snotification_id >= $%d", where, len(args))
		}
		where = " AND "
	}
	if stop, ok := q.Stop.Value(); ok {
		args = append(args, stop)
		fmt.Fprintf(&b, "%snotification_id <= $%d", where, len(args))
		where = " AND "
	}
	if len(q.Topics) > 0 {
		args = append(args, q.Topics)
		fmt.Fprintf(&b, "%stopic = ANY($%d::text[])", where, len(args))
	}
	args = append(args, q.Limit)
	fmt.Fprintf(&b, " ORDER BY notification_id LIMIT $%d", len(args))
	return query(ctx, r.f, op, b.String(), args, func(rows pgx.Rows) ([]recorder.Notification, error) {
		return sqlrows.Notifications(rows, min(q.Limit, 1024), r.traced)
	})
}

// MaxNotificationID returns the last notification id.
func (r *ApplicationRecorder) MaxNotificationID(ctx context.Context) (int64, bool, error) {
	const op = "max notification id"
	c, err := r.f.acquire(ctx, op)
	if err != nil {
		return 0, false, err
	}
	defer c.Release()
	var id *int64
	if err := c.QueryRow(ctx, "SELECT max(notification_id) FROM "+r.table).Scan(&id); err != nil {
		return 0, false, wrap(ctx, op, err)
	}
	if id == nil {
		return 0, false, nil
	}
	return *id, true, nil
}

// Subscribe yields the notifications after the position; see recorder.ApplicationRecorder.
// It wakes on NOTIFY (the factory's listener), on this factory's commits, and
// every POSTGRES_POLL_INTERVAL.
func (r *ApplicationRecorder) Subscribe(ctx context.Context, after recorder.Position, topics []string) (recorder.Subscription, error) {
	if r.f.closed.Load() {
		return nil, &recorder.Error{Kind: recorder.ErrConnectionUnavailable, Op: "subscribe", Err: errClosed}
	}
	r.f.startListener()
	return recorder.NewPollingSubscription(r.SelectNotifications, r.f.signal, r.f.cfg.PollInterval, after, topics), nil
}

// HoldInsert is a test hook: it inserts events in a transaction that stays open
// (holding the table lock) until the returned function commits it (true) or
// rolls it back (false). It returns the ids the events will have. It takes the
// lock on its own connection, outside the committer, as another process would.
func (r *ApplicationRecorder) HoldInsert(ctx context.Context, events []recorder.StoredEvent) ([]int64, func(ctx context.Context, commit bool) error, error) {
	const op = "hold insert"
	if hasDuplicates(events) {
		return nil, nil, &recorder.Error{Kind: recorder.ErrIntegrity, Op: op, Err: errDuplicateInBatch}
	}
	c, err := r.f.acquire(ctx, op)
	if err != nil {
		return nil, nil, err
	}
	ids, err := r.holdInsert(ctx, c.Conn(), events)
	if err != nil {
		endTx(ctx, c.Conn())
		c.Release()
		return nil, nil, wrap(ctx, op, err)
	}
	var once sync.Once
	return ids, func(ctx context.Context, commit bool) error {
		err := fmt.Errorf("%s: already finished", op)
		once.Do(func() {
			defer c.Release()
			stmt := "ROLLBACK"
			if commit {
				stmt = "COMMIT"
			}
			_, err = c.Exec(ctx, stmt)
			err = wrap(ctx, op, err)
			if err == nil && commit {
				r.f.signal.Notify()
			}
		})
		return err
	}, nil
}

// holdInsert sends BEGIN, the lock, the insert and NOTIFY, and leaves the
// transaction open.
func (r *ApplicationRecorder) holdInsert(ctx context.Context, conn *pgx.Conn, events []recorder.StoredEvent) ([]int64, error) {
	f := r.f
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	if f.setLockTimeout != "" {
		b.Queue(f.setLockTimeout)
	}
	b.Queue(f.lockEvents)
	b.Queue(f.insertEvents, insertArgs(events, nil, f.traced)...)
	b.Queue(f.notify)
	br := conn.SendBatch(ctx, b)
	defer br.Close()
	for range len(b.QueuedQueries) - 2 {
		if _, err := br.Exec(); err != nil {
			return nil, err
		}
	}
	ids, err := readIDs(br, len(events))
	if err != nil {
		return nil, err
	}
	if _, err := br.Exec(); err != nil {
		return nil, err
	}
	if err := br.Close(); err != nil {
		return nil, err
	}
	if len(ids) != len(events) {
		return nil, recorder.Errorf(recorder.ErrInternal, "hold insert", "%d events inserted, %d ids returned", len(events), len(ids))
	}
	return ids, nil
}

// TrackingRecorder stores tracking positions, one row per upstream application.
type TrackingRecorder struct {
	f *Factory
}

var _ recorder.TrackingRecorder = (*TrackingRecorder)(nil)

// InsertTracking records a position; see recorder.TrackingRecorder.
func (r *TrackingRecorder) InsertTracking(ctx context.Context, t recorder.Tracking) error {
	return wrap(ctx, "insert tracking", r.f.upsertTracking(ctx, t))
}

// upsertTracking records a position in one autocommitted statement.
func (f *Factory) upsertTracking(ctx context.Context, t recorder.Tracking) error {
	c, err := f.acquire(ctx, "insert tracking")
	if err != nil {
		return err
	}
	defer c.Release()
	tag, err := c.Exec(ctx, sqlrows.UpsertTrackingSQL(f.tracking, "$1, $2"), t.ApplicationName, t.NotificationID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return sqlrows.TrackingNotAdvanced(t)
	}
	f.signal.Notify()
	return nil
}

// MaxTrackingID returns the application's recorded position.
func (r *TrackingRecorder) MaxTrackingID(ctx context.Context, applicationName string) (int64, bool, error) {
	const op = "max tracking id"
	c, err := r.f.acquire(ctx, op)
	if err != nil {
		return 0, false, err
	}
	defer c.Release()
	id, ok, err := sqlrows.ScanTracking(c.QueryRow(ctx, sqlrows.SelectTrackingSQL(r.f.tracking, "$1"), applicationName), pgx.ErrNoRows)
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
	return recorder.WaitTracking(ctx, r.HasTrackingID, r.f.signal, applicationName, notificationID, timeout)
}

// ProcessRecorder stores events and tracking positions atomically.
type ProcessRecorder struct {
	ApplicationRecorder
	TrackingRecorder
}

var _ recorder.ProcessRecorder = (*ProcessRecorder)(nil)

// HoldInsertEvents is the recordertest.Holder hook: HoldInsert with a commit
// function that returns the batch's ids.
func (r *ApplicationRecorder) HoldInsertEvents(ctx context.Context, events []recorder.StoredEvent) (func() ([]int64, error), error) {
	return sqlrows.HoldInsertEvents(ctx, events, r.HoldInsert)
}
