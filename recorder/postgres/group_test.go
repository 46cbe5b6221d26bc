package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/postgres"
)

// waitUntil polls cond until it holds. It bounds nothing: a condition that
// never holds is a hang, which go test's timeout reports.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(time.Millisecond):
		}
	}
}

type result struct {
	ids []int64
	err error
}

// start runs an insert in a goroutine and waits until it is queued.
func start(t *testing.T, f *postgres.Factory, ctx context.Context, r recorder.AggregateRecorder, events []recorder.StoredEvent, opts ...recorder.InsertOption) <-chan result {
	t.Helper()
	n := postgres.QueueLen(f)
	done := make(chan result, 1)
	go func() {
		ids, err := r.InsertEvents(ctx, events, opts...)
		done <- result{ids, err}
	}()
	waitUntil(t, func() bool { return postgres.QueueLen(f) == n+1 })
	return done
}

// lockWaiters counts the sessions waiting for a lock on the events table.
func lockWaiters(t *testing.T, env config.Env, f *postgres.Factory) func() bool {
	schema, _ := env.Lookup("POSTGRES_SCHEMA")
	table := pgx.Identifier{schema, f.Tables().Events}.Sanitize()
	return func() bool {
		conn, err := pgx.Connect(t.Context(), adminDSN())
		require.NoError(t, err)
		defer conn.Close(context.WithoutCancel(t.Context()))
		var n int
		require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = to_regclass($1)", table).Scan(&n))
		return n > 0
	}
}

// TestGroupCommit: saves queued together run as one transaction in queue
// order; each conflict fails its own save only, with the driver's error, and
// takes no ids.
func TestGroupCommit(t *testing.T) {
	ctx := t.Context()
	env := testEnv(t, "group")
	f := open(t, env).(*postgres.Factory)
	p, err := f.ProcessRecorder(ctx)
	require.NoError(t, err)
	agg, err := f.AggregateRecorder(ctx, recorder.PurposeEvents)
	require.NoError(t, err)
	stored, racedFor := uuid.NewString(), uuid.NewString()
	_, err = p.InsertEvents(ctx, []recorder.StoredEvent{ev(stored, 1)})
	require.NoError(t, err)

	listen, err := pgx.Connect(ctx, adminDSN())
	require.NoError(t, err)
	defer listen.Close(context.WithoutCancel(ctx))
	channel := pgx.Identifier{f.Tables().Events}.Sanitize()
	_, err = listen.Exec(ctx, "LISTEN "+channel)
	require.NoError(t, err)

	release := HoldTurnCleanup(t, f)
	up := func(n int64) recorder.InsertOption {
		return recorder.WithTracking(recorder.Tracking{ApplicationName: "up", NotificationID: n})
	}
	first := start(t, f, ctx, p, []recorder.StoredEvent{ev(uuid.NewString(), 1), ev(uuid.NewString(), 1)})
	dupStored := start(t, f, ctx, p, []recorder.StoredEvent{ev(uuid.NewString(), 1), ev(stored, 1)})
	winner := start(t, f, ctx, p, []recorder.StoredEvent{ev(racedFor, 1)})
	loser := start(t, f, ctx, p, []recorder.StoredEvent{ev(racedFor, 1)})
	tracked := start(t, f, ctx, p, []recorder.StoredEvent{ev(uuid.NewString(), 1)}, up(10))
	stale := start(t, f, ctx, p, []recorder.StoredEvent{ev(uuid.NewString(), 1)}, up(10))
	viaAggregate := start(t, f, ctx, agg, []recorder.StoredEvent{ev(uuid.NewString(), 1)})
	last := start(t, f, ctx, p, []recorder.StoredEvent{ev(uuid.NewString(), 1)})
	release()

	requireConflict := func(r result, driver bool) {
		t.Helper()
		require.ErrorIs(t, r.err, recorder.ErrIntegrity)
		var pe *pgconn.PgError
		if driver {
			require.ErrorAs(t, r.err, &pe)
			assert.Equal(t, "23505", pe.Code)
		}
		assert.Nil(t, r.ids)
	}
	r := <-first
	require.NoError(t, r.err)
	assert.Equal(t, []int64{2, 3}, r.ids)
	requireConflict(<-dupStored, true)
	r = <-winner
	require.NoError(t, r.err)
	assert.Equal(t, []int64{4}, r.ids)
	requireConflict(<-loser, true)
	r = <-tracked
	require.NoError(t, r.err)
	assert.Equal(t, []int64{5}, r.ids)
	requireConflict(<-stale, false)
	r = <-viaAggregate
	require.NoError(t, r.err)
	assert.Nil(t, r.ids, "an aggregate recorder returns no ids")
	r = <-last
	require.NoError(t, r.err)
	assert.Equal(t, []int64{7}, r.ids)

	max, _, err := p.MaxNotificationID(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(7), max, "failed saves take no ids")
	pos, _, err := p.MaxTrackingID(ctx, "up")
	require.NoError(t, err)
	assert.Equal(t, int64(10), pos)
	_, err = listen.Exec(ctx, "NOTIFY "+channel)
	require.NoError(t, err)
	// One commit: a committing transaction delivers its NOTIFY once, in
	// commit order, so the listener sees one notification before its own.
	var commits int
	for {
		n, err := listen.WaitForNotification(ctx)
		require.NoError(t, err)
		if n.PID == listen.PgConn().PID() {
			break
		}
		commits++
	}
	assert.Equal(t, 1, commits, "the group's saves commit in one transaction")
}

// HoldTurnCleanup is postgres.HoldTurn, released at the latest when the test ends.
func HoldTurnCleanup(t *testing.T, f *postgres.Factory) func() {
	release := postgres.HoldTurn(f)
	done := false
	t.Cleanup(func() {
		if !done {
			release()
		}
	})
	return func() { done = true; release() }
}

// TestGroupCancel: a save cancelled while queued leaves the queue unwritten,
// also while the group's leader waits for a table lock another session holds
// (the saves wait in the queue, not in a group); a leader that gives up stops
// waiting, and another caller takes over.
func TestGroupCancel(t *testing.T) {
	ctx := t.Context()
	env := testEnv(t, "cancel")
	f := open(t, env).(*postgres.Factory)
	app, err := f.ApplicationRecorder(ctx)
	require.NoError(t, err)
	waiting := lockWaiters(t, env, f)

	// Queued behind a running group, then cancelled.
	release := HoldTurnCleanup(t, f)
	qctx, cancel := context.WithCancel(ctx)
	queued := start(t, f, qctx, app, []recorder.StoredEvent{ev(uuid.NewString(), 1)})
	cancel()
	r := <-queued
	require.ErrorIs(t, r.err, context.Canceled)
	assert.Nil(t, r.ids)
	assert.Zero(t, postgres.QueueLen(f))
	release()

	// Queued while the leader waits for the lock HoldInsert holds, then cancelled.
	_, finish, err := app.(holder).HoldInsert(ctx, []recorder.StoredEvent{ev(uuid.NewString(), 1)})
	require.NoError(t, err)
	leader := start(t, f, ctx, app, []recorder.StoredEvent{ev(uuid.NewString(), 1)})
	waitUntil(t, waiting)
	qctx, cancel = context.WithCancel(ctx)
	queued = start(t, f, qctx, app, []recorder.StoredEvent{ev(uuid.NewString(), 1)})
	cancel()
	r = <-queued
	require.ErrorIs(t, r.err, context.Canceled)
	require.NoError(t, finish(ctx, true))
	r = <-leader
	require.NoError(t, r.err)
	assert.Equal(t, []int64{2}, r.ids)

	// The leader itself gives up while waiting for the lock.
	_, finish, err = app.(holder).HoldInsert(ctx, []recorder.StoredEvent{ev(uuid.NewString(), 1)})
	require.NoError(t, err)
	lctx, cancelLeader := context.WithCancel(ctx)
	leader = start(t, f, lctx, app, []recorder.StoredEvent{ev(uuid.NewString(), 1)})
	waitUntil(t, waiting)
	other := start(t, f, ctx, app, []recorder.StoredEvent{ev(uuid.NewString(), 1)})
	cancelLeader()
	r = <-leader
	require.ErrorIs(t, r.err, context.Canceled)
	assert.Nil(t, r.ids)
	require.NoError(t, finish(ctx, true))
	r = <-other
	require.NoError(t, r.err)
	assert.Equal(t, []int64{4}, r.ids)

	max, _, err := app.MaxNotificationID(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(4), max, "nothing of the saves that gave up was written")
}

// TestGroupClose: saves queued when the factory closes fail with
// ErrConnectionUnavailable instead of waiting, and Close does not wait for a
// table lock that another session holds.
func TestGroupClose(t *testing.T) {
	ctx := t.Context()
	f := open(t, testEnv(t, "close")).(*postgres.Factory)
	app, err := f.ApplicationRecorder(ctx)
	require.NoError(t, err)
	release := HoldTurnCleanup(t, f)
	queued := start(t, f, ctx, app, []recorder.StoredEvent{ev(uuid.NewString(), 1)})
	require.NoError(t, f.Close())
	r := <-queued
	require.ErrorIs(t, r.err, recorder.ErrConnectionUnavailable)
	release()

	env := testEnv(t, "close")
	f = open(t, env).(*postgres.Factory)
	other := open(t, env).(*postgres.Factory) // another process, as far as f knows
	app, err = f.ApplicationRecorder(ctx)
	require.NoError(t, err)
	otherApp, err := other.ApplicationRecorder(ctx)
	require.NoError(t, err)
	_, finish, err := otherApp.(holder).HoldInsert(ctx, []recorder.StoredEvent{ev(uuid.NewString(), 1)})
	require.NoError(t, err)
	defer func() { _ = finish(ctx, false) }()
	waiter := start(t, f, ctx, app, []recorder.StoredEvent{ev(uuid.NewString(), 1)})
	waitUntil(t, lockWaiters(t, env, f))
	require.NoError(t, f.Close()) // returns while the lock is still held
	r = <-waiter
	require.ErrorIs(t, r.err, recorder.ErrConnectionUnavailable)
}
