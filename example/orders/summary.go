package orders

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/projection/pgview"
	"github.com/eventsourcing-go/eventsourcing/projection/sqlview"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// SummaryView is the OrdersSummary projection's materialised view: how many
// orders were created, reserved and paid. Its query methods are served
// over gRPC by the projection's server.
type SummaryView interface {
	projection.View
	projection.Rebuilder
	// count adds one to a column and records t, atomically.
	count(ctx context.Context, t recorder.Tracking, column string) error
	read(ctx context.Context, column string) (int, error)
}

// OrdersSummary counts the Orders application's orders as they are
// created, reserved and paid.
type OrdersSummary struct{ View SummaryView }

// Name implements projection.Projection.
func (OrdersSummary) Name() string { return "OrdersSummary" }

// Topics implements projection.Projection: only the Order's events.
func (OrdersSummary) Topics() []string {
	return []string{topicPrefix + "Order.Created", topicPrefix + "Order.Reserved", topicPrefix + "Order.Paid"}
}

// Process implements projection.Projection.
func (p OrdersSummary) Process(ctx context.Context, e eventsourcing.Event, t recorder.Tracking) (bool, error) {
	switch e.Data.(type) {
	case OrderCreated:
		return true, p.View.count(ctx, t, "created")
	case OrderReserved:
		return true, p.View.count(ctx, t, "reserved")
	case OrderPaid:
		return true, p.View.count(ctx, t, "paid")
	}
	return false, nil
}

// Settings of the OrdersSummary view, read under the projection's name
// (ORDERSSUMMARY_VIEW_MODULE) and then without it.
const (
	// EnvViewModule selects the view's database: "sqlite" (the default)
	// or "postgres" (with the POSTGRES_* settings).
	EnvViewModule = "VIEW_MODULE"
)

// NewOrdersSummary builds the projection and its view from settings: an
// SQLite view by default (ORDERSSUMMARY_SQLITE_DBNAME, a temporary
// database when unset), a PostgreSQL one with ORDERSSUMMARY_VIEW_MODULE=postgres.
func NewOrdersSummary(ctx context.Context, env map[string]string) (projection.Projection, projection.View, error) {
	e := config.NewEnv("OrdersSummary", env)
	var (
		v   SummaryView
		err error
	)
	switch m := strings.ToLower(e.String(EnvViewModule, "sqlite")); m {
	case "sqlite":
		if _, ok := e.Lookup("SQLITE_DBNAME"); !ok {
			e = config.NewEnv("OrdersSummary", mergeEnv(env, map[string]string{"ORDERSSUMMARY_SQLITE_DBNAME": ":memory:"}))
		}
		v, err = OpenSQLiteSummary(ctx, e)
	case "postgres", "postgresql":
		v, err = OpenPostgresSummary(ctx, e)
	default:
		return nil, nil, fmt.Errorf("%w: %s=%q: the OrdersSummary view is kept in sqlite or postgres", config.ErrConfiguration, e.Prefixed(EnvViewModule), m)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("OrdersSummary view: %w", err)
	}
	return OrdersSummary{View: v}, v, nil
}

func mergeEnv(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

var summaryColumns = []string{"created", "reserved", "paid"}

// SQLiteSummary is the OrdersSummary view in SQLite.
type SQLiteSummary struct {
	*sqlview.View
	incr map[string]*sql.Stmt
}

// OpenSQLiteSummary opens the view as env configures it and creates its table.
func OpenSQLiteSummary(ctx context.Context, env config.Env) (*SQLiteSummary, error) {
	v, err := sqlview.Open(ctx, env)
	if err != nil {
		return nil, err
	}
	if err := v.Exec(ctx,
		`CREATE TABLE IF NOT EXISTS orders_summary (id INTEGER PRIMARY KEY CHECK (id = 1),
			created BIGINT NOT NULL DEFAULT 0, reserved BIGINT NOT NULL DEFAULT 0, paid BIGINT NOT NULL DEFAULT 0)`,
		`INSERT INTO orders_summary (id) VALUES (1) ON CONFLICT (id) DO NOTHING`); err != nil {
		return nil, errors.Join(err, v.Close())
	}
	s := &SQLiteSummary{View: v, incr: map[string]*sql.Stmt{}}
	for _, c := range summaryColumns {
		stmt, err := v.DB().PrepareContext(ctx, "UPDATE orders_summary SET "+c+" = "+c+" + 1 WHERE id = 1")
		if err != nil {
			return nil, errors.Join(err, v.Close())
		}
		s.incr[c] = stmt
	}
	return s, nil
}

func (s *SQLiteSummary) count(ctx context.Context, t recorder.Tracking, column string) error {
	return s.Update(ctx, t, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.StmtContext(ctx, s.incr[column]).ExecContext(ctx)
		return err
	})
}

func (s *SQLiteSummary) read(ctx context.Context, column string) (n int, err error) {
	err = s.DB().QueryRowContext(ctx, "SELECT "+column+" FROM orders_summary WHERE id = 1").Scan(&n)
	return n, err
}

// Reset implements projection.Rebuilder.
func (s *SQLiteSummary) Reset(ctx context.Context) error {
	return s.ResetTracking(ctx, "UPDATE orders_summary SET created = 0, reserved = 0, paid = 0 WHERE id = 1")
}

// summaryQueries are the summary views' queries, which the projection's
// server lets clients retry.
func summaryQueries() []string { return []string{"CountCreated", "CountReserved", "CountPaid"} }

// QueryMethods implements grpcapp.QueryDeclarer.
func (*SQLiteSummary) QueryMethods() []string { return summaryQueries() }

// CountCreated returns how many orders were created.
func (s *SQLiteSummary) CountCreated(ctx context.Context) (int, error) { return s.read(ctx, "created") }

// CountReserved returns how many orders were reserved.
func (s *SQLiteSummary) CountReserved(ctx context.Context) (int, error) {
	return s.read(ctx, "reserved")
}

// CountPaid returns how many orders were paid.
func (s *SQLiteSummary) CountPaid(ctx context.Context) (int, error) { return s.read(ctx, "paid") }

// PostgresSummary is the OrdersSummary view in PostgreSQL.
type PostgresSummary struct {
	*pgview.View
	table string
}

// OpenPostgresSummary connects as env configures it and creates the view's table.
func OpenPostgresSummary(ctx context.Context, env config.Env) (*PostgresSummary, error) {
	v, err := pgview.Open(ctx, env)
	if err != nil {
		return nil, err
	}
	table := v.Table("orders_summary")
	if err := v.Exec(ctx,
		`CREATE TABLE IF NOT EXISTS `+table+` (id int PRIMARY KEY CHECK (id = 1),
			created bigint NOT NULL DEFAULT 0, reserved bigint NOT NULL DEFAULT 0, paid bigint NOT NULL DEFAULT 0)`,
		`INSERT INTO `+table+` (id) VALUES (1) ON CONFLICT (id) DO NOTHING`); err != nil {
		return nil, errors.Join(err, v.Close())
	}
	return &PostgresSummary{View: v, table: table}, nil
}

func (s *PostgresSummary) count(ctx context.Context, t recorder.Tracking, column string) error {
	return s.Update(ctx, t, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE "+s.table+" SET "+column+" = "+column+" + 1 WHERE id = 1")
		return err
	})
}

func (s *PostgresSummary) read(ctx context.Context, column string) (n int, err error) {
	err = s.Pool().QueryRow(ctx, "SELECT "+column+" FROM "+s.table+" WHERE id = 1").Scan(&n)
	return n, err
}

// Reset implements projection.Rebuilder.
func (s *PostgresSummary) Reset(ctx context.Context) error {
	return s.ResetTracking(ctx, "UPDATE "+s.table+" SET created = 0, reserved = 0, paid = 0 WHERE id = 1")
}

// QueryMethods implements grpcapp.QueryDeclarer.
func (*PostgresSummary) QueryMethods() []string { return summaryQueries() }

// CountCreated returns how many orders were created.
func (s *PostgresSummary) CountCreated(ctx context.Context) (int, error) {
	return s.read(ctx, "created")
}

// CountReserved returns how many orders were reserved.
func (s *PostgresSummary) CountReserved(ctx context.Context) (int, error) {
	return s.read(ctx, "reserved")
}

// CountPaid returns how many orders were paid.
func (s *PostgresSummary) CountPaid(ctx context.Context) (int, error) { return s.read(ctx, "paid") }
