package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/persistence"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/sqlite"
)

func env(name string, kv ...string) config.Env {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return config.NewEnvFrom(name, m, nil)
}

func openFile(t *testing.T, kv ...string) (recorder.Factory, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	f, err := sqlite.Open(t.Context(), env("app", append([]string{"SQLITE_DBNAME", path}, kv...)...))
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return f, path
}

func ev(id string, v int64) recorder.StoredEvent {
	return recorder.StoredEvent{OriginatorID: id, OriginatorVersion: v, Topic: "t", State: []byte(fmt.Sprintf(`{"v":%d}`, v))}
}

func TestConfig(t *testing.T) {
	_, err := sqlite.ParseConfig(env("dogschool"))
	require.ErrorIs(t, err, config.ErrConfiguration)
	assert.Contains(t, err.Error(), "DOGSCHOOL_SQLITE_DBNAME")
	assert.Contains(t, err.Error(), " SQLITE_DBNAME")

	c, err := sqlite.ParseConfig(env("dogschool", "SQLITE_DBNAME", "x.db"))
	require.NoError(t, err)
	assert.Equal(t, sqlite.DefaultConfig("x.db"), c)
	assert.Equal(t, 5*time.Second, c.LockTimeout)
	assert.Equal(t, "FULL", c.Synchronous)
	assert.True(t, c.CreateTable)

	c, err = sqlite.ParseConfig(env("dogschool", "DOGSCHOOL_SQLITE_DBNAME", "a.db", "SQLITE_DBNAME", "b.db",
		"SQLITE_LOCK_TIMEOUT", "0.5", "SQLITE_SYNCHRONOUS", "normal", "CREATE_TABLE", "no",
		"SQLITE_POLL_INTERVAL", "2", "SQLITE_POOL_SIZE", "2", "SQLITE_MAX_OVERFLOW", "0"))
	require.NoError(t, err)
	assert.Equal(t, sqlite.Config{DBName: "a.db", LockTimeout: 500 * time.Millisecond, Synchronous: "NORMAL",
		PollInterval: 2 * time.Second, PoolSize: 2, CreateTable: false}, c)

	for _, kv := range [][]string{
		{"SQLITE_LOCK_TIMEOUT", "soon"}, {"SQLITE_LOCK_TIMEOUT", "-1"}, {"SQLITE_SYNCHRONOUS", "sometimes"},
		{"CREATE_TABLE", "maybe"}, {"SQLITE_POOL_SIZE", "x"}, {"SQLITE_POOL_SIZE", "0", "SQLITE_MAX_OVERFLOW", "0"},
		{"SQLITE_POLL_INTERVAL", "often"},
	} {
		_, err := sqlite.ParseConfig(env("app", append([]string{"SQLITE_DBNAME", "x.db"}, kv...)...))
		assert.ErrorIs(t, err, config.ErrConfiguration, "%v", kv)
	}
}

func TestRegistered(t *testing.T) {
	for _, name := range []string{"sqlite", "eventsourcing.sqlite"} {
		f, err := persistence.Open(t.Context(), env("app", "PERSISTENCE_MODULE", name, "SQLITE_DBNAME", ":memory:"))
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
	_, err := persistence.Open(t.Context(), env("app", "PERSISTENCE_MODULE", "sqlite"))
	require.ErrorIs(t, err, recorder.ErrInfrastructureFactory)
	require.ErrorIs(t, err, config.ErrConfiguration)
}

func TestWALAndSynchronous(t *testing.T) {
	f, path := openFile(t)
	app, err := f.ApplicationRecorder(t.Context())
	require.NoError(t, err)
	_, err = app.InsertEvents(t.Context(), []recorder.StoredEvent{ev(uuid.NewString(), 1)})
	require.NoError(t, err)
	// The WAL file exists beside the database while it is open.
	assert.FileExists(t, path+"-wal")
}

func TestInsertSelectAndConflicts(t *testing.T) {
	for _, dbname := range []string{"file", ":memory:", "file:shared1?mode=memory&cache=shared"} {
		t.Run(dbname, func(t *testing.T) {
			ctx := t.Context()
			var f recorder.Factory
			if dbname == "file" {
				f, _ = openFile(t)
			} else {
				var err error
				f, err = sqlite.Open(ctx, env("app", "SQLITE_DBNAME", dbname))
				require.NoError(t, err)
				t.Cleanup(func() { _ = f.Close() })
			}
			app, err := f.ApplicationRecorder(ctx)
			require.NoError(t, err)
			id := uuid.NewString()
			ids, err := app.InsertEvents(ctx, nil)
			require.NoError(t, err)
			assert.Empty(t, ids)
			_, ok, err := app.MaxNotificationID(ctx)
			require.NoError(t, err)
			assert.False(t, ok)

			ids, err = app.InsertEvents(ctx, []recorder.StoredEvent{ev(id, 1), ev(id, 2)})
			require.NoError(t, err)
			assert.Equal(t, []int64{1, 2}, ids)

			for _, batch := range [][]recorder.StoredEvent{{ev(id, 2)}, {ev(id, 3), ev(id, 2)}, {ev(id, 3), ev(id, 3)}} {
				_, err = app.InsertEvents(ctx, batch)
				require.ErrorIs(t, err, recorder.ErrIntegrity)
				var re *recorder.Error
				require.ErrorAs(t, err, &re)
				assert.NotNil(t, re.Err, "the driver's error is the cause")
			}
			ids, err = app.InsertEvents(ctx, []recorder.StoredEvent{ev(id, 3)})
			require.NoError(t, err)
			assert.Equal(t, []int64{3}, ids, "failed batches leave no gap")

			got, err := app.SelectEvents(ctx, id, recorder.EventQuery{Desc: true, Limit: 1})
			require.NoError(t, err)
			assert.Equal(t, []recorder.StoredEvent{ev(id, 3)}, got)
			got, err = app.SelectEvents(ctx, id, recorder.EventQuery{After: recorder.Bounded(1), UpTo: recorder.Bounded(2)})
			require.NoError(t, err)
			assert.Equal(t, []recorder.StoredEvent{ev(id, 2)}, got)
			got, err = app.SelectEvents(ctx, "unknown", recorder.EventQuery{})
			require.NoError(t, err)
			assert.Empty(t, got)

			ns, err := app.SelectNotifications(ctx, recorder.NotificationQuery{After: recorder.After(1), Limit: 10})
			require.NoError(t, err)
			require.Len(t, ns, 2)
			assert.Equal(t, int64(2), ns[0].ID)
			assert.Equal(t, ev(id, 2), ns[0].StoredEvent)
			max, ok, err := app.MaxNotificationID(ctx)
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, int64(3), max)
			_, err = app.SelectNotifications(ctx, recorder.NotificationQuery{})
			assert.ErrorIs(t, err, recorder.ErrProgramming)

			snaps, err := f.AggregateRecorder(ctx, recorder.PurposeSnapshots)
			require.NoError(t, err)
			ids, err = snaps.InsertEvents(ctx, []recorder.StoredEvent{ev(id, 2)})
			require.NoError(t, err)
			assert.Nil(t, ids)
			_, err = snaps.InsertEvents(ctx, []recorder.StoredEvent{ev(id, 2)})
			assert.ErrorIs(t, err, recorder.ErrIntegrity)
		})
	}
}

func TestTrackingUpsert(t *testing.T) {
	ctx := t.Context()
	f, _ := openFile(t)
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
	_, ok, err = p.MaxTrackingID(ctx, "up2")
	require.NoError(t, err)
	assert.False(t, ok)

	// Events and tracking are atomic: a stale position writes no events, a
	// conflicting event writes no position.
	id := uuid.NewString()
	_, err = p.InsertEvents(ctx, []recorder.StoredEvent{ev(id, 1)}, recorder.WithTracking(recorder.Tracking{ApplicationName: "up1", NotificationID: 24}))
	require.ErrorIs(t, err, recorder.ErrIntegrity)
	_, ok, err = p.MaxNotificationID(ctx)
	require.NoError(t, err)
	assert.False(t, ok)
	_, err = p.InsertEvents(ctx, []recorder.StoredEvent{ev(id, 1)}, recorder.WithTracking(recorder.Tracking{ApplicationName: "up1", NotificationID: 25}))
	require.NoError(t, err)
	_, err = p.InsertEvents(ctx, []recorder.StoredEvent{ev(id, 1)}, recorder.WithTracking(recorder.Tracking{ApplicationName: "up1", NotificationID: 26}))
	require.ErrorIs(t, err, recorder.ErrIntegrity)
	has, err := p.HasTrackingID(ctx, "up1", 26)
	require.NoError(t, err)
	assert.False(t, has)
	ids, err := p.InsertEvents(ctx, nil, recorder.WithTracking(recorder.Tracking{ApplicationName: "up1", NotificationID: 26}))
	require.NoError(t, err)
	assert.Empty(t, ids)
	require.NoError(t, p.Wait(ctx, "up1", 26, time.Second))
	err = p.Wait(ctx, "up1", 27, 10*time.Millisecond)
	assert.ErrorIs(t, err, recorder.ErrTimeout)
}

// TestRaceCreateSameStream is lessons §2 case 1 on a file database: 20 writers
// create the same originator at once; one wins, 19 get ErrIntegrity.
func TestRaceCreateSameStream(t *testing.T) {
	ctx := t.Context()
	f, _ := openFile(t)
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
		winner, conflicts := -1, 0
		for i, err := range errs {
			switch {
			case err == nil:
				winner = i
			case errors.Is(err, recorder.ErrIntegrity):
				conflicts++
			default:
				t.Errorf("round %d: unexpected error %v", round, err)
			}
		}
		require.Equal(t, 19, conflicts)
		got, err := app.SelectEvents(ctx, id, recorder.EventQuery{})
		require.NoError(t, err)
		require.Len(t, got, 1)
		assert.Equal(t, []byte{byte(winner)}, got[0].State)
	}
}

type holder interface {
	HoldInsert(ctx context.Context, events []recorder.StoredEvent) ([]int64, func(ctx context.Context, commit bool) error, error)
}

// TestHeldInsertInvisible holds an insert open: readers are not blocked and see
// neither it nor a later insert until it commits (ids appear in commit order).
func TestHeldInsertInvisible(t *testing.T) {
	for _, dbname := range []string{"file", ":memory:"} {
		t.Run(dbname, func(t *testing.T) {
			ctx := t.Context()
			var f recorder.Factory
			if dbname == "file" {
				f, _ = openFile(t)
			} else {
				var err error
				f, err = sqlite.Open(ctx, env("app", "SQLITE_DBNAME", dbname))
				require.NoError(t, err)
				t.Cleanup(func() { _ = f.Close() })
			}
			app, err := f.ApplicationRecorder(ctx)
			require.NoError(t, err)
			sub, err := app.Subscribe(ctx, recorder.Start(), nil)
			require.NoError(t, err)
			defer sub.Close()

			ids, finish, err := app.(holder).HoldInsert(ctx, []recorder.StoredEvent{ev("a", 1)})
			require.NoError(t, err)
			assert.Equal(t, []int64{1}, ids)
			bDone := make(chan error, 1)
			go func() {
				_, err := app.InsertEvents(ctx, []recorder.StoredEvent{ev("b", 1)})
				bDone <- err
			}()
			ns, err := app.SelectNotifications(ctx, recorder.NotificationQuery{Limit: 10})
			require.NoError(t, err)
			assert.Empty(t, ns)
			require.NoError(t, finish(ctx, true))
			require.NoError(t, <-bDone)
			for want := range []int64{1, 2} {
				n, err := sub.Next(ctx)
				require.NoError(t, err)
				assert.Equal(t, int64(want+1), n.ID)
			}
		})
	}
}

// TestSubscribeAcrossFactories: a subscriber of one factory sees commits made
// through another factory of the same file (the shared signal, or polling).
func TestSubscribeAcrossFactories(t *testing.T) {
	ctx := t.Context()
	f1, path := openFile(t, "SQLITE_POLL_INTERVAL", "3600")
	f2, err := sqlite.Open(ctx, env("app", "SQLITE_DBNAME", path))
	require.NoError(t, err)
	defer f2.Close()
	a1, err := f1.ApplicationRecorder(ctx)
	require.NoError(t, err)
	a2, err := f2.ApplicationRecorder(ctx)
	require.NoError(t, err)
	sub, err := a1.Subscribe(ctx, recorder.Start(), []string{"t"})
	require.NoError(t, err)
	defer sub.Close()
	go func() {
		_, _ = a2.InsertEvents(ctx, []recorder.StoredEvent{{OriginatorID: "x", OriginatorVersion: 1, Topic: "other"}, ev("x", 2)})
	}()
	n, err := sub.Next(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(2), n.ID)
	require.NoError(t, sub.Close())
	_, err = sub.Next(ctx)
	assert.ErrorIs(t, err, recorder.ErrSubscriptionClosed)
}

// TestPollsOtherProcesses: with a separate connection that writes behind the
// module's back (as another process would), a subscriber sees the commit by
// polling.
func TestPollsOtherProcesses(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "app.db")
	cfg := sqlite.DefaultConfig(path)
	cfg.PollInterval = 10 * time.Millisecond
	f1, err := sqlite.OpenConfig(ctx, cfg)
	require.NoError(t, err)
	defer f1.Close()
	a1, err := f1.ApplicationRecorder(ctx)
	require.NoError(t, err)
	sub, err := a1.Subscribe(ctx, recorder.Start(), nil)
	require.NoError(t, err)
	defer sub.Close()
	go func() {
		raw := openRaw(t, path)
		_, _ = raw.ExecContext(ctx, "INSERT INTO stored_events (originator_id, originator_version, topic, state) VALUES ('x', 1, 't', x'00')")
		_ = raw.Close()
	}()
	n, err := sub.Next(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n.ID)
}

func TestClosedAndUnopenable(t *testing.T) {
	ctx := t.Context()
	f, _ := openFile(t)
	app, err := f.ApplicationRecorder(ctx)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, f.Close(), "Close is idempotent")
	_, err = app.InsertEvents(ctx, []recorder.StoredEvent{ev("x", 1)})
	assert.ErrorIs(t, err, recorder.ErrConnectionUnavailable)
	_, err = app.SelectNotifications(ctx, recorder.NotificationQuery{Limit: 1})
	assert.ErrorIs(t, err, recorder.ErrConnectionUnavailable)
	_, err = app.Subscribe(ctx, recorder.Start(), nil)
	assert.ErrorIs(t, err, recorder.ErrConnectionUnavailable)

	_, err = sqlite.Open(ctx, env("app", "SQLITE_DBNAME", filepath.Join(t.TempDir(), "missing", "dir", "x.db")))
	require.ErrorIs(t, err, recorder.ErrPersistence)
}

func TestCreateTableFalse(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "app.db")
	f, err := sqlite.Open(ctx, env("app", "SQLITE_DBNAME", path, "CREATE_TABLE", "false"))
	require.NoError(t, err)
	defer f.Close()
	app, err := f.ApplicationRecorder(ctx)
	require.NoError(t, err)
	_, err = app.InsertEvents(ctx, []recorder.StoredEvent{ev("x", 1)})
	assert.ErrorIs(t, err, recorder.ErrProgramming, "no such table")
}

func TestCancelledContext(t *testing.T) {
	f, _ := openFile(t)
	app, err := f.ApplicationRecorder(t.Context())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = app.InsertEvents(ctx, []recorder.StoredEvent{ev("x", 1)})
	require.ErrorIs(t, err, context.Canceled)
	_, err = app.SelectNotifications(ctx, recorder.NotificationQuery{Limit: 1})
	require.ErrorIs(t, err, context.Canceled)
}
