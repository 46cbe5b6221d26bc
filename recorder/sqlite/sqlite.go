package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/persistence"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func init() {
	persistence.Register("sqlite", Open, "eventsourcing.sqlite")
}

// Table names. One database holds one application, so they are not prefixed.
const (
	EventsTable    = "stored_events"
	SnapshotsTable = "stored_snapshots"
	TrackingTable  = "tracking"
)

// Open opens the database env configures; it is the module's persistence.OpenFunc.
func Open(ctx context.Context, env config.Env) (recorder.Factory, error) {
	cfg, err := ParseConfig(env)
	if err != nil {
		return nil, err
	}
	return OpenConfig(ctx, cfg)
}

// OpenConfig opens a database with an explicit configuration.
func OpenConfig(ctx context.Context, cfg Config) (*Factory, error) {
	db, err := openDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Factory{db: db}, nil
}

// Factory builds the recorders of one database; they share its connections,
// its writer and its commit signal.
type Factory struct {
	db *database
}

var _ recorder.Factory = (*Factory)(nil)

// AggregateRecorder returns the recorder of stored events
// (recorder.PurposeEvents) or of snapshots (recorder.PurposeSnapshots).
func (f *Factory) AggregateRecorder(ctx context.Context, purpose recorder.Purpose) (recorder.AggregateRecorder, error) {
	switch purpose {
	case recorder.PurposeEvents:
		return &AggregateRecorder{db: f.db, table: EventsTable}, nil
	case recorder.PurposeSnapshots:
		return &AggregateRecorder{db: f.db, table: SnapshotsTable}, nil
	}
	return nil, purpose.Check()
}

// ApplicationRecorder returns the recorder of the notification log.
func (f *Factory) ApplicationRecorder(ctx context.Context) (recorder.ApplicationRecorder, error) {
	return f.processRecorder(), nil
}

// TrackingRecorder returns the recorder of tracking positions.
func (f *Factory) TrackingRecorder(ctx context.Context) (recorder.TrackingRecorder, error) {
	return &TrackingRecorder{db: f.db}, nil
}

// ProcessRecorder returns the recorder of events and tracking.
func (f *Factory) ProcessRecorder(ctx context.Context) (recorder.ProcessRecorder, error) {
	return f.processRecorder(), nil
}

func (f *Factory) processRecorder() *ProcessRecorder {
	return &ProcessRecorder{
		ApplicationRecorder: ApplicationRecorder{AggregateRecorder: AggregateRecorder{db: f.db, table: EventsTable, ids: true}},
		TrackingRecorder:    TrackingRecorder{db: f.db},
	}
}

// Close closes the database; recorders built by the factory fail afterwards
// with recorder.ErrConnectionUnavailable.
func (f *Factory) Close() error { return f.db.close() }

// database is one opened SQLite database: a writer and a pool of readers.
type database struct {
	cfg    Config
	writer *writer
	rdb    *sql.DB // readers; the writer's *sql.DB when there is one connection
	wdb    *sql.DB
	signal *recorder.Signal
	tmpDir string // removed on close, for ":memory:"
	closed atomic.Bool

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt // prepared statements, by pool and SQL text
	traced map[string]bool      // tables with the trace context column, see tracecontext.go
}

// dsn returns the driver's data source names for the writer and the readers,
// whether the database is a temporary file, and whether readers must share the
// writer's single connection.
func dsns(cfg Config) (writerDSN, readerDSN, tmpDir string, single bool, err error) {
	name := cfg.DBName
	syncMode := cfg.Synchronous
	memory := false
	switch {
	case name == ":memory:":
		// A private database in a temporary file rather than SQLite's memory
		// database: connections to ":memory:" each see their own database, and
		// shared-cache memory databases make readers fail while a write is
		// open, where WAL lets them read the last commit.
		dir := ""
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			dir = "/dev/shm"
		}
		tmpDir, err = os.MkdirTemp(dir, "eventsourcing-sqlite-")
		if err != nil {
			return "", "", "", false, recorder.Errorf(recorder.ErrOperational, "open sqlite", "temporary database: %w", err)
		}
		name = filepath.Join(tmpDir, "memory.db")
		syncMode = "OFF" // nothing of a temporary database survives the process anyway
	case strings.HasPrefix(name, "file:"):
		if u, perr := url.Parse(name); perr == nil {
			q := u.Query()
			memory = q.Get("mode") == "memory" || q.Get("vfs") == "memdb"
		}
	}
	timeout := cfg.LockTimeout.Milliseconds()
	sep := "?"
	if strings.Contains(name, "?") {
		sep = "&"
	}
	base := fmt.Sprintf("%s%s_busy_timeout=%d", name, sep, timeout)
	if memory {
		// One connection for everything: readers wait for the writer.
		dsn := base + "&_txlock=immediate&_synchronous=" + syncMode
		return dsn, dsn, "", true, nil
	}
	writerDSN = base + "&_txlock=immediate&_journal_mode=WAL&_synchronous=" + syncMode
	readerDSN = base + "&_query_only=1"
	return writerDSN, readerDSN, tmpDir, false, nil
}

func openDB(ctx context.Context, cfg Config) (_ *database, err error) {
	wdsn, rdsn, tmpDir, single, err := dsns(cfg)
	if err != nil {
		return nil, err
	}
	d := &database{cfg: cfg, tmpDir: tmpDir, signal: signalFor(cfg.DBName, tmpDir), stmts: map[string]*sql.Stmt{}}
	defer func() {
		if err != nil {
			_ = d.close()
		}
	}()
	const op = "open sqlite"
	if d.wdb, err = sql.Open("sqlite", wdsn); err != nil {
		return nil, wrap(ctx, op, err)
	}
	// One write connection, kept open for the life of the database.
	d.wdb.SetMaxOpenConns(1)
	d.wdb.SetMaxIdleConns(1)
	d.wdb.SetConnMaxLifetime(0)
	d.wdb.SetConnMaxIdleTime(0)
	// Open the writer first: it switches the file to WAL before readers open it.
	if err = d.wdb.PingContext(ctx); err != nil {
		return nil, wrap(ctx, op+" "+cfg.DBName, err)
	}
	if single {
		d.rdb = d.wdb
	} else {
		if d.rdb, err = sql.Open("sqlite", rdsn); err != nil {
			return nil, wrap(ctx, op, err)
		}
		d.rdb.SetMaxOpenConns(cfg.PoolSize + cfg.MaxOverflow)
		d.rdb.SetMaxIdleConns(max(cfg.PoolSize, 1))
	}
	d.writer = newWriter(d.wdb, d.signal)
	if cfg.CreateTable {
		if err = d.createTables(ctx); err != nil {
			return nil, err
		}
	}
	if err = d.detectTraceColumns(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

var schema = []string{
	// id is the notification id: an INTEGER PRIMARY KEY is the rowid itself,
	// so VACUUM keeps it, and without AUTOINCREMENT a new row takes max+1, so a
	// rolled-back insert leaves no gap.
	`CREATE TABLE IF NOT EXISTS ` + EventsTable + ` (
		id INTEGER PRIMARY KEY,
		originator_id TEXT NOT NULL,
		originator_version INTEGER NOT NULL,
		topic TEXT NOT NULL,
		state BLOB,
		trace_parent TEXT,
		UNIQUE (originator_id, originator_version))`,
	`CREATE TABLE IF NOT EXISTS ` + SnapshotsTable + ` (
		originator_id TEXT NOT NULL,
		originator_version INTEGER NOT NULL,
		topic TEXT NOT NULL,
		state BLOB,
		PRIMARY KEY (originator_id, originator_version)) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS ` + TrackingTable + ` (
		application_name TEXT PRIMARY KEY,
		notification_id INTEGER NOT NULL) WITHOUT ROWID`,
}

func (d *database) createTables(ctx context.Context) error {
	return d.writer.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, s := range schema {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return err
			}
		}
		return addTraceColumn(ctx, tx)
	}, "create tables")
}

// check reports an operation on a closed database.
func (d *database) check(op string) error {
	if d.closed.Load() {
		return &recorder.Error{Kind: recorder.ErrConnectionUnavailable, Op: op, Err: errClosed}
	}
	return nil
}

// stmt returns the prepared read statement for query, preparing it once.
func (d *database) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	return d.prepared(ctx, d.rdb, "r:", query)
}

// wstmt returns the prepared write statement for query, to be used in a
// transaction with tx.StmtContext, which reuses the writer connection's
// prepared statement instead of compiling the SQL again.
func (d *database) wstmt(ctx context.Context, query string) (*sql.Stmt, error) {
	return d.prepared(ctx, d.wdb, "w:", query)
}

func (d *database) prepared(ctx context.Context, db *sql.DB, pool, query string) (*sql.Stmt, error) {
	d.stmtMu.Lock()
	defer d.stmtMu.Unlock()
	if d.stmts == nil {
		return nil, errClosed
	}
	if s, ok := d.stmts[pool+query]; ok {
		return s, nil
	}
	s, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	d.stmts[pool+query] = s
	return s, nil
}

func (d *database) close() error {
	if d.closed.Swap(true) {
		return nil
	}
	var errs []error
	d.stmtMu.Lock()
	for _, s := range d.stmts {
		errs = append(errs, s.Close())
	}
	d.stmts = nil
	d.stmtMu.Unlock()
	if d.writer != nil {
		d.writer.close()
	}
	if d.rdb != nil && d.rdb != d.wdb {
		errs = append(errs, d.rdb.Close())
	}
	if d.wdb != nil {
		errs = append(errs, d.wdb.Close())
	}
	if d.tmpDir != "" {
		errs = append(errs, os.RemoveAll(d.tmpDir))
	}
	releaseSignal(d.cfg.DBName, d.tmpDir)
	if err := errors.Join(errs...); err != nil {
		return &recorder.Error{Kind: recorder.ErrOperational, Op: "close sqlite", Err: err}
	}
	return nil
}

// Commit signals are shared by every database of this process that opens the
// same file, so that a subscriber of one factory wakes at once on a commit made
// through another.
var (
	signalsMu sync.Mutex
	signals   = map[string]*sharedSignal{}
)

type sharedSignal struct {
	sig  *recorder.Signal
	refs int
}

func signalKey(name, tmpDir string) string {
	if tmpDir != "" {
		return "" // private: not shared
	}
	if abs, err := filepath.Abs(name); err == nil && !strings.HasPrefix(name, "file:") {
		return abs
	}
	return name
}

func signalFor(name, tmpDir string) *recorder.Signal {
	key := signalKey(name, tmpDir)
	if key == "" {
		return &recorder.Signal{}
	}
	signalsMu.Lock()
	defer signalsMu.Unlock()
	s, ok := signals[key]
	if !ok {
		s = &sharedSignal{sig: &recorder.Signal{}}
		signals[key] = s
	}
	s.refs++
	return s.sig
}

func releaseSignal(name, tmpDir string) {
	key := signalKey(name, tmpDir)
	if key == "" {
		return
	}
	signalsMu.Lock()
	defer signalsMu.Unlock()
	if s, ok := signals[key]; ok {
		if s.refs--; s.refs <= 0 {
			delete(signals, key)
		}
	}
}
