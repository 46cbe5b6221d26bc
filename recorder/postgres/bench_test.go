package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/postgres"
	"github.com/eventsourcing-go/eventsourcing/recorder/recordertest"
)

var benchState = []byte(`{"originator_id":"6f1c4b1e-64f5-4c4b-9a2e-0a3f5f6d2b11","timestamp":"2024-05-01T12:00:00.123456789Z","name":"Fido","trick":"roll over"}`)

const benchTopic = "example:Dog.TrickAdded"

// BenchmarkRecorder runs the shared recorder benchmarks.
func BenchmarkRecorder(b *testing.B) {
	requirePostgres(b)
	f := factory
	f.BenchAggregates = 1000
	recordertest.Bench(b, f)
}

// rawBench is the substrate the recorder is measured against: a table of
// the recorder's own definition (CREATE TABLE ... LIKE its events table,
// INCLUDING ALL: the same columns, primary key and unique notification id,
// no sequence) written through the recorder's own pool, so that the
// connections, their settings and the durability (synchronous_commit) are
// the recorder's. Notification ids come from a counter in the client.
type rawBench struct {
	rec    recorder.ApplicationRecorder
	pool   *pgxpool.Pool
	insert string
	next   int64
}

func newRawBench(b *testing.B) *rawBench {
	requirePostgres(b)
	ctx := b.Context()
	env := testEnv(b, "bench")
	schema, _ := env.Lookup("POSTGRES_SCHEMA")
	f, err := postgres.Open(ctx, env)
	require.NoError(b, err)
	b.Cleanup(func() { _ = f.Close() })
	pf := f.(*postgres.Factory)
	rec, err := pf.ApplicationRecorder(ctx)
	require.NoError(b, err)
	pool := postgres.Pool(pf)
	events := pgx.Identifier{schema, pf.Tables().Events}.Sanitize()
	raw := pgx.Identifier{schema, "raw_events"}.Sanitize()
	_, err = pool.Exec(ctx, "CREATE TABLE "+raw+" (LIKE "+events+" INCLUDING ALL)")
	require.NoError(b, err)
	return &rawBench{rec: rec, pool: pool,
		insert: "INSERT INTO " + raw + " (originator_id, originator_version, topic, state, notification_id) VALUES ($1, $2, $3, $4, $5)"}
}

// tx inserts one row in one transaction, BEGIN, INSERT and COMMIT sent
// together: one round trip, as the recorder's save is.
func (r *rawBench) tx(ctx context.Context, id string) error {
	r.next++
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(r.insert, id, 0, benchTopic, benchState, r.next)
	b.Queue("COMMIT")
	return r.pool.SendBatch(ctx, b).Close()
}

// txPerStatement inserts one row in one transaction, a round trip per
// statement (pgx.BeginFunc).
func (r *rawBench) txPerStatement(ctx context.Context, id string) error {
	r.next++
	return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, r.insert, id, 0, benchTopic, benchState, r.next)
		return err
	})
}

// autocommit inserts one row by one autocommitted INSERT.
func (r *rawBench) autocommit(ctx context.Context, id string) error {
	r.next++
	_, err := r.pool.Exec(ctx, r.insert, id, 0, benchTopic, benchState, r.next)
	return err
}

// save is the recorder's: a new one-event aggregate.
func (r *rawBench) save(ctx context.Context, id string) error {
	_, err := r.rec.InsertEvents(ctx, []recorder.StoredEvent{{OriginatorID: id, Topic: benchTopic, State: benchState}})
	return err
}

// BenchmarkRawInsert is the substrate of the recorder's one-event save (see
// rawBench): one row inserted per transaction, in one round trip (Tx), a
// round trip per statement (TxPerStatement), and autocommitted (Autocommit).
func BenchmarkRawInsert(b *testing.B) {
	for _, v := range []struct {
		name string
		do   func(*rawBench, context.Context, string) error
	}{
		{"Tx", (*rawBench).tx},
		{"TxPerStatement", (*rawBench).txPerStatement},
		{"Autocommit", (*rawBench).autocommit},
	} {
		b.Run(v.name, func(b *testing.B) {
			r := newRawBench(b)
			ctx := b.Context()
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = uuid.NewString()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := v.do(r, ctx, ids[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkSaveVsRaw measures the recorder's one-event save and the raw
// one-round-trip insert transaction (rawBench.tx) alternately in one loop, on
// the same pool, each starting every other iteration, so that both see the
// same load and the same disk: it reports the median time of each and the
// ratio of the medians (save over raw).
func BenchmarkSaveVsRaw(b *testing.B) {
	r := newRawBench(b)
	ctx := b.Context()
	save := make([]time.Duration, 0, b.N)
	raw := make([]time.Duration, 0, b.N)
	timed := func(do func(context.Context, string) error, into *[]time.Duration) {
		id := uuid.NewString()
		t0 := time.Now()
		if err := do(ctx, id); err != nil {
			b.Fatal(err)
		}
		*into = append(*into, time.Since(t0))
	}
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			timed(r.save, &save)
			timed(r.tx, &raw)
		} else {
			timed(r.tx, &raw)
			timed(r.save, &save)
		}
		i++
	}
	ms, mr := medianDuration(save), medianDuration(raw)
	b.ReportMetric(float64(ms.Nanoseconds()), "save-ns/op")
	b.ReportMetric(float64(mr.Nanoseconds()), "raw-ns/op")
	b.ReportMetric(float64(ms)/float64(mr), "ratio")
}

func medianDuration(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}
