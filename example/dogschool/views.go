package dogschool

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/projection/pgview"
	"github.com/eventsourcing-go/eventsourcing/projection/sqlview"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// CountView is the materialised view of the example: how many dogs were
// registered and how many tricks added. Each increment records the tracking
// record of the event that caused it, atomically.
type CountView interface {
	projection.View
	projection.Rebuilder
	IncrDogCounter(ctx context.Context, t recorder.Tracking) error
	IncrTrickCounter(ctx context.Context, t recorder.Tracking) error
	DogCounter(ctx context.Context) (int, error)
	TrickCounter(ctx context.Context) (int, error)
}

// CountProjection counts the TrainingSchool's dogs and tricks into a CountView.
type CountProjection struct{ View CountView }

// Name implements projection.Projection.
func (CountProjection) Name() string { return "CountProjection" }

// Topics implements projection.Projection: only the Dog's events are read.
func (CountProjection) Topics() []string { return []string{TopicRegistered, TopicTrickAdded} }

// Process implements projection.Projection: it counts the events it
// cares about and leaves the others' positions to the runtime.
func (p CountProjection) Process(ctx context.Context, e eventsourcing.Event, t recorder.Tracking) (bool, error) {
	switch e.Data.(type) {
	case Registered:
		return true, p.View.IncrDogCounter(ctx, t)
	case TrickAdded:
		return true, p.View.IncrTrickCounter(ctx, t)
	}
	return false, nil
}

// MemoryCountView is a CountView in memory.
type MemoryCountView struct {
	*projection.MemoryView
	dogs, tricks int
}

// NewMemoryCountView returns an empty view.
func NewMemoryCountView() *MemoryCountView {
	return &MemoryCountView{MemoryView: projection.NewMemoryView()}
}

// IncrDogCounter implements CountView.
func (v *MemoryCountView) IncrDogCounter(ctx context.Context, t recorder.Tracking) error {
	return v.Update(ctx, t, func() error { v.dogs++; return nil })
}

// IncrTrickCounter implements CountView.
func (v *MemoryCountView) IncrTrickCounter(ctx context.Context, t recorder.Tracking) error {
	return v.Update(ctx, t, func() error { v.tricks++; return nil })
}

// Reset implements projection.Rebuilder: the counts and the position go
// back to zero.
func (v *MemoryCountView) Reset(context.Context) error {
	v.ResetTracking(func() { v.dogs, v.tricks = 0, 0 })
	return nil
}

// DogCounter implements CountView.
func (v *MemoryCountView) DogCounter(context.Context) (n int, _ error) {
	v.Read(func() { n = v.dogs })
	return n, nil
}

// TrickCounter implements CountView.
func (v *MemoryCountView) TrickCounter(context.Context) (n int, _ error) {
	v.Read(func() { n = v.tricks })
	return n, nil
}

// counterTable is the view's one-row table of counters.
const counterTable = `CREATE TABLE IF NOT EXISTS count_view (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	dogs BIGINT NOT NULL DEFAULT 0,
	tricks BIGINT NOT NULL DEFAULT 0)`

const counterRow = `INSERT INTO count_view (id) VALUES (1) ON CONFLICT (id) DO NOTHING`

// SQLiteCountView is a CountView in an SQLite database.
type SQLiteCountView struct {
	*sqlview.View
	incrStmt map[string]*sql.Stmt // prepared once: a catch-up runs them thousands of times
}

// OpenSQLiteCountView opens the view's database as env configures it
// (COUNTPROJECTION_SQLITE_DBNAME) and creates its table.
func OpenSQLiteCountView(ctx context.Context, env config.Env) (*SQLiteCountView, error) {
	v, err := sqlview.Open(ctx, env)
	if err != nil {
		return nil, err
	}
	if err := v.Exec(ctx, counterTable, counterRow); err != nil {
		return nil, errors.Join(err, v.Close())
	}
	cv := &SQLiteCountView{View: v, incrStmt: map[string]*sql.Stmt{}}
	for _, column := range []string{"dogs", "tricks"} {
		stmt, err := v.DB().PrepareContext(ctx, "UPDATE count_view SET "+column+" = "+column+" + 1 WHERE id = 1")
		if err != nil {
			return nil, errors.Join(err, v.Close())
		}
		cv.incrStmt[column] = stmt
	}
	return cv, nil
}

func (v *SQLiteCountView) incr(ctx context.Context, t recorder.Tracking, column string) error {
	return v.Update(ctx, t, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.StmtContext(ctx, v.incrStmt[column]).ExecContext(ctx)
		return err
	})
}

func (v *SQLiteCountView) count(ctx context.Context, column string) (n int, err error) {
	err = v.DB().QueryRowContext(ctx, "SELECT "+column+" FROM count_view WHERE id = 1").Scan(&n)
	return n, err
}

// IncrDogCounter implements CountView.
func (v *SQLiteCountView) IncrDogCounter(ctx context.Context, t recorder.Tracking) error {
	return v.incr(ctx, t, "dogs")
}

// IncrTrickCounter implements CountView.
func (v *SQLiteCountView) IncrTrickCounter(ctx context.Context, t recorder.Tracking) error {
	return v.incr(ctx, t, "tricks")
}

// Reset implements projection.Rebuilder.
func (v *SQLiteCountView) Reset(ctx context.Context) error {
	return v.ResetTracking(ctx, "UPDATE count_view SET dogs = 0, tricks = 0 WHERE id = 1")
}

// countQueries are the count views' queries, which a projection's server
// lets clients retry.
func countQueries() []string { return []string{"DogCounter", "TrickCounter"} }

// QueryMethods implements grpcapp.QueryDeclarer.
func (*SQLiteCountView) QueryMethods() []string { return countQueries() }

// DogCounter implements CountView.
func (v *SQLiteCountView) DogCounter(ctx context.Context) (int, error) { return v.count(ctx, "dogs") }

// TrickCounter implements CountView.
func (v *SQLiteCountView) TrickCounter(ctx context.Context) (int, error) {
	return v.count(ctx, "tricks")
}

// PostgresCountView is a CountView in a PostgreSQL database.
type PostgresCountView struct {
	*pgview.View
	table string
}

// OpenPostgresCountView connects as env configures it (COUNTPROJECTION_POSTGRES_*)
// and creates the view's table, named after env's name (<name>_counts).
func OpenPostgresCountView(ctx context.Context, env config.Env) (*PostgresCountView, error) {
	v, err := pgview.Open(ctx, env)
	if err != nil {
		return nil, err
	}
	table := v.Table(strings.ToLower(env.Name()) + "_counts")
	if err := v.Exec(ctx,
		`CREATE TABLE IF NOT EXISTS `+table+` (id int PRIMARY KEY CHECK (id = 1), dogs bigint NOT NULL DEFAULT 0, tricks bigint NOT NULL DEFAULT 0)`,
		`INSERT INTO `+table+` (id) VALUES (1) ON CONFLICT (id) DO NOTHING`); err != nil {
		return nil, errors.Join(err, v.Close())
	}
	return &PostgresCountView{View: v, table: table}, nil
}

func (v *PostgresCountView) incr(ctx context.Context, t recorder.Tracking, column string) error {
	return v.Update(ctx, t, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE "+v.table+" SET "+column+" = "+column+" + 1 WHERE id = 1")
		return err
	})
}

func (v *PostgresCountView) count(ctx context.Context, column string) (n int, err error) {
	err = v.Pool().QueryRow(ctx, "SELECT "+column+" FROM "+v.table+" WHERE id = 1").Scan(&n)
	return n, err
}

// IncrDogCounter implements CountView.
func (v *PostgresCountView) IncrDogCounter(ctx context.Context, t recorder.Tracking) error {
	return v.incr(ctx, t, "dogs")
}

// IncrTrickCounter implements CountView.
func (v *PostgresCountView) IncrTrickCounter(ctx context.Context, t recorder.Tracking) error {
	return v.incr(ctx, t, "tricks")
}

// Reset implements projection.Rebuilder.
func (v *PostgresCountView) Reset(ctx context.Context) error {
	return v.ResetTracking(ctx, "UPDATE "+v.table+" SET dogs = 0, tricks = 0 WHERE id = 1")
}

// QueryMethods implements grpcapp.QueryDeclarer.
func (*PostgresCountView) QueryMethods() []string { return countQueries() }

// DogCounter implements CountView.
func (v *PostgresCountView) DogCounter(ctx context.Context) (int, error) { return v.count(ctx, "dogs") }

// TrickCounter implements CountView.
func (v *PostgresCountView) TrickCounter(ctx context.Context) (int, error) {
	return v.count(ctx, "tricks")
}
