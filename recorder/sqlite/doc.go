// Package sqlite is the SQLite persistence module of eventsourcing-go, on
// modernc.org/sqlite (pure Go, so binaries and images need no cgo).
//
// Importing the package registers it as "sqlite" (alias "eventsourcing.sqlite"):
//
//	import _ "github.com/eventsourcing-go/eventsourcing/recorder/sqlite"
//
//	PERSISTENCE_MODULE=sqlite SQLITE_DBNAME=/var/lib/dogschool.db
//
// # Configuration
//
// Every key is looked up as <APP>_KEY first, then KEY (see config.Env).
//
//	SQLITE_DBNAME         required: a file path, ":memory:", or a "file:..." URI
//	SQLITE_LOCK_TIMEOUT   5      seconds a connection waits for a lock (busy timeout)
//	SQLITE_SYNCHRONOUS    FULL   OFF, NORMAL, FULL or EXTRA (see Durability)
//	SQLITE_POLL_INTERVAL  0.1    seconds between polls of a caught-up subscription
//	SQLITE_POOL_SIZE      5      reader connections kept
//	SQLITE_MAX_OVERFLOW   10     extra reader connections (readers = size + overflow)
//	CREATE_TABLE          true   create the tables when the module is opened
//
// # Storage
//
// One database holds one application: stored_events (its integer primary key is
// the notification id, so ids are 1, 2, 3... in commit order), stored_snapshots
// and tracking (one row per upstream application, only ever moved forward).
// Files are switched to WAL, so readers run in parallel with the writer from a
// pool of connections. There is one writer: a single connection behind a queue.
// Concurrent saves in one process are grouped into one transaction (each in its
// own savepoint, so one conflict fails only its own save), which shares one
// fsync between them: with several savers throughput rises above the rate of a
// single saver instead of falling.
//
// ":memory:" opens a private database in a temporary file (on /dev/shm when
// there is one) that is removed by Close, so an in-memory database has the same
// concurrency as a file: readers never wait for a writer. A "file:" URI with
// mode=memory is used as given, through one connection shared by readers and
// the writer (SQLite's shared cache would make readers fail rather than wait).
//
// # Durability
//
// SQLITE_SYNCHRONOUS=FULL (the default) syncs the WAL at every commit: nothing
// that was acknowledged is lost on power failure. NORMAL syncs only at
// checkpoints: much faster (commits cost no fsync), never corrupts the database,
// but the last commits before a power failure (not a crash of the process) may
// be rolled back. Temporary (":memory:") databases use OFF.
//
// # Subscriptions
//
// A subscriber that has caught up blocks until a commit of this process wakes it
// (at once), or until the poll interval passes, which is how it sees commits made
// by other processes.
package sqlite
