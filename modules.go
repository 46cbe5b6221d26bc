package eventsourcing

// The memory module is the default persistence module (PERSISTENCE_MODULE
// unset), so it is linked into every binary that uses the framework; other
// modules (sqlite, postgres, eventstoredb) are linked by importing them.
import _ "github.com/eventsourcing-go/eventsourcing/recorder/memory"
