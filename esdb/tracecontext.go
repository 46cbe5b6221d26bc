package esdb

import (
	"bytes"
	"context"
	"encoding/json"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Trace context in event metadata.
//
// An event recorded inside a sampled trace (recorder.StoredEvent.TraceParent)
// carries its trace and span ids in its metadata under the keys the official
// EventStoreDB clients' OpenTelemetry instrumentation writes and reads
// (.NET, Java: "$traceId" and "$spanId", as lower-case hex), beside the
// module's own members:
//
//	{"app":"Orders","$traceId":"4bf92f3577b34da6a3ce929d0e0e4736","$spanId":"00f067aa0ba902b7"}
//
// So a subscriber on another client continues the trace of an event this
// module appended, and the other way round. Those clients keep no trace
// flags: an event read with the keys is taken as sampled, and only sampled
// trace contexts are written.

// Metadata keys of the trace context.
const (
	metaTraceID = "$traceId"
	metaSpanID  = "$spanId"
)

var traceIDNeedle = []byte(`"` + metaTraceID + `"`)

// traceMetadata is the trace context members of event metadata.
type traceMetadata struct {
	TraceID string `json:"$traceId"`
	SpanID  string `json:"$spanId"`
}

var w3c propagation.TraceContext

// withTraceContext returns md (a JSON object) with the trace context of a W3C
// traceparent added, or md itself when the value is empty, malformed or not
// sampled. md is not changed: it may be shared by every event of the module.
func withTraceContext(md []byte, traceParent string) []byte {
	if traceParent == "" {
		return md
	}
	sc := trace.SpanContextFromContext(w3c.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceParent}))
	if !sc.IsValid() || !sc.IsSampled() {
		return md
	}
	fields, err := json.Marshal(traceMetadata{TraceID: sc.TraceID().String(), SpanID: sc.SpanID().String()})
	if err != nil {
		return md
	}
	md = bytes.TrimSpace(md)
	if len(md) < 2 || md[len(md)-1] != '}' {
		return md // not an object: leave it as it is
	}
	out := make([]byte, 0, len(md)+len(fields))
	out = append(out, md[:len(md)-1]...)
	if len(bytes.TrimSpace(md[1:len(md)-1])) > 0 {
		out = append(out, ',')
	}
	return append(append(out, fields[1:len(fields)-1]...), '}')
}

// traceParentOf returns the W3C traceparent of the trace context in event
// metadata, or "" when it holds none (a byte search first: metadata without
// the key costs nothing more).
func traceParentOf(md []byte) string {
	if !bytes.Contains(md, traceIDNeedle) {
		return ""
	}
	var tm traceMetadata
	if json.Unmarshal(md, &tm) != nil {
		return ""
	}
	tid, err := trace.TraceIDFromHex(tm.TraceID)
	if err != nil {
		return ""
	}
	sid, err := trace.SpanIDFromHex(tm.SpanID)
	if err != nil {
		return ""
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	c := propagation.MapCarrier{}
	w3c.Inject(trace.ContextWithRemoteSpanContext(context.Background(), sc), c)
	return c.Get("traceparent")
}

// DBSystemName names the backend in telemetry (db.system.name).
func (r *Recorder) DBSystemName() string { return "eventstoredb" }
