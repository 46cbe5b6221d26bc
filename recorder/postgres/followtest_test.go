package postgres_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/follow/followtest"
	"github.com/eventsourcing-go/eventsourcing/projection/pgview"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/postgres"
)

// The subscription runtime on PostgreSQL: an upstream whose subscription
// is woken by LISTEN/NOTIFY, followed into a PostgreSQL view, batched. Drop
// terminates the LISTEN connection's backend and ends the subscriptions.
var followHarness = followtest.Harness{
	Name: "postgres",
	Open: func(tb testing.TB, opts eventsourcing.Options) followtest.Upstream {
		app := openUpstream(tb, opts, testEnv(tb, opts.Name))
		src := followtest.NewDroppingSource(app.Recorder())
		drop := func(tb testing.TB) {
			if pid := postgres.ListenerPID(app.Factory().(*postgres.Factory)); pid != 0 {
				adminExec(tb, "SELECT pg_terminate_backend($1)", int32(pid))
			}
			src.Drop()
		}
		return followtest.Upstream{App: app, Source: src, Drop: drop}
	},
	View: func(tb testing.TB) followtest.View {
		// Without TLS: pgx drains a connection whose query a stopping
		// follower cancelled before closing it, and over TLS that drain
		// can hold the pool's Close for its full 15 s.
		return openView(tb, testEnv(tb, "FollowTest", "POSTGRES_SSLMODE", "disable"))
	},
}

func openUpstream(tb testing.TB, opts eventsourcing.Options, env config.Env) *eventsourcing.Application {
	f, err := postgres.Open(tb.Context(), env)
	require.NoError(tb, err)
	opts.Factory = f // the application closes it
	return followtest.NewApplication(tb, opts, nil)
}

func openView(tb testing.TB, env config.Env) followtest.View {
	v, err := pgview.Open(tb.Context(), env)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = v.Close() })
	seen := v.Table("seen")
	require.NoError(tb, v.Exec(tb.Context(), "CREATE TABLE IF NOT EXISTS "+seen+" (notification_id bigint PRIMARY KEY, seq bigint NOT NULL)"))
	return followView{View: v, seen: seen}
}

type followView struct {
	*pgview.View
	seen string
}

func (v followView) Record(ctx context.Context, t recorder.Tracking, s followtest.Seen) error {
	return v.Update(ctx, t, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO "+v.seen+" VALUES ($1, $2)", s.NotificationID, s.Seq)
		return err
	})
}

// Reset implements projection.Rebuilder.
func (v followView) Reset(ctx context.Context) error {
	return v.ResetTracking(ctx, "DELETE FROM "+v.seen)
}

func (v followView) Seen(ctx context.Context) ([]followtest.Seen, error) {
	rows, err := v.Pool().Query(ctx, "SELECT notification_id, seq FROM "+v.seen+" ORDER BY notification_id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return followtest.ScanSeen(rows)
}

// A follower process killed in the middle of catching up and started again
// processes every event once. The processes share a schema, named in a
// file of the directory; the first to open it (the test) drops it at the end.
func TestFollowCrash(t *testing.T) {
	requirePostgres(t)
	followtest.RunCrash(t, followtest.CrashHarness{
		Name: "postgres",
		Open: func(tb testing.TB, opts eventsourcing.Options, dir string) (*eventsourcing.Application, followtest.View) {
			file := filepath.Join(dir, "schema")
			name, err := os.ReadFile(file)
			if errors.Is(err, os.ErrNotExist) {
				name = []byte("es_test_" + strings.ReplaceAll(uuid.NewString()[:13], "-", ""))
				require.NoError(tb, os.WriteFile(file, name, 0o600))
				tb.Cleanup(func() { dropSchema(tb, string(name)) })
			} else {
				require.NoError(tb, err)
			}
			return openUpstream(tb, opts, schemaEnv(opts.Name, string(name))),
				openView(tb, schemaEnv("FollowTest", string(name), "POSTGRES_SSLMODE", "disable"))
		},
	})
}

func TestFollow(t *testing.T) {
	requirePostgres(t)
	followtest.Run(t, followHarness)
}

func BenchmarkFollow(b *testing.B) {
	requirePostgres(b)
	followtest.Bench(b, followHarness)
}
