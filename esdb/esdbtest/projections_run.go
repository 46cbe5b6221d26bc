package esdbtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dop251/goja"
	"github.com/google/uuid"
)

// The system projections.
const (
	sysByCategory       = "$by_category"
	sysByEventType      = "$by_event_type"
	sysStreams          = "$streams"
	sysStreamByCategory = "$stream_by_category"
	sysByCorrelationID  = "$by_correlation_id"
)

// errEmitNotAllowed is the fault of a projection that emits without
// emitting enabled, in the server's words.
var errEmitNotAllowed = errors.New("'emit' is not allowed by the projection/configuration/mode")

// publishEvery is how many records a runner reads between updates of
// what calls see, besides the update at the end of each batch.
const publishEvery = 256

// runner processes the log for one projection.
type runner struct {
	m    *projectionManager
	p    *projection
	done chan struct{}

	// copied from the projection when the runner starts
	name, mode, query, system string
	emit, track               bool
	id, epoch, version        int64

	q      *jsQuery
	states map[string]goja.Value
	// published state and results, and what the last event changed
	stateJSON  map[string]string
	resultJSON map[string]string
	causedBy   map[string]uuid.UUID
	partitions []string
	emitted    []string
	seen       map[string]int64
	next       int
	processed  int64
	position   string
	// replayTo and checkpointed: see projection.replayTo and checkpoint.
	replayTo     int
	checkpointed int64
}

func newRunner(m *projectionManager, p *projection) *runner {
	r := &runner{
		m: m, p: p, done: p.done,
		name: p.name, mode: p.mode, query: p.query, system: p.system, emit: p.emit, track: p.track,
		id: p.id, epoch: p.epoch, version: p.version,
		states:     map[string]goja.Value{},
		stateJSON:  maps(p.states),
		resultJSON: maps(p.results),
		causedBy:   map[string]uuid.UUID{},
		partitions: slices.Clone(p.partitions),
		emitted:    slices.Clone(p.emitted),
		seen:       maps(p.seen),
		next:       p.next,
		processed:  p.processed,
		position:   p.position,
		replayTo:   p.replayTo,
	}
	r.checkpointed = r.processed
	return r
}

func maps[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// run processes events until the context ends, the projection faults or
// (one-time and transient projections) the end of the log is reached.
func (r *runner) run(ctx context.Context) {
	err := r.runErr(ctx)
	m, p := r.m, r.p
	m.mu.Lock()
	defer m.mu.Unlock()
	if p.done == r.done {
		p.cancel, p.done = nil, nil
	}
	switch {
	case ctx.Err() != nil:
		// Stopped by a call, which sets the status.
	case err != nil:
		p.status, p.reason = statusFaulted, err.Error()
		m.srv.log.Warn("esdbtest: projection faulted", "projection", r.name, "err", err)
	default:
		p.status = statusCompleted
	}
}

func (r *runner) runErr(ctx context.Context) error {
	if r.system == "" {
		q, err := compileQuery(r.query)
		if err != nil {
			return err
		}
		r.q = q
		// A stop interrupts a handler at once rather than at its time limit.
		defer context.AfterFunc(ctx, func() { q.interrupt(context.Canceled) })()
		for part, s := range r.stateJSON {
			v, err := q.fromJSON(s)
			if err != nil {
				return fmt.Errorf("load the state of partition %q: %w", part, err)
			}
			r.states[part] = v
		}
		if _, ok := r.states[""]; !ok && !q.src.foreachStream && q.src.partitionBy == nil {
			// An unpartitioned projection has its $init state from the start.
			v, err := r.initState()
			if err != nil {
				return err
			}
			if r.stateJSON[""], err = q.toJSON(v); err != nil {
				return err
			}
			r.states[""] = v
		}
	}
	stopAtEnd := r.mode != modeContinuous
	for {
		sn := r.m.srv.store.snap()
		for r.next < len(sn.log) {
			if ctx.Err() != nil {
				return nil
			}
			rec := sn.log[r.next]
			r.next++
			if err := r.process(rec); err != nil {
				return err
			}
			if r.next%publishEvery == 0 {
				r.publish(-1)
			}
		}
		if stopAtEnd {
			return r.finish()
		}
		if r.next > 0 {
			if err := r.checkpoint(sn.log[r.next-1]); err != nil {
				return err
			}
		}
		r.publish(100)
		select {
		case <-ctx.Done():
			return nil
		case <-sn.notify:
		}
	}
}

// isSystemStream reports whether a stream is a system one ($-prefixed).
func isSystemStream(name string) bool { return strings.HasPrefix(name, "$") }

// passesAll is the server's filter of events read from $all for a
// projection: user streams and the metadata streams of user streams.
func passesAll(stream string) bool {
	if !isSystemStream(stream) {
		return true
	}
	target, ok := metaTarget(stream)
	return ok && !isSystemStream(target)
}

// category is the part of a stream name before its first dash, or "".
func category(stream string) string {
	if isSystemStream(stream) {
		return ""
	}
	if i := strings.IndexByte(stream, '-'); i > 0 {
		return stream[:i]
	}
	return ""
}

// resolve returns the event a link points to, or nil when it is gone.
func (r *runner) resolve(link *record) *record {
	revStr, stream, ok := strings.Cut(string(link.Data), "@")
	if !ok {
		return nil
	}
	rev, err := strconv.ParseInt(revStr, 10, 64)
	if err != nil || rev < 0 {
		return nil
	}
	v := r.m.srv.store.streamSnap(stream)
	if v.tombstone >= 0 || rev >= int64(len(v.revs)) || rev < v.visibleFrom(stream) {
		return nil
	}
	return v.log[v.revs[rev]]
}

// process hands one record of the log to the projection.
func (r *runner) process(rec *record) error {
	if rec.Revision == tombstoneRevision && rec.Type == "$streamDeleted" {
		return nil
	}
	if r.system != "" {
		return r.processSystem(rec)
	}
	src := &r.q.src
	ev, link := rec, (*record)(nil)
	tag := map[string]int64(nil)
	switch {
	case src.all:
		if !passesAll(rec.Stream) {
			return nil
		}
		if rec.Type == "$>" {
			if !src.includeLinks {
				return nil
			}
			if ev, link = r.resolve(rec), rec; ev == nil {
				return nil
			}
		}
	case len(src.streams) > 0:
		if !slices.Contains(src.streams, rec.Stream) {
			return nil
		}
		if rec.Type == "$>" {
			if ev, link = r.resolve(rec), rec; ev == nil {
				return nil
			}
		}
		r.seen[rec.Stream] = int64(rec.Revision)
		tag = r.seen
	case len(src.categories) > 0:
		c := category(rec.Stream)
		if c == "" || !slices.Contains(src.categories, c) || rec.Type == "$>" {
			return nil
		}
		r.seen["$ce-"+c]++
		tag = map[string]int64{"$ce-" + c: r.seen["$ce-"+c] - 1}
	}
	if err := r.handle(ev, link, rec, tag); err != nil {
		return err
	}
	if !r.replaying() {
		r.processed++
	}
	r.position = positionText(rec, tag)
	return nil
}

func positionText(rec *record, tag map[string]int64) string {
	if tag == nil {
		return fmt.Sprintf("C:%d/P:%d", rec.Pos, rec.Pos)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range tag {
			if !yield(k) {
				return
			}
		}
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, tag[k])
	}
	return strings.Join(parts, "; ")
}

// eventObject builds the event a handler receives.
func (r *runner) eventObject(ev, link *record, partition string) (*goja.Object, error) {
	q := r.q
	o := q.vm.NewObject()
	isJSON := ev.ContentType == contentTypeJSON
	set := func(k string, v any) { _ = o.Set(k, v) }
	set("isJson", isJSON)
	set("streamId", ev.Stream)
	set("sequenceNumber", ev.Revision)
	set("eventType", ev.Type)
	set("eventId", ev.ID.String())
	set("partition", partition)
	set("category", category(ev.Stream))
	set("bodyRaw", string(ev.Data))
	if isJSON && json.Valid(ev.Data) {
		body, err := q.fromJSON(string(ev.Data))
		if err != nil {
			return nil, err
		}
		set("body", body)
		set("data", body)
	}
	setJSON := func(k string, raw []byte) error {
		set(k+"Raw", string(raw))
		if len(bytes.TrimSpace(raw)) > 0 && json.Valid(raw) {
			v, err := q.fromJSON(string(raw))
			if err != nil {
				return err
			}
			set(k, v)
		}
		return nil
	}
	if err := setJSON("metadata", ev.Meta); err != nil {
		return nil, err
	}
	if link != nil {
		if err := setJSON("linkMetadata", link.Meta); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// handle runs the query's handler for one event and writes what follows.
func (r *runner) handle(ev, link, at *record, tag map[string]int64) error {
	q := r.q
	src := &q.src
	// Only the event types the query handles reach it.
	fn := src.handlers[ev.Type]
	if fn == nil {
		fn = src.any
	}
	if fn == nil {
		return nil
	}
	partition := ""
	switch {
	case src.foreachStream:
		partition = ev.Stream
	case src.partitionBy != nil:
		obj, err := r.eventObject(ev, link, "")
		if err != nil {
			return err
		}
		v, err := q.call(src.partitionBy, obj)
		if err != nil {
			return fmt.Errorf("partitionBy: %w", err)
		}
		if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
			return nil
		}
		partition = v.String()
	}
	obj, err := r.eventObject(ev, link, partition)
	if err != nil {
		return err
	}
	q.emits = q.emits[:0]
	state, ok := r.states[partition]
	if !ok {
		if state, err = r.initState(); err != nil {
			return err
		}
		if partition != "" {
			r.partitions = append(r.partitions, partition)
			if src.producesResults && r.mode == modeContinuous && !r.replaying() {
				// The catalog of the partitions that have results.
				catalog := "$projections-" + r.name + "-partitions"
				if err := r.write(catalog, "$partition", partition, false, r.metadata(at, tag, uuid.Nil, nil)); err != nil {
					return err
				}
			}
		}
		if src.created != nil {
			v, err := q.call(src.created, state, obj)
			if err != nil {
				return fmt.Errorf("$created: %w", err)
			}
			if v != nil && !goja.IsUndefined(v) {
				state = v
			}
		}
	}
	v, err := q.call(fn, state, obj)
	if err != nil {
		return fmt.Errorf("handler of %s: %w", ev.Type, err)
	}
	if v != nil && !goja.IsUndefined(v) {
		state = v
	}
	r.states[partition] = state
	stateJSON, err := q.toJSON(state)
	if err != nil {
		return err
	}
	r.stateJSON[partition] = stateJSON
	emits := slices.Clone(q.emits)
	if len(emits) > 0 && !r.emit {
		return errEmitNotAllowed
	}
	if r.replaying() {
		emits = nil
	}
	for _, e := range emits {
		if err := r.write(e.stream, e.typ, e.data, e.isJSON, r.metadata(at, tag, ev.ID, e.meta)); err != nil {
			return err
		}
		if r.track && !slices.Contains(r.emitted, e.stream) {
			r.emitted = append(r.emitted, e.stream)
		}
	}
	result, err := r.result(stateJSON)
	if err != nil {
		return err
	}
	prev, had := r.resultJSON[partition]
	if had && prev == result {
		return nil
	}
	r.resultJSON[partition] = result
	r.causedBy[partition] = ev.ID
	if src.producesResults && r.mode == modeContinuous && !r.replaying() {
		return r.writeResult(partition, result, r.metadata(at, tag, ev.ID, nil))
	}
	return nil
}

func (r *runner) initState() (goja.Value, error) {
	q := r.q
	if q.src.init == nil {
		return q.vm.NewObject(), nil
	}
	v, err := q.call(q.src.init)
	if err != nil {
		return nil, fmt.Errorf("$init: %w", err)
	}
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return q.vm.NewObject(), nil
	}
	return v, nil
}

// result applies the query's transforms to a copy of the state; "null"
// when a filter rejects it.
func (r *runner) result(stateJSON string) (string, error) {
	q := r.q
	if len(q.src.transforms) == 0 {
		return stateJSON, nil
	}
	v, err := q.fromJSON(stateJSON)
	if err != nil {
		return "", err
	}
	for _, t := range q.src.transforms {
		out, err := q.call(t.fn, v)
		if err != nil {
			return "", fmt.Errorf("transform: %w", err)
		}
		if t.filter {
			if out == nil || !out.ToBoolean() {
				return "null", nil
			}
			continue
		}
		if out != nil && !goja.IsUndefined(out) {
			v = out
		}
	}
	return q.toJSON(v)
}

// writeResult writes a Result (or ResultRemoved) event for a partition,
// and for a named partition a link to it in the projection's result
// stream.
func (r *runner) writeResult(partition, result string, meta []byte) error {
	typ, data := "Result", result
	if result == "null" || result == "" {
		typ, data = "ResultRemoved", ""
	}
	root := resultStreamName(r.name, "")
	if r.q.src.resultStream != "" {
		root = r.q.src.resultStream
	}
	stream := root
	if partition != "" {
		stream = resultStreamName(r.name, partition)
	}
	res, err := r.m.srv.store.append(stream, expectation{kind: expectAny},
		[]proposed{{ID: uuid.New(), Type: typ, ContentType: contentTypeJSON, Data: []byte(data), Meta: meta}})
	if err != nil {
		return fmt.Errorf("write result to %s: %w", stream, err)
	}
	if partition == "" {
		return nil
	}
	return r.write(root, "$>", fmt.Sprintf("%d@%s", res.revision, stream), false, meta)
}

// write appends one emitted event.
func (r *runner) write(stream, typ, data string, isJSON bool, meta []byte) error {
	ct := contentTypeBinary
	if isJSON {
		ct = contentTypeJSON
	}
	_, err := r.m.srv.store.append(stream, expectation{kind: expectAny},
		[]proposed{{ID: uuid.New(), Type: typ, ContentType: ct, Data: []byte(data), Meta: meta}})
	if err != nil {
		return fmt.Errorf("write to %s: %w", stream, err)
	}
	return nil
}

// metadata is the metadata of an emitted event: the projection's version,
// the checkpoint tag of the event that caused it, extra keys, $causedBy.
func (r *runner) metadata(at *record, tag map[string]int64, causedBy uuid.UUID, extra map[string]any) []byte {
	var b bytes.Buffer
	b.WriteString(`{"$v":`)
	b.WriteString(strconv.Quote(r.versionTag()))
	if tag == nil {
		fmt.Fprintf(&b, `,"$c":%d,"$p":%d`, at.Pos, at.Pos)
	} else {
		s, _ := json.Marshal(tag) // a map of numbers always marshals
		b.WriteString(`,"$s":`)
		b.Write(s)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range extra {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		if k == "$causedBy" {
			continue
		}
		v, err := json.Marshal(extra[k])
		if err != nil {
			continue
		}
		kb, _ := json.Marshal(k)
		b.WriteByte(',')
		b.Write(kb)
		b.WriteByte(':')
		b.Write(v)
	}
	if causedBy != uuid.Nil {
		fmt.Fprintf(&b, `,"$causedBy":%q`, causedBy.String())
	}
	b.WriteByte('}')
	return b.Bytes()
}

// finish ends a one-time or transient projection at the end of the log.
// Such a query writes no running results: once done it writes one Result
// per partition, all to the projection's result stream, tagged with its
// results phase rather than caused by an event.
func (r *runner) finish() error {
	if r.q != nil {
		meta := []byte(fmt.Sprintf(`{"$v":%q,"$ph":1,"$cp":false}`, r.versionTag()))
		stream := resultStreamName(r.name, "")
		if r.q.src.resultStream != "" {
			stream = r.q.src.resultStream
		}
		for _, part := range append([]string{""}, r.partitions...) {
			res, ok := r.resultJSON[part]
			if !ok || res == "null" || res == "" {
				continue
			}
			if err := r.write(stream, "Result", res, true, meta); err != nil {
				return err
			}
		}
	}
	r.publish(100)
	return nil
}

func (r *runner) versionTag() string {
	return fmt.Sprintf("%d:%d:%d:%d", r.id, r.epoch, r.version, projectionsVersion)
}

// publish makes the runner's progress visible to calls.
func (r *runner) publish(progress float32) {
	m, p := r.m, r.p
	m.mu.Lock()
	defer m.mu.Unlock()
	if p.done != r.done {
		return
	}
	p.next, p.processed, p.position = r.next, r.processed, r.position
	p.states, p.results = maps(r.stateJSON), maps(r.resultJSON)
	p.partitions, p.emitted, p.seen = slices.Clone(r.partitions), slices.Clone(r.emitted), maps(r.seen)
	if progress >= 0 {
		p.progress = progress
	}
}

// processSystem runs a system projection on one record.
func (r *runner) processSystem(rec *record) error {
	// $by_event_type reads user streams only; the others also read the
	// metadata streams of user streams.
	if r.system == sysByEventType && isSystemStream(rec.Stream) || !passesAll(rec.Stream) {
		return nil
	}
	var stream, typ, data string
	extra := map[string]any(nil)
	switch c := category(rec.Stream); r.system {
	case sysByCategory:
		if c != "" {
			stream, typ, data = "$ce-"+c, "$>", fmt.Sprintf("%d@%s", rec.Revision, rec.Stream)
			if rec.Type == "$>" {
				data = string(rec.Data)
			}
			extra = map[string]any{"$o": rec.Stream}
		}
	case sysByEventType:
		if rec.Type != "$>" {
			stream, typ, data = "$et-"+rec.Type, "$>", fmt.Sprintf("%d@%s", rec.Revision, rec.Stream)
		}
	case sysStreams:
		if rec.Revision == 0 {
			stream, typ, data = "$streams", "$>", "0@"+rec.Stream
		}
	case sysStreamByCategory:
		if rec.Revision == 0 && c != "" {
			stream, typ, data = "$category-"+c, "$@", rec.Stream
		}
	case sysByCorrelationID:
		var meta map[string]any
		if rec.Type != "$>" && json.Unmarshal(rec.Meta, &meta) == nil {
			if id, ok := meta["$correlationId"].(string); ok {
				stream, typ, data = "$bc-"+id, "$>", fmt.Sprintf("%d@%s", rec.Revision, rec.Stream)
				created := time.Unix(0, rec.Created*100).UTC()
				extra = map[string]any{"$eventTimestamp": created.Format("2006-01-02T15:04:05.000000Z")}
			}
		}
	}
	if stream != "" {
		if err := r.write(stream, typ, data, false, r.metadata(rec, nil, rec.ID, extra)); err != nil {
			return err
		}
	}
	r.processed++
	r.position = positionText(rec, nil)
	return nil
}
