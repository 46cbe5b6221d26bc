package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/recorder/recordertest"
)

var benchState = []byte(`{"originator_id":"6f1c4b1e-64f5-4c4b-9a2e-0a3f5f6d2b11","timestamp":"2024-05-01T12:00:00.123456789Z","name":"Fido","trick":"roll over"}`)

// BenchmarkRecorder runs the shared recorder benchmarks on a file database
// with each durability setting.
func BenchmarkRecorder(b *testing.B) {
	b.Run("FULL", func(b *testing.B) { recordertest.Bench(b, factory(fileDB)) })
	b.Run("NORMAL", func(b *testing.B) { recordertest.Bench(b, factory(fileDB, "SQLITE_SYNCHRONOUS", "NORMAL")) })
}

// BenchmarkRawInsert is the substrate the recorder is measured against: one
// single-row INSERT transaction (BEGIN IMMEDIATE, INSERT, COMMIT) of the same
// row into the same table, through the same driver with the same pragmas.
func BenchmarkRawInsert(b *testing.B) {
	for _, mode := range []string{"FULL", "NORMAL"} {
		b.Run(mode, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "raw.db")
			db, err := sql.Open("sqlite", path+"?_busy_timeout=5000&_txlock=immediate&_journal_mode=WAL&_synchronous="+mode)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			if _, err := db.Exec(`CREATE TABLE stored_events (id INTEGER PRIMARY KEY, originator_id TEXT NOT NULL,
				originator_version INTEGER NOT NULL, topic TEXT NOT NULL, state BLOB, UNIQUE (originator_id, originator_version))`); err != nil {
				b.Fatal(err)
			}
			stmt, err := db.Prepare("INSERT INTO stored_events (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)")
			if err != nil {
				b.Fatal(err)
			}
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = uuid.NewString()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				tx, err := db.Begin()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tx.Stmt(stmt).Exec(ids[i], 0, "example:Dog.TrickAdded", benchState); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
