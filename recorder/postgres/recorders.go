package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// AggregateRecorder stores the events (or snapshots) of aggregates.
type AggregateRecorder struct {
	f     *Factory
	table string // qualified and quoted
	log   bool   // the table has notification ids: inserts take the table lock
	ids   bool   // return the notification ids
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
func (r *AggregateRecorder) InsertEvents(ctx context.Context, events []recorder.StoredEvent, opts ...recorder.InsertOption) ([]int64, error) {
	const op = "insert events"
	o := recorder.ApplyInsertOptions(opts)
	if len(events) == 0 && o.Tracking == nil {
		if r.f.closed.Load() {
			return nil, &recorder.Error{Kind: recorder.ErrConnectionUnavailable, Op: op, Err: errClosed}
		}
		if r.ids {
			return []int64{}, nil
		}
		return nil, nil
	}
	c, err := r.f.acquire(ctx, op)
	if err != nil {
		return nil, err
	}
	defer c.Release()
	ids, err := r.insert(ctx, c, events, o.Tracking, false)
	if err != nil {
		return nil, conflict(wrap(ctx, op, err), events)
	}
	if r.log || o.Tracking != nil {
		r.f.signal.Notify()
	}
	if !r.ids {
		return nil, nil
	}
	return ids, nil
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

// errTrackingNotAdvanced is the cause of a tracking position that does not advance.
var errTrackingNotAdvanced = errors.New("notification id does not advance the recorded position")

// insert writes the tracking position (if any) and the events in one
// transaction, sent as one pipelined batch: BEGIN, the tracking upsert, the
// table lock, the insert, NOTIFY and COMMIT. With tracking, COMMIT waits for
// the upsert's row count (a position that does not advance writes nothing, and
// then everything is rolled back); with hold, the transaction is left open.
func (r *AggregateRecorder) insert(ctx context.Context, c *pgxpool.Conn, events []recorder.StoredEvent, t *recorder.Tracking, hold bool) (ids []int64, err error) {
	if r.log && hasDuplicates(events) {
		// Refused before it draws ids, which a unique violation would waste.
		return nil, &recorder.Error{Kind: recorder.ErrIntegrity, Op: "insert events", Err: errDuplicateInBatch}
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	if t != nil {
		b.Queue("INSERT INTO "+r.f.tracking+" AS t (application_name, notification_id) VALUES ($1, $2)"+
			" ON CONFLICT (application_name) DO UPDATE SET notification_id = EXCLUDED.notification_id"+
			" WHERE t.notification_id < EXCLUDED.notification_id", t.ApplicationName, t.NotificationID)
	}
	if len(events) > 0 {
		if r.log {
			if lt := r.f.cfg.LockTimeout; lt > 0 {
				b.Queue(fmt.Sprintf("SET LOCAL lock_timeout = '%dms'", lt.Milliseconds()))
			}
			b.Queue("LOCK TABLE " + r.table + " IN EXCLUSIVE MODE")
		}
		oids := make([]string, len(events))
		versions := make([]int64, len(events))
		topics := make([]string, len(events))
		states := make([][]byte, len(events))
		for i, e := range events {
			oids[i], versions[i], topics[i], states[i] = e.OriginatorID, e.OriginatorVersion, e.Topic, e.State
		}
		var q string
		if r.log {
			// Ids are drawn under the table lock as max+1, max+2...: no other
			// insert runs meanwhile, so they are exact, and unlike a sequence
			// an insert that fails (a conflict) draws none, so the log has no
			// gaps. max() is one step down the unique index.
			q = "INSERT INTO " + r.table + " (originator_id, originator_version, topic, state, notification_id)" +
				" SELECT u.i" + r.idCast() + ", u.v, u.t, u.s, m.id + u.o" +
				" FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bytea[]) WITH ORDINALITY AS u(i, v, t, s, o)," +
				" (SELECT coalesce(max(notification_id), 0) AS id FROM " + r.table + ") AS m" +
				" RETURNING notification_id"
		} else {
			q = "INSERT INTO " + r.table + " (originator_id, originator_version, topic, state)" +
				" SELECT u.i" + r.idCast() + ", u.v, u.t, u.s" +
				" FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bytea[]) AS u(i, v, t, s)"
		}
		b.Queue(q, oids, versions, topics, states)
		if r.log {
			b.Queue("NOTIFY " + r.f.channel)
		}
	}
	commit := t == nil && !hold
	if commit {
		b.Queue("COMMIT")
	}

	conn := c.Conn()
	defer func() {
		if err != nil && conn.PgConn().TxStatus() != 'I' {
			// A failed batch leaves the transaction open (aborted): end it
			// before the connection goes back to the pool.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if _, rerr := conn.Exec(rctx, "ROLLBACK"); rerr != nil {
				_ = conn.Close(rctx) // the pool drops closed connections
			}
		}
	}()
	advanced, ids, err := readBatch(conn.SendBatch(ctx, b), t != nil, len(events) > 0 && r.log, len(events))
	if err != nil {
		return nil, err
	}
	if r.log && len(ids) != len(events) {
		return nil, recorder.Errorf(recorder.ErrInternal, "insert events", "%d events inserted, %d ids returned", len(events), len(ids))
	}
	if t != nil && !advanced {
		return nil, &recorder.Error{Kind: recorder.ErrIntegrity, Op: "insert tracking",
			Err: fmt.Errorf("application %q, notification id %d: %w", t.ApplicationName, t.NotificationID, errTrackingNotAdvanced)}
	}
	if t != nil && !hold {
		if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// readBatch reads the results of insert's batch in order.
func readBatch(br pgx.BatchResults, tracking, returning bool, n int) (advanced bool, ids []int64, err error) {
	defer func() {
		if cerr := br.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err = br.Exec(); err != nil { // BEGIN
		return false, nil, err
	}
	if tracking {
		tag, err := br.Exec()
		if err != nil {
			return false, nil, err
		}
		advanced = tag.RowsAffected() > 0
	}
	// The rest: SET LOCAL, LOCK, INSERT (RETURNING), NOTIFY, COMMIT, as queued;
	// Close reads the ones not read here and returns the first error.
	if returning {
		for {
			// Skip the statements before the INSERT.
			rows, err := br.Query()
			if err != nil {
				return false, nil, err
			}
			if len(rows.FieldDescriptions()) == 0 {
				rows.Close()
				if err := rows.Err(); err != nil {
					return false, nil, err
				}
				continue
			}
			ids = make([]int64, 0, n)
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return false, nil, err
				}
				ids = append(ids, id)
			}
			if err := rows.Err(); err != nil {
				return false, nil, err
			}
			break
		}
		slices.Sort(ids)
	}
	return advanced, ids, nil
}

// conflict adds the originator of a conflicting single-originator batch to the error.
func conflict(err error, events []recorder.StoredEvent) error {
	re, ok := err.(*recorder.Error)
	if !ok || re.Kind != recorder.ErrIntegrity || len(events) == 0 || re.OriginatorID != "" {
		return err
	}
	for _, e := range events[1:] {
		if e.OriginatorID != events[0].OriginatorID {
			return err
		}
	}
	re.OriginatorID, re.Version = events[0].OriginatorID, events[0].OriginatorVersion
	return re
}

// SelectEvents returns one originator's events; see recorder.EventQuery.
func (r *AggregateRecorder) SelectEvents(ctx context.Context, originatorID string, q recorder.EventQuery) ([]recorder.StoredEvent, error) {
	const op = "select events"
	var b strings.Builder
	b.WriteString("SELECT originator_version, topic, state FROM ")
	b.WriteString(r.table)
	b.WriteString(" WHERE originator_id = $1::text")
	b.WriteString(r.idCast())
	args := []any{originatorID}
	if q.After != nil {
		args = append(args, *q.After)
		fmt.Fprintf(&b, " AND originator_version > $%d", len(args))
	}
	if q.UpTo != nil {
		args = append(args, *q.UpTo)
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
	c, err := r.f.acquire(ctx, op)
	if err != nil {
		return nil, err
	}
	defer c.Release()
	rows, err := c.Query(ctx, b.String(), args...)
	if err != nil {
		return nil, wrap(ctx, op, err)
	}
	defer rows.Close()
	events := []recorder.StoredEvent{}
	for rows.Next() {
		e := recorder.StoredEvent{OriginatorID: originatorID}
		if err := rows.Scan(&e.OriginatorVersion, &e.Topic, &e.State); err != nil {
			return nil, wrap(ctx, op, err)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(ctx, op, err)
	}
	return events, nil
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
	b.WriteString("SELECT notification_id, originator_id::text, originator_version, topic, state FROM ")
	b.WriteString(r.table)
	var args []any
	where := " WHERE "
	if q.Start != nil {
		args = append(args, *q.Start)
		if q.ExclusiveStart {
			fmt.Fprintf(&b, "%snotification_id > $%d", where, len(args))
		} else {
			fmt.Fprintf(&b, "%snotification_id >= $%d", where, len(args))
		}
		where = " AND "
	}
	if q.Stop != nil {
		args = append(args, *q.Stop)
		fmt.Fprintf(&b, "%snotification_id <= $%d", where, len(args))
		where = " AND "
	}
	if len(q.Topics) > 0 {
		args = append(args, q.Topics)
		fmt.Fprintf(&b, "%stopic = ANY($%d::text[])", where, len(args))
	}
	args = append(args, q.Limit)
	fmt.Fprintf(&b, " ORDER BY notification_id LIMIT $%d", len(args))
	c, err := r.f.acquire(ctx, op)
	if err != nil {
		return nil, err
	}
	defer c.Release()
	rows, err := c.Query(ctx, b.String(), args...)
	if err != nil {
		return nil, wrap(ctx, op, err)
	}
	defer rows.Close()
	ns := make([]recorder.Notification, 0, min(q.Limit, 1024))
	for rows.Next() {
		var n recorder.Notification
		if err := rows.Scan(&n.ID, &n.OriginatorID, &n.OriginatorVersion, &n.Topic, &n.State); err != nil {
			return nil, wrap(ctx, op, err)
		}
		ns = append(ns, n)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(ctx, op, err)
	}
	return ns, nil
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

// Subscribe yields notifications after `after`; see recorder.ApplicationRecorder.
// It wakes on NOTIFY (the factory's listener), on this factory's commits, and
// every POSTGRES_POLL_INTERVAL.
func (r *ApplicationRecorder) Subscribe(ctx context.Context, after *int64, topics []string) (recorder.Subscription, error) {
	if r.f.closed.Load() {
		return nil, &recorder.Error{Kind: recorder.ErrConnectionUnavailable, Op: "subscribe", Err: errClosed}
	}
	r.f.startListener()
	return recorder.NewPollingSubscription(r.SelectNotifications, r.f.signal, r.f.cfg.PollInterval, after, topics), nil
}

// HoldInsert is a test hook: it inserts events in a transaction that stays open
// (holding the table lock) until the returned function commits it (true) or
// rolls it back (false). It returns the ids the events will have.
func (r *ApplicationRecorder) HoldInsert(ctx context.Context, events []recorder.StoredEvent) ([]int64, func(ctx context.Context, commit bool) error, error) {
	const op = "hold insert"
	c, err := r.f.acquire(ctx, op)
	if err != nil {
		return nil, nil, err
	}
	ids, err := r.insert(ctx, c, events, nil, true)
	if err != nil {
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

// TrackingRecorder stores tracking positions, one row per upstream application.
type TrackingRecorder struct {
	f *Factory
}

var _ recorder.TrackingRecorder = (*TrackingRecorder)(nil)

// InsertTracking records a position; see recorder.TrackingRecorder.
func (r *TrackingRecorder) InsertTracking(ctx context.Context, t recorder.Tracking) error {
	const op = "insert tracking"
	c, err := r.f.acquire(ctx, op)
	if err != nil {
		return err
	}
	defer c.Release()
	tag, err := c.Exec(ctx, "INSERT INTO "+r.f.tracking+" AS t (application_name, notification_id) VALUES ($1, $2)"+
		" ON CONFLICT (application_name) DO UPDATE SET notification_id = EXCLUDED.notification_id"+
		" WHERE t.notification_id < EXCLUDED.notification_id", t.ApplicationName, t.NotificationID)
	if err != nil {
		return wrap(ctx, op, err)
	}
	if tag.RowsAffected() == 0 {
		return &recorder.Error{Kind: recorder.ErrIntegrity, Op: op,
			Err: fmt.Errorf("application %q, notification id %d: %w", t.ApplicationName, t.NotificationID, errTrackingNotAdvanced)}
	}
	r.f.signal.Notify()
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
	var id int64
	err = c.QueryRow(ctx, "SELECT notification_id FROM "+r.f.tracking+" WHERE application_name = $1", applicationName).Scan(&id)
	switch {
	case err == nil:
		return id, true, nil
	case errors.Is(err, pgx.ErrNoRows):
		return 0, false, nil
	default:
		return 0, false, wrap(ctx, op, err)
	}
}

// HasTrackingID reports whether the position has reached notificationID.
func (r *TrackingRecorder) HasTrackingID(ctx context.Context, applicationName string, notificationID int64) (bool, error) {
	id, ok, err := r.MaxTrackingID(ctx, applicationName)
	if err != nil {
		return false, err
	}
	return ok && id >= notificationID, nil
}

// Wait returns when the position has reached notificationID; see recorder.WaitFor.
func (r *TrackingRecorder) Wait(ctx context.Context, applicationName string, notificationID int64, timeout time.Duration) error {
	return recorder.WaitFor(ctx, timeout, r.f.signal, func(ctx context.Context) (bool, error) {
		return r.HasTrackingID(ctx, applicationName, notificationID)
	})
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
	ids, finish, err := r.HoldInsert(ctx, events)
	if err != nil {
		return nil, err
	}
	return func() ([]int64, error) {
		if err := finish(context.WithoutCancel(ctx), true); err != nil {
			return nil, err
		}
		return ids, nil
	}, nil
}
