// Package pgview is the base of PostgreSQL views: a tracking recorder in a
// table of the view's database, and transactions that run the user's SQL and
// the tracking insert together, so that every event is projected exactly once.
//
// Embed *View in a view type, create its tables with Exec, and update them in
// Update (see package sqlview for the same shape on SQLite). Settings are the
// postgres persistence module's (POSTGRES_DBNAME, POSTGRES_HOST, ...), read
// with the projection's name as prefix; the tracking table is named after the
// projection (<name>_tracking), so several views can share a database.
package pgview

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/internal/sqlrows"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/postgres"
)

// View is a PostgreSQL view's base. It is safe for concurrent use.
type View struct {
	pool   *pgxpool.Pool
	ownsDB bool
	schema string
	table  string // qualified, quoted
	upsert string
	selMax string
	closed atomic.Bool
	track  *sqlrows.Tracker[pgx.Tx]
}

var _ recorder.TrackingRecorder = (*View)(nil)

// Open connects to the database env configures and creates the view's
// tracking table if need be. Close closes the pool.
func Open(ctx context.Context, env config.Env) (*View, error) {
	cfg, err := postgres.ParseConfig(env)
	if err != nil {
		return nil, err
	}
	tables, err := postgres.TableNames(env.Name())
	if err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.ConnString())
	if err != nil {
		return nil, fmt.Errorf("%w: PostgreSQL settings: %w", config.ErrConfiguration, err)
	}
	pc.MaxConns = int32(max(cfg.PoolSize+cfg.MaxOverflow, 1))
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, wrap("open", err)
	}
	if cfg.Schema != "" && cfg.Schema != "public" {
		if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{cfg.Schema}.Sanitize()); err != nil {
			pool.Close()
			return nil, wrap("create schema", err)
		}
	}
	v, err := New(ctx, pool, pgx.Identifier{cfg.Schema, tables.Tracking}.Sanitize())
	if err != nil {
		pool.Close()
		return nil, err
	}
	v.ownsDB, v.schema = true, cfg.Schema
	return v, nil
}

// New returns a view on a pool the caller owns, with its tracking records in
// the given table (a quoted, possibly schema-qualified name), created if need be.
func New(ctx context.Context, pool *pgxpool.Pool, trackingTable string) (*View, error) {
	v := &View{pool: pool, table: trackingTable}
	v.upsert = sqlrows.UpsertTrackingSQL(trackingTable, "$1, $2")
	v.selMax = sqlrows.SelectTrackingSQL(trackingTable, "$1")
	v.track = sqlrows.NewTracker(v.tx,
		func(ctx context.Context, tx pgx.Tx, name string) (int64, bool, error) {
			return v.maxTrackingID(ctx, tx, name)
		},
		func(ctx context.Context, name string) (int64, bool, error) { return v.maxTrackingID(ctx, v.pool, name) },
		v.insertTracking)
	if err := v.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+trackingTable+` (
		application_name text PRIMARY KEY,
		notification_id bigint NOT NULL)`); err != nil {
		return nil, err
	}
	return v, nil
}

// Table returns the quoted name of a table of the view, qualified with the
// schema of the view's settings (POSTGRES_SCHEMA) when Open opened it, for the
// user's own tables.
func (v *View) Table(name string) string {
	if v.schema == "" {
		return pgx.Identifier{name}.Sanitize()
	}
	return pgx.Identifier{v.schema, name}.Sanitize()
}

// Pool returns the view's connection pool, for queries.
func (v *View) Pool() *pgxpool.Pool { return v.pool }

// TrackingTable returns the quoted name of the tracking table.
func (v *View) TrackingTable() string { return v.table }

// Close closes the pool if Open opened it.
func (v *View) Close() error {
	if v.closed.CompareAndSwap(false, true) && v.ownsDB {
		v.pool.Close()
	}
	return nil
}

// Exec runs statements in one transaction. CREATE TABLE IF NOT EXISTS races
// between sessions in PostgreSQL, so the statements run under a transaction
// advisory lock on the table name.
func (v *View) Exec(ctx context.Context, stmts ...string) error {
	return v.tx(ctx, "exec", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", v.table); err != nil {
			return err
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
}

func (v *View) tx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, v.pool, fn)
	if err != nil {
		return wrap(op, err)
	}
	return nil
}

func wrap(op string, err error) error {
	var re *recorder.Error
	if errors.As(err, &re) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	kind := recorder.ErrOperational
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "23"):
			kind = recorder.ErrIntegrity
		case strings.HasPrefix(pe.Code, "42"):
			kind = recorder.ErrProgramming
		case strings.HasPrefix(pe.Code, "22"):
			kind = recorder.ErrData
		}
	}
	return &recorder.Error{Kind: kind, Op: "postgres view: " + op, Err: err}
}

// Update runs fn in a transaction together with the tracking record t: both
// are committed, or neither. When t does not advance the position, it fails
// with recorder.ErrIntegrity and fn does not run. Inside Batch, the batch's
// transaction is used and the position is written when the batch commits.
func (v *View) Update(ctx context.Context, t recorder.Tracking, fn func(ctx context.Context, tx pgx.Tx) error) error {
	return v.track.Update(ctx, t, fn)
}

// Batch runs fn in one transaction; see sqlview.View.Batch.
func (v *View) Batch(ctx context.Context, fn func(ctx context.Context) error) error {
	return v.track.Batch(ctx, fn)
}

func (v *View) insertTracking(ctx context.Context, tx pgx.Tx, t recorder.Tracking) error {
	tag, err := tx.Exec(ctx, v.upsert, t.ApplicationName, t.NotificationID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return sqlrows.TrackingNotAdvanced(t)
	}
	return nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (v *View) maxTrackingID(ctx context.Context, q querier, name string) (int64, bool, error) {
	id, ok, err := sqlrows.ScanTracking(q.QueryRow(ctx, v.selMax, name), pgx.ErrNoRows)
	if err != nil {
		return 0, false, wrap("max tracking id", err)
	}
	return id, ok, nil
}

// InsertTracking records t alone.
func (v *View) InsertTracking(ctx context.Context, t recorder.Tracking) error {
	return v.track.Update(ctx, t, nil)
}

// MaxTrackingID returns the application's recorded position; inside Batch,
// as the batch's transaction sees it.
func (v *View) MaxTrackingID(ctx context.Context, applicationName string) (int64, bool, error) {
	return v.track.MaxTrackingID(ctx, applicationName)
}

// HasTrackingID reports whether the position has reached notificationID.
func (v *View) HasTrackingID(ctx context.Context, applicationName string, notificationID int64) (bool, error) {
	return v.track.HasTrackingID(ctx, applicationName, notificationID)
}

// Wait returns when the position has reached notificationID; see sqlview.View.Wait.
func (v *View) Wait(ctx context.Context, applicationName string, notificationID int64, timeout time.Duration) error {
	return v.track.Wait(ctx, applicationName, notificationID, timeout)
}

// ResetTracking deletes the view's tracking records and runs stmts (which
// empty the view's own tables) in one transaction: the core of a view's
// Reset, for rebuilds.
func (v *View) ResetTracking(ctx context.Context, stmts ...string) error {
	return v.Exec(ctx, append([]string{"DELETE FROM " + v.table}, stmts...)...)
}
