// Package esdb is the EventStoreDB persistence module of eventsourcing-go, on
// the official client github.com/EventStore/EventStore-Client-Go/v4, and a
// few helpers for using EventStoreDB directly through that client.
//
// Importing the package registers the module as "eventstoredb" (alias
// "eventsourcing_eventstoredb", the Python package's name):
//
//	import _ "github.com/eventsourcing-go/eventsourcing/esdb"
//
//	PERSISTENCE_MODULE=eventstoredb EVENTSTOREDB_URI=esdb://localhost:2113?tls=false
//
// # Configuration
//
// Every key is looked up as <APP>_KEY first, then KEY (see config.Env).
//
//	EVENTSTOREDB_URI                    required: the connection string
//	EVENTSTOREDB_ROOT_CERTIFICATES      PEM text of the CA certificates (TLS)
//	EVENTSTOREDB_TRACKING_IN_METADATA   false: enable process and tracking recorders
//
// KURRENTDB_URI and KURRENTDB_ROOT_CERTIFICATES are accepted when ours are unset.
//
// # Storage
//
// Each aggregate is a stream named by its originator id, and its versions are
// the stream's revisions, so aggregates start at version 0: give aggregate
// types InitialVersion() int64 { return 0 }. A first save at another version
// fails with a message saying so. A batch is one atomic AppendToStream whose
// expected revision follows from its first version (NoStream for 0, else
// Revision(v-1)); a wrong expected version is recorder.ErrIntegrity. A batch
// for two aggregates is refused with recorder.ErrProgramming before any I/O,
// because EventStoreDB appends atomically to one stream only.
//
// Notification ids are $all commit positions: increasing, with gaps, shared by
// the whole database (use one application per database). Selecting
// notifications reads $all and skips system events ("$" types or streams),
// persistent-subscription configuration, snapshots and tracking records.
// Snapshots go to "snapshot-$<id>" streams, their version in the metadata.
//
// Subscribe opens a catch-up subscription to $all, filtered on the server,
// that reopens after the last delivered position when the connection drops
// and reports other failures from Next.
//
// Process and tracking recorders fail with recorder.ErrNotSupported unless
// EVENTSTOREDB_TRACKING_IN_METADATA is set; see tracking.go for that design.
package esdb
