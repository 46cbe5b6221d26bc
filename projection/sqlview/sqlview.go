// Package sqlview is the base of SQLite views: a tracking recorder in a
// table of the view's database, and transactions that run the user's SQL and
// the tracking insert together, so that every event is projected exactly once.
//
// Embed *View in a view type, create its tables with Exec, and update them in
// Update:
//
//	type CountView struct{ *sqlview.View }
//
//	func (v CountView) IncrDogs(ctx context.Context, t recorder.Tracking) error {
//		return v.Update(ctx, t, func(ctx context.Context, tx *sql.Tx) error {
//			_, err := tx.ExecContext(ctx, "UPDATE counters SET dogs = dogs + 1")
//			return err
//		})
//	}
//
// Settings are read with the projection's name as prefix: SQLITE_DBNAME (a
// file path, or ":memory:"), SQLITE_LOCK_TIMEOUT, SQLITE_SYNCHRONOUS, as the
// sqlite persistence module reads them.
package sqlview

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/internal/sqlrows"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/sqlite"
)

// DefaultTrackingTable is the table of the view's tracking records.
const DefaultTrackingTable = "view_tracking"

// View is an SQLite view's base. It is safe for concurrent use.
type View struct {
	db     *sql.DB
	ownsDB bool
	table  string
	upsert string
	closed atomic.Bool
	track  *sqlrows.Tracker[*sql.Tx]
}

var (
	_ recorder.TrackingRecorder = (*View)(nil)
	_ interface {
		Batch(context.Context, func(context.Context) error) error
	} = (*View)(nil)
)

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Open opens (creating if need be) the view's database as env configures it:
// SQLITE_DBNAME is required; SQLITE_LOCK_TIMEOUT and SQLITE_SYNCHRONOUS are
// honoured. ":memory:" is a private in-memory database on one connection.
// Close closes the database.
func Open(ctx context.Context, env config.Env) (*View, error) {
	cfg, err := sqlite.ParseConfig(env)
	if err != nil {
		return nil, err
	}
	var db *sql.DB
	if cfg.DBName == ":memory:" {
		db, err = sql.Open("sqlite", fmt.Sprintf(":memory:?_busy_timeout=%d&_txlock=immediate", cfg.LockTimeout.Milliseconds()))
		if err == nil {
			// Every connection to ":memory:" is its own database: keep one.
			db.SetMaxOpenConns(1)
			db.SetConnMaxLifetime(0)
			db.SetConnMaxIdleTime(0)
		}
	} else {
		sep := "?"
		if strings.Contains(cfg.DBName, "?") {
			sep = "&"
		}
		db, err = sql.Open("sqlite", fmt.Sprintf("%s%s_busy_timeout=%d&_txlock=immediate&_journal_mode=WAL&_synchronous=%s",
			cfg.DBName, sep, cfg.LockTimeout.Milliseconds(), cfg.Synchronous))
	}
	if err != nil {
		return nil, recorder.Errorf(recorder.ErrInterface, "open sqlite view", "%w", err)
	}
	v, err := New(ctx, db, DefaultTrackingTable)
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	v.ownsDB = true
	return v, nil
}

// New returns a view on a database the caller opened (and closes), with its
// tracking records in the named table, created if need be. Open the database
// with _txlock=immediate, so that concurrent writers queue instead of failing.
func New(ctx context.Context, db *sql.DB, trackingTable string) (*View, error) {
	if !identifier.MatchString(trackingTable) {
		return nil, recorder.Errorf(recorder.ErrProgramming, "sqlite view", "tracking table name %q is not a plain identifier", trackingTable)
	}
	v := &View{db: db, table: trackingTable}
	v.upsert = sqlrows.UpsertTrackingSQL(trackingTable, "?, ?")
	v.track = sqlrows.NewTracker(v.tx,
		func(ctx context.Context, tx *sql.Tx, name string) (int64, bool, error) {
			return v.maxTrackingID(ctx, tx, name)
		},
		func(ctx context.Context, name string) (int64, bool, error) { return v.maxTrackingID(ctx, v.db, name) },
		v.insertTracking)
	if err := v.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+trackingTable+` (
		application_name TEXT PRIMARY KEY,
		notification_id INTEGER NOT NULL) WITHOUT ROWID`); err != nil {
		return nil, err
	}
	return v, nil
}

// DB returns the view's database, for queries.
func (v *View) DB() *sql.DB { return v.db }

// Close closes the database if Open opened it.
func (v *View) Close() error {
	if !v.closed.CompareAndSwap(false, true) || !v.ownsDB {
		return nil
	}
	return v.db.Close()
}

// Exec runs statements (such as CREATE TABLE IF NOT EXISTS) in one transaction.
func (v *View) Exec(ctx context.Context, stmts ...string) error {
	return v.tx(ctx, "exec", func(tx *sql.Tx) error {
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
}

func (v *View) tx(ctx context.Context, op string, fn func(tx *sql.Tx) error) (err error) {
	tx, err := v.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap(op, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return wrap(op, err)
	}
	if err = tx.Commit(); err != nil {
		return wrap(op, err)
	}
	return nil
}

// wrap gives a driver error a recorder error kind, leaving errors that
// already have one (and the user's own) as they are.
func wrap(op string, err error) error {
	var re *recorder.Error
	if errors.As(err, &re) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &recorder.Error{Kind: recorder.ErrOperational, Op: "sqlite view: " + op, Err: err}
}

// Update runs fn in a transaction together with the tracking record t: both
// are committed, or neither. When t does not advance the position, it fails
// with recorder.ErrIntegrity and fn does not run. Inside Batch, the batch's
// transaction is used and the position is written when the batch commits.
func (v *View) Update(ctx context.Context, t recorder.Tracking, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return v.track.Update(ctx, t, fn)
}

// Batch runs fn in one transaction: every Update made with the context fn
// receives joins it, and the last position of each application is written
// at commit. If fn fails, nothing of it is recorded.
func (v *View) Batch(ctx context.Context, fn func(ctx context.Context) error) error {
	return v.track.Batch(ctx, fn)
}

func (v *View) insertTracking(ctx context.Context, tx *sql.Tx, t recorder.Tracking) error {
	res, err := tx.ExecContext(ctx, v.upsert, t.ApplicationName, t.NotificationID)
	if err != nil {
		return err
	}
	return sqlrows.Upserted(res, t)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (v *View) maxTrackingID(ctx context.Context, q querier, name string) (int64, bool, error) {
	id, ok, err := sqlrows.ScanTracking(q.QueryRowContext(ctx, sqlrows.SelectTrackingSQL(v.table, "?"), name), sql.ErrNoRows)
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

// Wait returns when the position has reached notificationID; see recorder.WaitFor.
// Commits of this process wake it at once; others are seen by polling.
func (v *View) Wait(ctx context.Context, applicationName string, notificationID int64, timeout time.Duration) error {
	return v.track.Wait(ctx, applicationName, notificationID, timeout)
}

// ResetTracking deletes the view's tracking records and runs stmts (which
// empty the view's own tables) in one transaction: the core of a view's
// Reset, for rebuilds.
func (v *View) ResetTracking(ctx context.Context, stmts ...string) error {
	return v.Exec(ctx, append([]string{"DELETE FROM " + v.table}, stmts...)...)
}
