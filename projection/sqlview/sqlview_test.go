package sqlview_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/projection/sqlview"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func TestUpdateAndBatch(t *testing.T) {
	for _, db := range []string{":memory:", "file"} {
		t.Run(db, func(t *testing.T) {
			ctx := t.Context()
			if db == "file" {
				db = filepath.Join(t.TempDir(), "view.db")
			}
			v, err := sqlview.Open(ctx, config.NewEnvFrom("View", map[string]string{"SQLITE_DBNAME": db}, nil))
			require.NoError(t, err)
			defer v.Close()
			require.NoError(t, v.Exec(ctx, "CREATE TABLE IF NOT EXISTS n (v INTEGER)", "INSERT INTO n VALUES (0)"))
			incr := func(ctx context.Context, id int64) error {
				return v.Update(ctx, recorder.Tracking{ApplicationName: "up", NotificationID: id}, func(ctx context.Context, tx *sql.Tx) error {
					_, err := tx.ExecContext(ctx, "UPDATE n SET v = v + 1")
					return err
				})
			}
			value := func() (n int) {
				require.NoError(t, v.DB().QueryRowContext(ctx, "SELECT v FROM n").Scan(&n))
				return n
			}
			require.NoError(t, incr(ctx, 1))
			require.ErrorIs(t, incr(ctx, 1), recorder.ErrIntegrity)
			assert.Equal(t, 1, value())

			require.NoError(t, v.Batch(ctx, func(ctx context.Context) error {
				for id := int64(2); id <= 5; id++ {
					if err := incr(ctx, id); err != nil {
						return err
					}
				}
				return nil
			}))
			assert.Equal(t, 5, value())
			id, _, err := v.MaxTrackingID(ctx, "up")
			require.NoError(t, err)
			assert.EqualValues(t, 5, id)

			boom := errors.New("boom")
			err = v.Batch(ctx, func(ctx context.Context) error {
				require.NoError(t, incr(ctx, 6))
				require.ErrorIs(t, incr(ctx, 6), recorder.ErrIntegrity, "checked within the batch")
				return boom
			})
			require.ErrorIs(t, err, boom)
			assert.Equal(t, 5, value(), "a failed batch records nothing")
			ok, err := v.HasTrackingID(ctx, "up", 6)
			require.NoError(t, err)
			assert.False(t, ok)
		})
	}
}
