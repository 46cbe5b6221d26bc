package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/internal/ctxtime"
	"github.com/eventsourcing-go/eventsourcing/persistence"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func init() {
	persistence.Register("postgres", Open, "eventsourcing.postgres")
}

// maxIdentifier is PostgreSQL's NAMEDATALEN-1: longer names are silently
// truncated by the server, which could make two applications share tables.
const maxIdentifier = 63

// Open opens the database env configures; it is the module's persistence.OpenFunc.
func Open(ctx context.Context, env config.Env) (recorder.Factory, error) {
	cfg, err := ParseConfig(env)
	if err != nil {
		return nil, err
	}
	return OpenConfig(ctx, cfg)
}

// Tables are the names of one application's tables.
type Tables struct {
	Events, Snapshots, Tracking string
}

// TableNames returns the tables of the named application, or an ErrProgramming
// error when a name is longer than PostgreSQL allows.
func TableNames(name string) (Tables, error) {
	t := Tables{Events: "stored_events", Snapshots: "stored_snapshots", Tracking: "notification_tracking"}
	if name != "" {
		p := strings.ToLower(name)
		t = Tables{Events: p + "_events", Snapshots: p + "_snapshots", Tracking: p + "_tracking"}
	}
	for _, n := range []string{t.Events, t.Snapshots, t.Tracking} {
		if len(n) > maxIdentifier {
			return Tables{}, recorder.Errorf(recorder.ErrProgramming, "table name",
				"%q is longer than PostgreSQL's %d-byte limit for identifiers: use a shorter application name", n, maxIdentifier)
		}
	}
	return t, nil
}

// OpenConfig opens a database with an explicit configuration.
func OpenConfig(ctx context.Context, cfg Config) (*Factory, error) {
	const op = "open postgres"
	tables, err := TableNames(cfg.Name)
	if err != nil {
		return nil, err
	}
	if len(cfg.Schema) > maxIdentifier {
		return nil, recorder.Errorf(recorder.ErrProgramming, op, "schema name %q is longer than %d bytes", cfg.Schema, maxIdentifier)
	}
	pc, err := poolConfig(cfg)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, wrap(ctx, op, err)
	}
	f := &Factory{
		cfg: cfg, pool: pool, tables: tables, signal: &recorder.Signal{},
		events:    pgx.Identifier{cfg.Schema, tables.Events}.Sanitize(),
		snapshots: pgx.Identifier{cfg.Schema, tables.Snapshots}.Sanitize(),
		tracking:  pgx.Identifier{cfg.Schema, tables.Tracking}.Sanitize(),
		channel:   pgx.Identifier{tables.Events}.Sanitize(),
	}
	f.committer = newCommitter(f)
	// Connect now, so that a wrong setting or an unreachable server is
	// reported by Open rather than by the first save, and learn whether the
	// events table keeps the trace context.
	if cfg.CreateTable {
		err = f.createTables(ctx)
	}
	if err == nil {
		err = f.detectTraceColumn(ctx)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	// The statements of every save, built once.
	idCast := ""
	if cfg.OriginatorIDType == "uuid" {
		idCast = "::uuid"
	}
	f.groupStatements = groupStatements(f, idCast)
	f.insertEvents = insertSQL(f.events, idCast, true, false, f.traced, f.tracking)
	f.lockEvents = "LOCK TABLE " + f.events + " IN EXCLUSIVE MODE"
	f.notify = "NOTIFY " + f.channel
	if lt := cfg.LockTimeout; lt > 0 {
		f.setLockTimeout = fmt.Sprintf("SET LOCAL lock_timeout = '%dms'", max(lt.Milliseconds(), 1))
	}
	return f, nil
}

// ConnString is the keyword/value connection string of the settings' host,
// port, database, user, password and SSL mode, each value quoted so that any
// password works, for pgx.ParseConfig or pgxpool.ParseConfig. It holds the
// password: do not log it.
func (c Config) ConnString() string {
	q := func(s string) string {
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
	}
	dsn := fmt.Sprintf("host=%s port=%d dbname=%s user=%s password=%s",
		q(c.Host), c.Port, q(c.DBName), q(c.User), q(c.Password))
	if c.SSLMode != "" {
		dsn += " sslmode=" + q(c.SSLMode)
	}
	return dsn
}

func poolConfig(cfg Config) (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(cfg.ConnString())
	if err != nil {
		return nil, fmt.Errorf("%w: PostgreSQL settings: %w", config.ErrConfiguration, err)
	}
	pc.MaxConns = int32(cfg.PoolSize + cfg.MaxOverflow)
	pc.MaxConnLifetime = cfg.ConnMaxAge
	pc.MaxConnLifetimeJitter = cfg.ConnMaxAge / 10
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	if cfg.IdleInTransactionTimeout > 0 {
		pc.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt(cfg.IdleInTransactionTimeout.Milliseconds(), 10)
	}
	return pc, nil
}

// Factory builds the recorders of one application on one connection pool.
type Factory struct {
	cfg                         Config
	pool                        *pgxpool.Pool
	tables                      Tables
	events, snapshots, tracking string // qualified, quoted table names
	channel                     string // quoted NOTIFY channel
	signal                      *recorder.Signal
	closed                      atomic.Bool
	committer                   *committer
	traced                      bool // the events table keeps the trace context, see tracecontext.go

	// Statements of the events table's saves.
	groupStatements          []namedStatement
	insertEvents, lockEvents string
	notify                   string
	setLockTimeout           string // empty without a lock timeout

	listenMu sync.Mutex
	listener *listener
}

var _ recorder.Factory = (*Factory)(nil)

// Tables returns the names of the factory's tables.
func (f *Factory) Tables() Tables { return f.tables }

// AggregateRecorder returns the recorder of stored events
// (recorder.PurposeEvents) or of snapshots (recorder.PurposeSnapshots).
func (f *Factory) AggregateRecorder(ctx context.Context, purpose recorder.Purpose) (recorder.AggregateRecorder, error) {
	switch purpose {
	case recorder.PurposeEvents:
		return &AggregateRecorder{f: f, table: f.events, log: true, traced: f.traced}, nil
	case recorder.PurposeSnapshots:
		return &AggregateRecorder{f: f, table: f.snapshots}, nil
	}
	return nil, purpose.Check()
}

// ApplicationRecorder returns the recorder of the notification log.
func (f *Factory) ApplicationRecorder(ctx context.Context) (recorder.ApplicationRecorder, error) {
	return f.processRecorder(), nil
}

// TrackingRecorder returns the recorder of tracking positions.
func (f *Factory) TrackingRecorder(ctx context.Context) (recorder.TrackingRecorder, error) {
	return &TrackingRecorder{f: f}, nil
}

// ProcessRecorder returns the recorder of events and tracking.
func (f *Factory) ProcessRecorder(ctx context.Context) (recorder.ProcessRecorder, error) {
	return f.processRecorder(), nil
}

func (f *Factory) processRecorder() *ProcessRecorder {
	return &ProcessRecorder{
		ApplicationRecorder: ApplicationRecorder{AggregateRecorder: AggregateRecorder{f: f, table: f.events, log: true, ids: true, traced: f.traced}},
		TrackingRecorder:    TrackingRecorder{f: f},
	}
}

// Close stops the listener and closes the pool; recorders fail afterwards with
// recorder.ErrConnectionUnavailable.
func (f *Factory) Close() error {
	if f.closed.Swap(true) {
		return nil
	}
	f.committer.close()
	f.listenMu.Lock()
	l := f.listener
	f.listener = nil
	f.listenMu.Unlock()
	if l != nil {
		l.stop()
	}
	f.pool.Close()
	return nil
}

// acquire takes a pooled connection, waiting at most the connect timeout.
func (f *Factory) acquire(ctx context.Context, op string) (*pgxpool.Conn, error) {
	if f.closed.Load() {
		return nil, &recorder.Error{Kind: recorder.ErrConnectionUnavailable, Op: op, Err: errClosed}
	}
	actx, cancel := context.WithTimeout(ctx, f.cfg.ConnectTimeout)
	defer cancel()
	c, err := f.pool.Acquire(actx)
	if err != nil {
		kind := recorder.ErrConnectionUnavailable
		if ctx.Err() != nil {
			kind = recorder.ErrOperational
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		} else if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no connection to %s:%d within %s (%s): %w", f.cfg.Host, f.cfg.Port, f.cfg.ConnectTimeout, KeyConnectTimeout, err)
		} else if k := kindOf(err); k != recorder.ErrInterface && k != recorder.ErrOperational {
			kind = k
		}
		return nil, &recorder.Error{Kind: kind, Op: op, Err: err}
	}
	return c, nil
}

func (f *Factory) createTables(ctx context.Context) error {
	const op = "create tables"
	c, err := f.acquire(ctx, op)
	if err != nil {
		return err
	}
	defer c.Release()
	idType := f.cfg.OriginatorIDType
	stmts := []string{
		// Concurrent CREATE ... IF NOT EXISTS of one name can still fail with a
		// unique violation in the catalogue: serialise them.
		// Bounded, so that a lock held elsewhere fails Open instead of hanging it.
		fmt.Sprintf("SET LOCAL lock_timeout = '%dms'", max(f.cfg.ConnectTimeout.Milliseconds(), 1)),
		fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", lockKey(f.cfg.Schema+"."+f.tables.Events)),
		"CREATE SCHEMA IF NOT EXISTS " + pgx.Identifier{f.cfg.Schema}.Sanitize(),
		`CREATE TABLE IF NOT EXISTS ` + f.events + ` (
			originator_id ` + idType + ` NOT NULL,
			originator_version bigint NOT NULL,
			topic text NOT NULL,
			state bytea,
			notification_id bigint NOT NULL UNIQUE,
			trace_parent text,
			PRIMARY KEY (originator_id, originator_version))`,
		`CREATE TABLE IF NOT EXISTS ` + f.snapshots + ` (
			originator_id ` + idType + ` NOT NULL,
			originator_version bigint NOT NULL,
			topic text NOT NULL,
			state bytea,
			PRIMARY KEY (originator_id, originator_version))`,
		`CREATE TABLE IF NOT EXISTS ` + f.tracking + ` (
			application_name text PRIMARY KEY,
			notification_id bigint NOT NULL)`,
	}
	if f.cfg.Schema == "public" {
		stmts = append(stmts[:2], stmts[3:]...) // it exists, and the role may not own the database
	}
	err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		return f.addTraceColumn(ctx, tx)
	})
	return wrap(ctx, op, err)
}

func lockKey(s string) int64 {
	h := fnv.New64a()
	h.Write([]byte("eventsourcing:" + s))
	return int64(h.Sum64())
}

// startListener starts the factory's LISTEN connection once.
func (f *Factory) startListener() {
	f.listenMu.Lock()
	defer f.listenMu.Unlock()
	if f.listener == nil && !f.closed.Load() {
		f.listener = newListener(f.pool.Config().ConnConfig.Copy(), f.channel, f.signal)
	}
}

// listener keeps one connection LISTENing on the events channel and wakes the
// factory's subscribers on each notification. When the connection is lost it
// wakes them too (they catch up by reading), and reconnects with backoff.
type listener struct {
	cancel context.CancelFunc
	done   chan struct{}
	pid    atomic.Uint32 // the backend's pid, for tests
}

func newListener(cc *pgx.ConnConfig, channel string, signal *recorder.Signal) *listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{cancel: cancel, done: make(chan struct{})}
	go l.run(ctx, cc, channel, signal)
	return l
}

func (l *listener) run(ctx context.Context, cc *pgx.ConnConfig, channel string, signal *recorder.Signal) {
	defer close(l.done)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := l.listen(ctx, cc, channel, signal, func() { backoff = 100 * time.Millisecond })
		signal.Notify() // whatever was missed, subscribers read it now
		if ctx.Err() != nil {
			return
		}
		slog.Warn("postgres: LISTEN connection lost; reconnecting", "channel", channel, "err", err, "retry_in", backoff)
		if !ctxtime.Sleep(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (l *listener) listen(ctx context.Context, cc *pgx.ConnConfig, channel string, signal *recorder.Signal, connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return err
	}
	l.pid.Store(conn.PgConn().PID())
	connected()
	signal.Notify() // catch up on commits made while not listening
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		signal.Notify()
	}
}

func (l *listener) stop() {
	l.cancel()
	<-l.done
}
