package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventsourcing-go/eventsourcing/recorder/recordertest"
)

var benchState = []byte(`{"originator_id":"6f1c4b1e-64f5-4c4b-9a2e-0a3f5f6d2b11","timestamp":"2024-05-01T12:00:00.123456789Z","name":"Fido","trick":"roll over"}`)

// BenchmarkRecorder runs the shared recorder benchmarks.
func BenchmarkRecorder(b *testing.B) {
	requirePostgres(b)
	f := factory
	f.BenchAggregates = 1000
	recordertest.Bench(b, f)
}

// BenchmarkRawInsert is the substrate the recorder is measured against: the
// same row inserted through the same driver and pool into a table of the same
// shape, as a single-row transaction (BEGIN, INSERT, COMMIT) and as one
// autocommitted INSERT.
func BenchmarkRawInsert(b *testing.B) {
	requirePostgres(b)
	ctx := context.Background()
	env := testEnv(b, "raw")
	schema, _ := env.Lookup("POSTGRES_SCHEMA")
	pool, err := pgxpool.New(ctx, adminDSN())
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	table := pgx.Identifier{schema, "raw_events"}.Sanitize()
	for _, s := range []string{
		"CREATE SCHEMA " + pgx.Identifier{schema}.Sanitize(),
		"CREATE TABLE " + table + ` (originator_id uuid NOT NULL, originator_version bigint NOT NULL, topic text NOT NULL,
			state bytea, notification_id bigserial NOT NULL UNIQUE, PRIMARY KEY (originator_id, originator_version))`,
	} {
		if _, err := pool.Exec(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	insert := "INSERT INTO " + table + " (originator_id, originator_version, topic, state) VALUES ($1, $2, $3, $4)"
	run := func(b *testing.B, do func(id string) error) {
		ids := make([]string, b.N)
		for i := range ids {
			ids[i] = uuid.NewString()
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if err := do(ids[i]); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	}
	b.Run("Tx", func(b *testing.B) {
		run(b, func(id string) error {
			return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, insert, id, 0, "example:Dog.TrickAdded", benchState)
				return err
			})
		})
	})
	b.Run("Autocommit", func(b *testing.B) {
		run(b, func(id string) error {
			_, err := pool.Exec(ctx, insert, id, 0, "example:Dog.TrickAdded", benchState)
			return err
		})
	})
}
