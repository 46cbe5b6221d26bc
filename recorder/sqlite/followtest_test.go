package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/follow/followtest"
	"github.com/eventsourcing-go/eventsourcing/projection/sqlview"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// The subscription runtime on SQLite: an upstream in a file (synchronous
// NORMAL) woken in process, followed into an SQLite view, batched.
var followHarness = followtest.Harness{
	Name: "sqlite",
	Open: func(tb testing.TB, opts eventsourcing.Options) followtest.Upstream {
		env := map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": fileDB(tb), "SQLITE_SYNCHRONOUS": "NORMAL"}
		return followtest.Upstream{App: followtest.NewApplication(tb, opts, env)}
	},
	View: func(tb testing.TB) followtest.View { return openView(tb, filepath.Join(tb.TempDir(), "view.db")) },
}

// openView opens (creating if need be) an SQLite view of the suite's events.
func openView(tb testing.TB, path string) followtest.View {
	env := config.NewEnvFrom("FollowTest", map[string]string{"SQLITE_DBNAME": path, "SQLITE_SYNCHRONOUS": "NORMAL"}, nil)
	v, err := sqlview.Open(tb.Context(), env)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = v.Close() })
	require.NoError(tb, v.Exec(tb.Context(), "CREATE TABLE IF NOT EXISTS seen (notification_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL)"))
	return followView{v}
}

type followView struct{ *sqlview.View }

func (v followView) Record(ctx context.Context, t recorder.Tracking, s followtest.Seen) error {
	return v.Update(ctx, t, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO seen VALUES (?, ?)", s.NotificationID, s.Seq)
		return err
	})
}

// Reset implements projection.Rebuilder.
func (v followView) Reset(ctx context.Context) error { return v.ResetTracking(ctx, "DELETE FROM seen") }

func (v followView) Seen(ctx context.Context) ([]followtest.Seen, error) {
	rows, err := v.DB().QueryContext(ctx, "SELECT notification_id, seq FROM seen ORDER BY notification_id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return followtest.ScanSeen(rows)
}

func TestFollow(t *testing.T) { followtest.Run(t, followHarness) }

func BenchmarkFollow(b *testing.B) { followtest.Bench(b, followHarness) }

// A follower process killed in the middle of catching up and started again
// processes every event once: the upstream and the view are files.
func TestFollowCrash(t *testing.T) {
	followtest.RunCrash(t, followtest.CrashHarness{
		Name: "sqlite",
		Open: func(tb testing.TB, opts eventsourcing.Options, dir string) (*eventsourcing.Application, followtest.View) {
			env := map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": filepath.Join(dir, "up.db"), "SQLITE_SYNCHRONOUS": "NORMAL"}
			return followtest.NewApplication(tb, opts, env), openView(tb, filepath.Join(dir, "view.db"))
		},
	})
}
