package postgres

// The recorders name their database system in telemetry (db.system.name).
// They keep recorder.StoredEvent.TraceParent: see tracecontext.go.

// DBSystemName returns "postgresql".
func (r *AggregateRecorder) DBSystemName() string { return "postgresql" }

// DBSystemName returns "postgresql".
func (r *TrackingRecorder) DBSystemName() string { return "postgresql" }

// DBSystemName returns "postgresql".
func (r *ProcessRecorder) DBSystemName() string { return "postgresql" }
