// Package postgres is the PostgreSQL persistence module of eventsourcing-go, on
// pgx/v5 and its connection pool.
//
// Importing the package registers it as "postgres" (alias "eventsourcing.postgres"):
//
//	import _ "github.com/eventsourcing-go/eventsourcing/recorder/postgres"
//
// # Configuration
//
// Every key is looked up as <APP>_KEY first, then KEY (see config.Env).
//
//	POSTGRES_DBNAME                               required
//	POSTGRES_HOST                                 required
//	POSTGRES_USER                                 required
//	POSTGRES_PASSWORD                             required (may be empty)
//	POSTGRES_PORT                                 5432
//	POSTGRES_POOL_SIZE                            5     connections kept open
//	POSTGRES_MAX_OVERFLOW                         10    extra connections (max = size + overflow)
//	POSTGRES_CONNECT_TIMEOUT                      30    seconds to connect or to wait for a pooled connection
//	POSTGRES_CONN_MAX_AGE                         3600  seconds before a connection is replaced
//	POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT  5     seconds; the server ends sessions idle in a transaction
//	POSTGRES_LOCK_TIMEOUT                         0     seconds to wait for the table lock of an insert; 0 = no limit
//	POSTGRES_SCHEMA                               public
//	POSTGRES_POLL_INTERVAL                        1     seconds between polls of a caught-up subscription (a fallback for LISTEN)
//	POSTGRES_SSLMODE                              (pgx's default, prefer)
//	ORIGINATOR_ID_TYPE                            uuid  or text: the type of the originator_id columns
//	CREATE_TABLE                                  true  create the schema and tables when the module is opened
//
// # Storage
//
// Each application (or projection) has its own tables, named after its
// lower-cased name: {name}_events, {name}_snapshots and {name}_tracking (an
// unnamed Env uses stored_events, stored_snapshots and notification_tracking).
// A name that would make an identifier longer than PostgreSQL's 63 bytes is
// rejected with recorder.ErrProgramming.
//
// The events table keeps each event's W3C trace context
// (recorder.StoredEvent.TraceParent) in the nullable column trace_parent, so
// followers continue the trace of the save that recorded an event. With
// CREATE_TABLE on, opening adds the column to a table made before it; with
// CREATE_TABLE off, a table without it works, its events without trace
// context.
//
// # Ordering
//
// An insert into the notification log takes the events table's lock in
// EXCLUSIVE mode, which excludes other writers but not readers, before it draws
// notification ids. So ids are assigned in commit order: a reader that has seen
// id n has seen every smaller id, and a follower that reads after the last id
// it saw never skips an event that commits later with a smaller id.
//
// # Group commit
//
// Since the lock is held through each commit's fsync, saves cannot overlap, so
// the concurrent saves of one factory are grouped: they queue, and one of the
// callers runs everything queued (at most 64 saves) in one transaction — the
// lock, each save in its own savepoint, one NOTIFY and one COMMIT — while the
// next group gathers. A conflict (ErrIntegrity, with the driver's error)
// rolls back to its save's savepoint and fails that save only. The group is
// one pipelined round trip; a save on its own costs what it did before.
//
// A save whose context ends while it is queued is not written and returns the
// context's error. Once its group has started it is written, or not, with the
// group, which is not interrupted: groups of one process never wait for each
// other's lock, and when another process holds it the saves go back to the
// queue, cancellable, while one caller waits for the lock on its own context.
//
// # Subscriptions
//
// Each commit NOTIFYs a channel named after the events table. A subscription
// blocks when caught up and wakes on a notification (received on one dedicated
// connection per factory, which reconnects when lost and then wakes every
// subscriber to catch up), on a commit of the same factory, or when the poll
// interval passes.
//
// # Errors
//
// Driver errors are mapped onto the recorder kinds by SQLSTATE class: every
// unique violation (23505) and the rest of class 23 → ErrIntegrity, 22 →
// ErrData, 42/3D/3F → ErrProgramming, 0A → ErrNotSupported, 08 and failed
// connections → ErrConnectionUnavailable, XX/24/25/2x → ErrInternal, and the
// rest (locks, cancellations, resources) → ErrOperational. The *pgconn.PgError
// stays reachable with errors.As.
package postgres
