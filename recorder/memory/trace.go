package memory

// The W3C trace context an event was recorded with (StoredEvent.TraceParent)
// is kept beside the records, by notification id, only for events that carry
// one: a store written outside traces holds nothing more per record, and
// reads look the map up only when it holds something.

// keepTrace remembers the trace context of the record nid; r.mu is held.
func (r *Recorder) keepTrace(nid uint32, traceParent string) {
	if traceParent == "" {
		return
	}
	if r.traces == nil {
		r.traces = make(map[uint32]string)
	}
	r.traces[nid] = traceParent
}

// traceOf returns the trace context of the record nid; r.mu is held.
func (r *Recorder) traceOf(nid uint32) string {
	if len(r.traces) == 0 {
		return ""
	}
	return r.traces[nid]
}

// DBSystemName names the backend in telemetry (db.system.name).
func (r *Recorder) DBSystemName() string { return "memory" }
