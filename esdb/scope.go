package esdb

import (
	"bytes"
	"encoding/json"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// One EventStoreDB node holds the events of every application that uses
// it, and $all orders them all. So that each application's notification
// log is its own (a system's applications can share one node, as services
// do), every event an application appends carries its name in the
// metadata ({"app":"Orders"}), and its notifications are the events of $all
// that carry its name, or no name at all (events written by other clients,
// or before names were written, belong to every application's log).
//
// The check is a byte search on metadata this module writes itself, with
// the name first; it costs nothing to events without metadata.

// appKey prefixes the name in the metadata.
var appKey = []byte(`"app":`)

// scope is an application's claim on events of $all.
type scope struct {
	// metadata is the metadata of an event without tracking.
	metadata []byte
	// needle is `"app":"<name>"`; empty when the application has no name
	// (it then reads every event).
	needle []byte
}

func newScope(name string) scope {
	if name == "" {
		return scope{metadata: emptyMetadata}
	}
	quoted, _ := json.Marshal(name)
	needle := append(append([]byte(nil), appKey...), quoted...)
	md := append(append([]byte("{"), needle...), '}')
	return scope{metadata: md, needle: needle}
}

// owns reports whether e belongs to the application's log.
func (s scope) owns(e *esdbclient.RecordedEvent) bool {
	if len(s.needle) == 0 || !bytes.Contains(e.UserMetadata, appKey) {
		return true
	}
	return bytes.Contains(e.UserMetadata, s.needle)
}

// with returns metadata holding the application's name beside fields, a
// JSON object's members without braces (or nil).
func (s scope) with(fields []byte) []byte {
	if len(fields) == 0 {
		return s.metadata
	}
	if len(s.needle) == 0 {
		return append(append([]byte("{"), fields...), '}')
	}
	out := append(append([]byte("{"), s.needle...), ',')
	return append(append(out, fields...), '}')
}
