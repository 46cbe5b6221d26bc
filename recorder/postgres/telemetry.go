package postgres

// The recorders name their database system in telemetry (db.system.name).
// They do not keep recorder.StoredEvent.TraceParent: events read back carry
// no trace context, so followers of this backend start new traces.

// DBSystemName returns "postgresql".
func (r *AggregateRecorder) DBSystemName() string { return "postgresql" }

// DBSystemName returns "postgresql".
func (r *TrackingRecorder) DBSystemName() string { return "postgresql" }

// DBSystemName returns "postgresql".
func (r *ProcessRecorder) DBSystemName() string { return "postgresql" }
