package sqlite

// The recorders name their database system in telemetry (db.system.name).
// They keep recorder.StoredEvent.TraceParent: see tracecontext.go.

// DBSystemName returns "sqlite".
func (r *AggregateRecorder) DBSystemName() string { return "sqlite" }

// DBSystemName returns "sqlite".
func (r *TrackingRecorder) DBSystemName() string { return "sqlite" }

// DBSystemName returns "sqlite".
func (r *ProcessRecorder) DBSystemName() string { return "sqlite" }
