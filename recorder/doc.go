// Package recorder holds the storage contracts of eventsourcing-go: the records a
// backend stores (stored events, notifications, tracking), the recorder interfaces
// every persistence module implements, the positions and bounds their queries take
// (Position: Start or After an id; Bound: none, the zero value, or Bounded), and the
// error values that work with errors.Is on every backend. Modules are registered
// and opened by PERSISTENCE_MODULE in package persistence; their settings are
// read through config.Env.
//
// The package imports nothing of the project, so a backend depends on this package
// alone and never on the domain model: recorders see topics and opaque state bytes.
package recorder
