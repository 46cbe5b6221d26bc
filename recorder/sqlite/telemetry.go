package sqlite

// The recorders name their database system in telemetry (db.system.name).
// They do not keep recorder.StoredEvent.TraceParent: events read back carry
// no trace context, so followers of this backend start new traces.

// DBSystemName returns "sqlite".
func (r *AggregateRecorder) DBSystemName() string { return "sqlite" }

// DBSystemName returns "sqlite".
func (r *TrackingRecorder) DBSystemName() string { return "sqlite" }

// DBSystemName returns "sqlite".
func (r *ProcessRecorder) DBSystemName() string { return "sqlite" }
