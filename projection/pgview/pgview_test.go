package pgview_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/projection/pgview"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// openView opens a view in a schema of its own on the server the
// POSTGRES_* variables name, and drops the schema at the end.
func openView(t *testing.T) *pgview.View {
	t.Helper()
	if os.Getenv("POSTGRES_HOST") == "" {
		t.Skip("POSTGRES_HOST is not set")
	}
	schema := "es_test_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	m := map[string]string{"POSTGRES_SCHEMA": schema}
	for _, k := range []string{"POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DBNAME"} {
		m[k] = os.Getenv(k)
	}
	v, err := pgview.Open(t.Context(), config.NewEnvFrom("View", m, nil))
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = v.Pool().Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		_ = v.Close()
	})
	return v
}

func TestUpdateAndBatch(t *testing.T) {
	v := openView(t)
	ctx := t.Context()
	n := v.Table("n")
	require.NoError(t, v.Exec(ctx, "CREATE TABLE "+n+" (v bigint)", "INSERT INTO "+n+" VALUES (0)"))
	incr := func(ctx context.Context, id int64) error {
		return v.Update(ctx, recorder.Tracking{ApplicationName: "up", NotificationID: id}, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "UPDATE "+n+" SET v = v + 1")
			return err
		})
	}
	value := func() (x int) {
		require.NoError(t, v.Pool().QueryRow(ctx, "SELECT v FROM "+n).Scan(&x))
		return x
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
	id, ok, err := v.MaxTrackingID(ctx, "up")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.EqualValues(t, 5, id)

	boom := errors.New("boom")
	err = v.Batch(ctx, func(ctx context.Context) error {
		require.NoError(t, incr(ctx, 6))
		require.ErrorIs(t, incr(ctx, 6), recorder.ErrIntegrity, "checked within the batch")
		return boom
	})
	require.ErrorIs(t, err, boom)
	assert.Equal(t, 5, value(), "a failed batch records nothing")
	has, err := v.HasTrackingID(ctx, "up", 6)
	require.NoError(t, err)
	assert.False(t, has)
}
