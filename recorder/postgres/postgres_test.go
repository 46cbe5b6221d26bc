package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/persistence"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/postgres"
)

func ev(id string, v int64) recorder.StoredEvent {
	return recorder.StoredEvent{OriginatorID: id, OriginatorVersion: v, Topic: "t", State: []byte(fmt.Sprintf(`{"v":%d}`, v))}
}

func open(t *testing.T, env config.Env) recorder.Factory {
	t.Helper()
	f, err := postgres.Open(t.Context(), env)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func TestConfig(t *testing.T) {
	_, err := postgres.ParseConfig(config.NewEnvFrom("dogschool", nil, nil))
	require.ErrorIs(t, err, config.ErrConfiguration)
	for _, k := range []string{"DOGSCHOOL_POSTGRES_DBNAME or POSTGRES_DBNAME", "POSTGRES_HOST", "POSTGRES_USER", "POSTGRES_PASSWORD"} {
		assert.Contains(t, err.Error(), k)
	}
	base := map[string]string{"POSTGRES_DBNAME": "db", "POSTGRES_HOST": "h", "POSTGRES_USER": "u", "POSTGRES_PASSWORD": ""}
	c, err := postgres.ParseConfig(config.NewEnvFrom("DogSchool", base, nil))
	require.NoError(t, err)
	assert.Equal(t, postgres.Config{DBName: "db", Host: "h", User: "u", Port: 5432, PoolSize: 5, MaxOverflow: 10,
		ConnectTimeout: 30 * time.Second, ConnMaxAge: time.Hour, IdleInTransactionTimeout: 5 * time.Second,
		Schema: "public", PollInterval: time.Second, OriginatorIDType: "uuid", CreateTable: true, Name: "DogSchool"}, c)

	all := map[string]string{"POSTGRES_PORT": "5433", "POSTGRES_POOL_SIZE": "2", "POSTGRES_MAX_OVERFLOW": "3",
		"POSTGRES_CONNECT_TIMEOUT": "1.5", "POSTGRES_CONN_MAX_AGE": "60", "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "0",
		"POSTGRES_LOCK_TIMEOUT": "2", "POSTGRES_SCHEMA": "s", "POSTGRES_POLL_INTERVAL": "0.25", "POSTGRES_SSLMODE": "disable",
		"DOGSCHOOL_ORIGINATOR_ID_TYPE": "TEXT", "CREATE_TABLE": "off"}
	for k, v := range base {
		all[k] = v
	}
	c, err = postgres.ParseConfig(config.NewEnvFrom("DogSchool", all, nil))
	require.NoError(t, err)
	assert.Equal(t, postgres.Config{DBName: "db", Host: "h", User: "u", Port: 5433, PoolSize: 2, MaxOverflow: 3,
		ConnectTimeout: 1500 * time.Millisecond, ConnMaxAge: time.Minute, LockTimeout: 2 * time.Second,
		Schema: "s", PollInterval: 250 * time.Millisecond, SSLMode: "disable", OriginatorIDType: "text", Name: "DogSchool"}, c)

	for _, kv := range [][2]string{{"POSTGRES_PORT", "x"}, {"POSTGRES_PORT", "70000"}, {"POSTGRES_POOL_SIZE", "-1"},
		{"POSTGRES_CONNECT_TIMEOUT", "never"}, {"POSTGRES_LOCK_TIMEOUT", "-1"}, {"ORIGINATOR_ID_TYPE", "int"}, {"CREATE_TABLE", "perhaps"}} {
		m := map[string]string{kv[0]: kv[1]}
		for k, v := range base {
			m[k] = v
		}
		_, err := postgres.ParseConfig(config.NewEnvFrom("app", m, nil))
		assert.ErrorIs(t, err, config.ErrConfiguration, "%v", kv)
	}
}

func TestTableNames(t *testing.T) {
	tn, err := postgres.TableNames("DogSchool")
	require.NoError(t, err)
	assert.Equal(t, postgres.Tables{Events: "dogschool_events", Snapshots: "dogschool_snapshots", Tracking: "dogschool_tracking"}, tn)
	tn, err = postgres.TableNames("")
	require.NoError(t, err)
	assert.Equal(t, "stored_events", tn.Events)
	assert.Equal(t, "notification_tracking", tn.Tracking)
	_, err = postgres.TableNames(strings.Repeat("a", 55)) // 55 + len("_snapshots") > 63
	assert.ErrorIs(t, err, recorder.ErrProgramming)
	_, err = postgres.Open(t.Context(), schemaEnv(strings.Repeat("a", 60), "public"))
	assert.ErrorIs(t, err, recorder.ErrProgramming)
}

func TestUnreachableAndClosed(t *testing.T) {
	ctx := t.Context()
	// Nothing listens on port 1: a clear connection error, quickly.
	env := schemaEnv("app", "public", "POSTGRES_PORT", "1", "POSTGRES_CONNECT_TIMEOUT", "2")
	_, err := postgres.Open(ctx, env)
	require.ErrorIs(t, err, recorder.ErrConnectionUnavailable)

	f := open(t, testEnv(t, "app"))
	app, err := f.ApplicationRecorder(ctx)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, f.Close())
	_, err = app.InsertEvents(ctx, []recorder.StoredEvent{ev(uuid.NewString(), 1)})
	assert.ErrorIs(t, err, recorder.ErrConnectionUnavailable)
	_, err = app.SelectNotifications(ctx, recorder.NotificationQuery{Limit: 1})
	assert.ErrorIs(t, err, recorder.ErrConnectionUnavailable)
}

func TestInsertSelectAndConflicts(t *testing.T) {
	ctx := t.Context()
	for _, idType := range []string{"uuid", "text"} {
		t.Run(idType, func(t *testing.T) {
			f := open(t, testEnv(t, "App", "ORIGINATOR_ID_TYPE", idType))
			app, err := f.ApplicationRecorder(ctx)
			require.NoError(t, err)
			id := uuid.NewString()
			ids, err := app.InsertEvents(ctx, nil)
			require.NoError(t, err)
			assert.Empty(t, ids)
			ids, err = app.InsertEvents(ctx, []recorder.StoredEvent{ev(id, 1), ev(id, 2)})
			require.NoError(t, err)
			assert.Equal(t, []int64{1, 2}, ids)
			for _, batch := range [][]recorder.StoredEvent{{ev(id, 2)}, {ev(id, 3), ev(id, 2)}, {ev(id, 3), ev(id, 3)}} {
				_, err = app.InsertEvents(ctx, batch)
				require.ErrorIs(t, err, recorder.ErrIntegrity)
			}
			// A conflict with a stored event is the unique violation, with
			// the driver's error as the cause.
			_, err = app.InsertEvents(ctx, []recorder.StoredEvent{ev(id, 1)})
			var pe *pgconn.PgError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, "23505", pe.Code)
			snaps, err := f.AggregateRecorder(ctx, recorder.PurposeSnapshots)
			require.NoError(t, err)
			_, err = snaps.InsertEvents(ctx, []recorder.StoredEvent{ev(id, 1), ev(id, 1)})
			require.ErrorIs(t, err, recorder.ErrIntegrity)
			require.ErrorAs(t, err, &pe)
			_, err = app.InsertEvents(ctx, []recorder.StoredEvent{ev(id, 3)})
			require.NoError(t, err)
			got, err := app.SelectEvents(ctx, id, recorder.EventQuery{Desc: true, Limit: 1})
			require.NoError(t, err)
			assert.Equal(t, []recorder.StoredEvent{ev(id, 3)}, got)
			got, err = app.SelectEvents(ctx, id, recorder.EventQuery{After: recorder.Bounded(1), UpTo: recorder.Bounded(2)})
			require.NoError(t, err)
			assert.Equal(t, []recorder.StoredEvent{ev(id, 2)}, got)
			got, err = app.SelectEvents(ctx, uuid.NewString(), recorder.EventQuery{})
			require.NoError(t, err)
			assert.Empty(t, got)

			ns, err := app.SelectNotifications(ctx, recorder.NotificationQuery{After: recorder.After(1), Limit: 10, Topics: []string{"t"}})
			require.NoError(t, err)
			require.NotEmpty(t, ns)
			assert.Equal(t, ev(id, 2), ns[0].StoredEvent)
			max, ok, err := app.MaxNotificationID(ctx)
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, ns[len(ns)-1].ID, max)

			_, err = snaps.InsertEvents(ctx, []recorder.StoredEvent{ev(id, 2)})
			require.NoError(t, err)
			_, err = snaps.InsertEvents(ctx, []recorder.StoredEvent{ev(id, 2)})
			assert.ErrorIs(t, err, recorder.ErrIntegrity)
		})
	}
}

func TestErrorMapping(t *testing.T) {
	ctx := t.Context()
	f := open(t, testEnv(t, "app"))
	app, err := f.ApplicationRecorder(ctx)
	require.NoError(t, err)
	// Not a UUID for a uuid column: bad data.
	_, err = app.InsertEvents(ctx, []recorder.StoredEvent{ev("not-a-uuid", 1)})
	assert.ErrorIs(t, err, recorder.ErrData)
	// The connection goes back to the pool usable after a failed batch.
	for range 10 {
		_, err = app.InsertEvents(ctx, []recorder.StoredEvent{ev(uuid.NewString(), 1)})
		require.NoError(t, err)
	}
	// A missing table is a programming error.
	env := testEnv(t, "other", "CREATE_TABLE", "false")
	f2 := open(t, env)
	app2, err := f2.ApplicationRecorder(ctx)
	require.NoError(t, err)
	_, _, err = app2.MaxNotificationID(ctx)
	assert.ErrorIs(t, err, recorder.ErrProgramming)
	// A cancelled context says so.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = app.SelectNotifications(cctx, recorder.NotificationQuery{Limit: 1})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestTracking(t *testing.T) {
	ctx := t.Context()
	f := open(t, testEnv(t, "proc"))
	p, err := f.ProcessRecorder(ctx)
	require.NoError(t, err)
	require.NoError(t, p.InsertTracking(ctx, recorder.Tracking{ApplicationName: "up1", NotificationID: 22}))
	require.NoError(t, p.InsertTracking(ctx, recorder.Tracking{ApplicationName: "up1", NotificationID: 24}))
	for _, n := range []int64{24, 23, 1} {
		assert.ErrorIs(t, p.InsertTracking(ctx, recorder.Tracking{ApplicationName: "up1", NotificationID: n}), recorder.ErrIntegrity)
	}
	max, ok, err := p.MaxTrackingID(ctx, "up1")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, int64(24), max)

	id := uuid.NewString()
	_, err = p.InsertEvents(ctx, []recorder.StoredEvent{ev(id, 1)}, recorder.WithTracking(recorder.Tracking{ApplicationName: "up1", NotificationID: 24}))
	require.ErrorIs(t, err, recorder.ErrIntegrity)
	_, ok, err = p.MaxNotificationID(ctx)
	require.NoError(t, err)
	assert.False(t, ok, "a stale position writes no events")
	_, err = p.InsertEvents(ctx, []recorder.StoredEvent{ev(id, 1)}, recorder.WithTracking(recorder.Tracking{ApplicationName: "up1", NotificationID: 25}))
	require.NoError(t, err)
	_, err = p.InsertEvents(ctx, []recorder.StoredEvent{ev(id, 1)}, recorder.WithTracking(recorder.Tracking{ApplicationName: "up1", NotificationID: 26}))
	require.ErrorIs(t, err, recorder.ErrIntegrity)
	has, err := p.HasTrackingID(ctx, "up1", 26)
	require.NoError(t, err)
	assert.False(t, has, "a conflicting event writes no position")
	_, err = p.InsertEvents(ctx, nil, recorder.WithTracking(recorder.Tracking{ApplicationName: "up1", NotificationID: 26}))
	require.NoError(t, err)
	require.NoError(t, p.Wait(ctx, "up1", 26, time.Second))
	assert.ErrorIs(t, p.Wait(ctx, "up1", 27, 10*time.Millisecond), recorder.ErrTimeout)
}

// TestRaceCreateSameStream is lessons §2 case 1 (F1, F2): 20 writers create the
// same originator at once; one wins and 19 get ErrIntegrity, never a raw error.
func TestRaceCreateSameStream(t *testing.T) {
	ctx := t.Context()
	f := open(t, testEnv(t, "race", "POSTGRES_POOL_SIZE", "20"))
	app, err := f.ApplicationRecorder(ctx)
	require.NoError(t, err)
	for round := range 10 {
		id := uuid.NewString()
		start := make(chan struct{})
		errs := make([]error, 20)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				<-start
				_, errs[i] = app.InsertEvents(ctx, []recorder.StoredEvent{{OriginatorID: id, OriginatorVersion: 1, Topic: "t", State: []byte{byte(i)}}})
			})
		}
		close(start)
		wg.Wait()
		conflicts := 0
		for _, err := range errs {
			switch {
			case err == nil:
			case errors.Is(err, recorder.ErrIntegrity):
				conflicts++
			default:
				t.Errorf("round %d: unexpected error %v", round, err)
			}
		}
		require.Equal(t, 19, conflicts)
	}
}

type holder interface {
	HoldInsert(ctx context.Context, events []recorder.StoredEvent) ([]int64, func(ctx context.Context, commit bool) error, error)
}

// TestInterleavedCommitNotSkipped is lessons §2 case 5 (F3): while insert A is
// held open, insert B waits for the table lock, so a follower sees neither;
// after A commits it sees A then B, and the subscription both, once.
func TestInterleavedCommitNotSkipped(t *testing.T) {
	ctx := t.Context()
	f := open(t, testEnv(t, "interleave"))
	app, err := f.ApplicationRecorder(ctx)
	require.NoError(t, err)
	sub, err := app.Subscribe(ctx, recorder.Start(), nil)
	require.NoError(t, err)
	defer sub.Close()
	idsA, finish, err := app.(holder).HoldInsert(ctx, []recorder.StoredEvent{ev(uuid.NewString(), 1)})
	require.NoError(t, err)
	bDone := make(chan []int64, 1)
	go func() {
		ids, err := app.InsertEvents(ctx, []recorder.StoredEvent{ev(uuid.NewString(), 1)})
		assert.NoError(t, err)
		bDone <- ids
	}()
	ns, err := app.SelectNotifications(ctx, recorder.NotificationQuery{Limit: 10})
	require.NoError(t, err)
	assert.Empty(t, ns)
	require.NoError(t, finish(ctx, true))
	idsB := <-bDone
	assert.Less(t, idsA[0], idsB[0])
	ns, err = app.SelectNotifications(ctx, recorder.NotificationQuery{Limit: 10})
	require.NoError(t, err)
	require.Len(t, ns, 2)
	for _, want := range []int64{idsA[0], idsB[0]} {
		n, err := sub.Next(ctx)
		require.NoError(t, err)
		assert.Equal(t, want, n.ID)
	}
}

// TestListenReconnects: with polling off, a subscriber is woken by NOTIFY for
// commits of another factory, also after its LISTEN connection was killed.
func TestListenReconnects(t *testing.T) {
	ctx := t.Context()
	env := testEnv(t, "listen", "POSTGRES_POLL_INTERVAL", "0")
	f1 := open(t, env)
	f2 := open(t, env)
	a1, err := f1.ApplicationRecorder(ctx)
	require.NoError(t, err)
	a2, err := f2.ApplicationRecorder(ctx)
	require.NoError(t, err)
	sub, err := a1.Subscribe(ctx, recorder.Start(), nil)
	require.NoError(t, err)
	defer sub.Close()

	// Until the listener is connected a NOTIFY could be missed; it wakes the
	// subscription when it connects, so insert once and read it.
	_, err = a2.InsertEvents(ctx, []recorder.StoredEvent{ev(uuid.NewString(), 1)})
	require.NoError(t, err)
	n, err := sub.Next(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n.ID)

	pid := postgres.ListenerPID(f1.(*postgres.Factory))
	for pid == 0 { // the first event may have been read before the listener connected
		time.Sleep(10 * time.Millisecond)
		pid = postgres.ListenerPID(f1.(*postgres.Factory))
	}
	adminExec(t, "SELECT pg_terminate_backend($1)", int32(pid))
	_, err = a2.InsertEvents(ctx, []recorder.StoredEvent{ev(uuid.NewString(), 1)})
	require.NoError(t, err)
	n, err = sub.Next(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(2), n.ID)
}

func TestRegistered(t *testing.T) {
	env := testEnv(t, "reg")
	for _, name := range []string{"postgres", "eventsourcing.postgres"} {
		m := map[string]string{"PERSISTENCE_MODULE": name}
		f, err := persistence.Open(t.Context(), config.NewEnvFrom("reg", m, env.Lookup))
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
}
