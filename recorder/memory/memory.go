// Package memory is the in-memory persistence module, registered as "memory" (the
// default module) and under the reference library's names "popo" and
// "eventsourcing.popo".
//
// Every recorder the factory builds is a new, empty store, so applications never
// share state (and runners must hand out their own instances). A store is a log
// of records in notification order (id = position + 1), an index from
// originator id to a chain of that originator's records, and one RWMutex:
// inserts check the whole batch for conflicts before writing anything, then
// append and wake subscribers and waiters through a recorder.Signal. The
// layout, free of pointers so that the collector need not scan it, is
// described in layout.go.
package memory

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/persistence"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func init() {
	persistence.Register("memory", Open, "popo", "eventsourcing.popo")
}

// Open returns a factory of in-memory recorders; the module has no settings.
func Open(ctx context.Context, _ config.Env) (recorder.Factory, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return NewFactory(), nil
}

// Factory builds new, empty in-memory recorders.
type Factory struct {
	// closed is shared with every recorder built, so that a recorder used after
	// its factory's Close fails clearly, as a recorder of a closed pool does on
	// the SQL backends.
	closed *atomic.Bool
}

// NewFactory returns a factory of in-memory recorders.
func NewFactory() *Factory { return &Factory{closed: new(atomic.Bool)} }

var errClosed = errors.New("the memory persistence factory is closed")

func (f *Factory) check(ctx context.Context, op string) error {
	if f.closed.Load() {
		return &recorder.Error{Kind: recorder.ErrInterface, Op: op, Err: errClosed}
	}
	if err := ctx.Err(); err != nil {
		return &recorder.Error{Op: op, Err: err}
	}
	return nil
}

// AggregateRecorder returns a new store of aggregate events or snapshots.
func (f *Factory) AggregateRecorder(ctx context.Context, purpose recorder.Purpose) (recorder.AggregateRecorder, error) {
	if err := f.check(ctx, "aggregate recorder"); err != nil {
		return nil, err
	}
	if err := purpose.Check(); err != nil {
		return nil, err
	}
	return newRecorder(f.closed, false, false), nil
}

// ApplicationRecorder returns a new application store.
func (f *Factory) ApplicationRecorder(ctx context.Context) (recorder.ApplicationRecorder, error) {
	if err := f.check(ctx, "application recorder"); err != nil {
		return nil, err
	}
	return newRecorder(f.closed, true, false), nil
}

// TrackingRecorder returns a new tracking store.
func (f *Factory) TrackingRecorder(ctx context.Context) (recorder.TrackingRecorder, error) {
	if err := f.check(ctx, "tracking recorder"); err != nil {
		return nil, err
	}
	return newRecorder(f.closed, false, true), nil
}

// ProcessRecorder returns a new process store.
func (f *Factory) ProcessRecorder(ctx context.Context) (recorder.ProcessRecorder, error) {
	if err := f.check(ctx, "process recorder"); err != nil {
		return nil, err
	}
	return newRecorder(f.closed, true, true), nil
}

// Close makes the factory and its recorders refuse further use; it is idempotent.
// The stores' contents are left to the garbage collector.
func (f *Factory) Close() error {
	f.closed.Store(true)
	return nil
}

// NewAggregateRecorder returns a standalone aggregate store.
func NewAggregateRecorder() *Recorder { return newRecorder(new(atomic.Bool), false, false) }

// NewApplicationRecorder returns a standalone application store.
func NewApplicationRecorder() *Recorder { return newRecorder(new(atomic.Bool), true, false) }

// NewTrackingRecorder returns a standalone tracking store.
func NewTrackingRecorder() *Recorder { return newRecorder(new(atomic.Bool), false, true) }

// NewProcessRecorder returns a standalone process store.
func NewProcessRecorder() *Recorder { return newRecorder(new(atomic.Bool), true, true) }

// streamIndex maps originator ids to streams. Canonical UUIDs (lower-case,
// hyphenated: what the framework writes) are keyed by their 16 bytes: the map
// then holds its keys inline, so a lookup among millions hashes 16 bytes and
// compares without following a pointer to the key's text, and the collector
// does not scan it at all. Any other id is a text id, keyed by its text in the
// arena.
type streamIndex struct {
	uuids map[[16]byte]uint32
	texts map[string]uint32
}

func (x *streamIndex) get(id string) uint32 {
	if k, ok := canonicalUUID(id); ok {
		if s, ok := x.uuids[k]; ok {
			return s
		}
		return noStream
	}
	if s, ok := x.texts[id]; ok {
		return s
	}
	return noStream
}

// hexValue maps '0'-'9' and 'a'-'f' to their values and every other byte to
// 0xff: upper-case UUIDs are text ids here, since "A" and "a" are different
// originator ids to a recorder.
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c-'a') + 10
	}
	return t
}()

// canonicalUUID parses xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx in lower case.
func canonicalUUID(s string) (k [16]byte, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return k, false
	}
	j := 0
	for i := 0; i < 36; i += 2 {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i--
			continue
		}
		hi, lo := hexValue[s[i]], hexValue[s[i+1]]
		if hi > 15 || lo > 15 {
			return k, false
		}
		k[j] = hi<<4 | lo
		j++
	}
	return k, true
}

// Recorder is one in-memory store. It implements recorder.ProcessRecorder; the
// factory hands it out under the narrower interface that was asked for, and only
// application recorders return notification ids, only tracking and process
// recorders accept tracking records.
type Recorder struct {
	closed   *atomic.Bool
	app      bool
	tracking bool

	mu       sync.RWMutex
	records  table[record]     // notification id = position + 1
	streams  table[stream]     // one per originator
	index    streamIndex       // originator id → stream
	bytes    arena             // states and originator ids
	topics   []string          // interned topics, see topic
	topicIdx map[string]uint32 // topic → index in topics
	trackers map[string]int64  // upstream application → last notification id
	found    []uint32          // validate's stream per event (or noStream), for write
	idBlock  []int64           // notification id slices are cut from it, see takeIDs
	traces   map[uint32]string // notification id → trace context, see trace.go

	signal recorder.Signal
}

func newRecorder(closed *atomic.Bool, app, tracking bool) *Recorder {
	return &Recorder{
		closed: closed, app: app, tracking: tracking,
		index:    streamIndex{uuids: make(map[[16]byte]uint32), texts: make(map[string]uint32)},
		topicIdx: make(map[string]uint32),
		trackers: make(map[string]int64),
	}
}

var (
	_ recorder.ProcessRecorder = (*Recorder)(nil)
	_ recorder.Factory         = (*Factory)(nil)
)

func (r *Recorder) check(ctx context.Context, op string) error {
	if r.closed.Load() {
		return &recorder.Error{Kind: recorder.ErrInterface, Op: op, Err: errClosed}
	}
	if err := ctx.Err(); err != nil {
		return &recorder.Error{Op: op, Err: err}
	}
	return nil
}

// InsertEvents records a batch atomically; see recorder.AggregateRecorder.
func (r *Recorder) InsertEvents(ctx context.Context, events []recorder.StoredEvent, opts ...recorder.InsertOption) ([]int64, error) {
	const op = "insert events"
	if err := r.check(ctx, op); err != nil {
		return nil, err
	}
	var o recorder.InsertOptions
	if len(opts) > 0 {
		o = recorder.ApplyInsertOptions(opts)
		if o.Tracking != nil && !r.tracking {
			return nil, recorder.Errorf(recorder.ErrProgramming, op,
				"a tracking record needs a process recorder")
		}
	}
	if len(events) == 0 && o.Tracking == nil {
		return nil, nil
	}
	r.mu.Lock()
	if err := r.validate(op, events, o.Tracking); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	ids := r.write(events, o.Tracking)
	r.mu.Unlock()
	r.signal.Notify()
	return ids, nil
}

// HoldInsertEvents validates a batch and keeps the write lock until commit is
// called, so that a test can hold an insert open while others run (the
// recordertest.Holder hook). Readers block meanwhile, as they would on a
// database that excludes readers during a write.
func (r *Recorder) HoldInsertEvents(ctx context.Context, events []recorder.StoredEvent) (commit func() ([]int64, error), err error) {
	const op = "insert events"
	if err := r.check(ctx, op); err != nil {
		return nil, err
	}
	events = slices.Clone(events)
	r.mu.Lock()
	if err := r.validate(op, events, nil); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	var done atomic.Bool
	return func() ([]int64, error) {
		if !done.CompareAndSwap(false, true) {
			return nil, recorder.Errorf(recorder.ErrProgramming, op, "held insert committed twice")
		}
		ids := r.write(events, nil)
		r.mu.Unlock()
		r.signal.Notify()
		return ids, nil
	}, nil
}

// maxRecords bounds the log so that a notification id fits the uint32 links.
const maxRecords = math.MaxUint32 - 1

// validate checks, under the write lock, that no event of the batch is recorded
// already or repeated within the batch and that the tracking record advances.
// It looks each originator up once (once per run of events of one originator)
// and leaves the streams it found in r.found for write.
func (r *Recorder) validate(op string, events []recorder.StoredEvent, t *recorder.Tracking) error {
	if uint64(len(events)) > maxRecords-uint64(r.records.n) {
		return recorder.Errorf(recorder.ErrData, op, "the store is full (%d events)", r.records.n)
	}
	r.found = r.found[:0]
	for i := range events {
		e := &events[i]
		if uint64(len(e.State)) > math.MaxUint32 {
			return &recorder.Error{Kind: recorder.ErrData, Op: op, OriginatorID: e.OriginatorID,
				Version: e.OriginatorVersion, Err: errors.New("state larger than 4 GiB")}
		}
		var s uint32
		if i > 0 && e.OriginatorID == events[i-1].OriginatorID {
			s = r.found[i-1]
		} else {
			s = r.index.get(e.OriginatorID)
		}
		r.found = append(r.found, s)
		if s == noStream {
			continue
		}
		if _, at := r.seek(s, e.OriginatorVersion); at != 0 && r.rec(at).version == e.OriginatorVersion {
			return conflict(op, e, "already recorded")
		}
	}
	if len(events) > 1 && !ascendingOneOriginator(events) {
		type key struct {
			id string
			v  int64
		}
		seen := make(map[key]struct{}, len(events))
		for i := range events {
			e := &events[i]
			k := key{e.OriginatorID, e.OriginatorVersion}
			if _, dup := seen[k]; dup {
				return conflict(op, e, "repeated within the batch")
			}
			seen[k] = struct{}{}
		}
	}
	if t != nil {
		if last, ok := r.trackers[t.ApplicationName]; ok && t.NotificationID <= last {
			return trackingConflict(op, *t, last)
		}
	}
	return nil
}

// ascendingOneOriginator is the common batch shape, free of duplicates by construction.
func ascendingOneOriginator(events []recorder.StoredEvent) bool {
	for i := 1; i < len(events); i++ {
		if events[i].OriginatorID != events[0].OriginatorID ||
			events[i].OriginatorVersion <= events[i-1].OriginatorVersion {
			return false
		}
	}
	return true
}

func conflict(op string, e *recorder.StoredEvent, why string) error {
	return &recorder.Error{Kind: recorder.ErrIntegrity, Op: op,
		OriginatorID: e.OriginatorID, Version: e.OriginatorVersion, Err: errors.New(why)}
}

func trackingConflict(op string, t recorder.Tracking, last int64) error {
	return recorder.Errorf(recorder.ErrIntegrity, op,
		"tracking %s: notification id %d does not advance past %d", t.ApplicationName, t.NotificationID, last)
}

// rec returns the record with notification id nid (≥ 1).
func (r *Recorder) rec(nid uint32) *record { return r.records.at(int(nid) - 1) }

// seek walks stream s down from its highest version to where version v goes:
// above is the record with the lowest version greater than v (0 when v is above
// them all), at the record with the highest version ≤ v (0 when there is none).
// A new version is above them all unless versions arrive out of order (which
// the contract allows), so the walk usually ends at the first record.
func (r *Recorder) seek(s uint32, v int64) (above, at uint32) {
	at = r.streams.at(int(s)).last
	for at != 0 {
		rec := r.rec(at)
		if rec.version <= v {
			break
		}
		above, at = at, rec.prev
	}
	return above, at
}

// write appends a validated batch; the caller holds the write lock.
func (r *Recorder) write(events []recorder.StoredEvent, t *recorder.Tracking) []int64 {
	var ids []int64
	if r.app && len(events) > 0 {
		ids = r.takeIDs(len(events))
	}
	for i := range events {
		e := &events[i]
		s := r.found[i]
		if s == noStream {
			switch {
			case i > 0 && e.OriginatorID == events[i-1].OriginatorID:
				s = r.found[i-1] // made for the previous event
			case i > 0:
				// An earlier event of a batch with several originators may
				// have made it.
				if s = r.index.get(e.OriginatorID); s == noStream {
					s = r.newStream(e.OriginatorID)
				}
			default:
				s = r.newStream(e.OriginatorID)
			}
			r.found[i] = s
		}
		nid := uint32(r.records.add(record{
			version: e.OriginatorVersion,
			state:   r.bytes.add(e.State),
			stream:  s,
			topic:   r.topic(e.Topic),
		}) + 1)
		r.keepTrace(nid, e.TraceParent)
		above, at := r.seek(s, e.OriginatorVersion)
		r.rec(nid).prev = at
		if above == 0 {
			r.streams.at(int(s)).last = nid
		} else {
			r.rec(above).prev = nid
		}
		if ids != nil {
			ids[i] = int64(nid)
		}
	}
	if t != nil {
		r.trackers[t.ApplicationName] = t.NotificationID
	}
	return ids
}

// newStream adds an empty stream for an originator id and indexes it. The id's
// text is kept once per originator, in the arena, and text ids are keyed by
// that copy, so the index holds no caller's memory.
func (r *Recorder) newStream(id string) uint32 {
	text := r.bytes.addString(id)
	s := uint32(r.streams.add(stream{id: text}))
	if k, ok := canonicalUUID(id); ok {
		r.index.uuids[k] = s
	} else {
		r.index.texts[r.bytes.string(text)] = s
	}
	return s
}

// topic returns the index of an interned topic. A store sees few topics, and
// consecutive events mostly share one, so the last topic is checked first.
func (r *Recorder) topic(t string) uint32 {
	if n := len(r.topics); n > 0 && r.topics[n-1] == t {
		return uint32(n - 1)
	}
	if i, ok := r.topicIdx[t]; ok {
		return i
	}
	i := uint32(len(r.topics))
	r.topics = append(r.topics, t)
	r.topicIdx[t] = i
	return i
}

// idBlockSize is how many notification ids a shared block holds.
const idBlockSize = 512

// takeIDs returns a slice for n notification ids. Small ones are cut from a
// shared block, which saves an allocation per insert: each is capped, so a
// caller appending to its ids cannot write over another's.
func (r *Recorder) takeIDs(n int) []int64 {
	if n > idBlockSize/8 {
		return make([]int64, n)
	}
	if len(r.idBlock) < n {
		r.idBlock = make([]int64, idBlockSize)
	}
	ids := r.idBlock[:n:n]
	r.idBlock = r.idBlock[n:]
	return ids
}

// eventRange finds what q selects of one originator's events, under the
// read lock: the originator's stream, the record to start the walk down the
// versions from (top), how many records the walk takes (n, 0 when none) and
// the size of their states.
func (r *Recorder) eventRange(originatorID string, q recorder.EventQuery) (s, top uint32, n, size int) {
	s = r.index.get(originatorID)
	if s == noStream {
		return s, 0, 0, 0
	}
	// The chain runs down from the highest version: skip the versions above
	// UpTo, then count those above After.
	top = r.streams.at(int(s)).last
	if upTo, ok := q.UpTo.Value(); ok {
		for top != 0 && r.rec(top).version > upTo {
			top = r.rec(top).prev
		}
	}
	after, hasAfter := q.After.Value()
	m := 0
	for nid := top; nid != 0; nid = r.rec(nid).prev {
		rec := r.rec(nid)
		if hasAfter && rec.version <= after {
			break
		}
		m++
		size += int(rec.state.n)
	}
	n = m
	if q.Limit > 0 && n > q.Limit {
		n = q.Limit
		if !q.Desc {
			for range m - n { // the limit keeps the lowest versions
				top = r.rec(top).prev
			}
		}
		size = 0
		for k, nid := 0, top; k < n; k++ {
			size += int(r.rec(nid).state.n)
			nid = r.rec(nid).prev
		}
	}
	return s, top, n, size
}

// SelectEvents returns one originator's events; see recorder.EventQuery.
func (r *Recorder) SelectEvents(ctx context.Context, originatorID string, q recorder.EventQuery) ([]recorder.StoredEvent, error) {
	if err := r.check(ctx, "select events"); err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, top, n, size := r.eventRange(originatorID, q)
	if n == 0 {
		return nil, nil
	}
	// The states are copied out into one allocation, so callers cannot change
	// the store. The walk runs down the versions, so ascending results are
	// filled from the end, states as well as events.
	out := make([]recorder.StoredEvent, n)
	buf := make([]byte, size)
	originator := r.bytes.string(r.streams.at(int(s)).id)
	off := 0
	if !q.Desc {
		off = size
	}
	nid := top
	for k := range n {
		rec := r.rec(nid)
		j, l := k, int(rec.state.n)
		if !q.Desc {
			j = n - 1 - k
			off -= l
		}
		state := buf[off : off+l : off+l]
		copy(state, r.bytes.bytes(rec.state))
		if q.Desc {
			off += l
		}
		// Field by field: a struct literal would be copied in with a bulk
		// write barrier whenever the collector runs, which is most of the
		// time at this allocation rate.
		e := &out[j]
		e.OriginatorID = originator
		e.OriginatorVersion = rec.version
		e.Topic = r.topics[rec.topic]
		e.State = state
		e.TraceParent = r.traceOf(nid)
		nid = rec.prev
	}
	return out, nil
}

// SelectNotifications returns notifications in ascending id order; see
// recorder.NotificationQuery. A start below 1 counts as 1.
func (r *Recorder) SelectNotifications(ctx context.Context, q recorder.NotificationQuery) ([]recorder.Notification, error) {
	const op = "select notifications"
	if err := r.check(ctx, op); err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		return nil, recorder.Errorf(recorder.ErrProgramming, op, "limit %d is not positive", q.Limit)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	end := int64(r.records.n) // exclusive index
	if stop, ok := q.Stop.Value(); ok {
		end = max(0, min(end, stop))
	}
	var first int64 // index
	if start, ok := q.After.ID(); ok {
		first = max(start, 1) - 1
		if !q.Inclusive && start >= 1 {
			first++
		}
	}
	if first >= end {
		return nil, nil
	}
	// The filter as topic indexes; a topic never recorded matches nothing.
	var wantBuf [8]uint32
	want := wantBuf[:0]
	for _, t := range q.Topics {
		if i, ok := r.topicIdx[t]; ok {
			want = append(want, i)
		}
	}
	filter := len(q.Topics) > 0
	if filter && len(want) == 0 {
		return nil, nil
	}
	lo, hi := int(first), int(end)
	// First pass: find how many match and the bytes they need, so the result is
	// two allocations whatever the filter.
	n, size, last := 0, 0, lo
	for i := lo; i < hi && n < q.Limit; i++ {
		if rec := r.records.at(i); !filter || slices.Contains(want, rec.topic) {
			n++
			size += int(rec.state.n)
			last = i
		}
	}
	if n == 0 {
		return nil, nil
	}
	out := make([]recorder.Notification, n)
	buf := make([]byte, size)
	j := 0
	for i := lo; i <= last; i++ {
		rec := r.records.at(i)
		if filter && !slices.Contains(want, rec.topic) {
			continue
		}
		k := copy(buf, r.bytes.bytes(rec.state))
		note := &out[j] // field by field, as in SelectEvents
		note.ID = int64(i + 1)
		note.OriginatorID = r.bytes.string(r.streams.at(int(rec.stream)).id)
		note.OriginatorVersion = rec.version
		note.Topic = r.topics[rec.topic]
		note.State = buf[:k:k]
		note.TraceParent = r.traceOf(uint32(i + 1))
		buf = buf[k:]
		j++
	}
	return out, nil
}

// MaxNotificationID returns the last notification id, and false when there is none.
func (r *Recorder) MaxNotificationID(ctx context.Context) (int64, bool, error) {
	if err := r.check(ctx, "max notification id"); err != nil {
		return 0, false, err
	}
	r.mu.RLock()
	n := r.records.n
	r.mu.RUnlock()
	return int64(n), n > 0, nil
}

// Subscribe returns a subscription woken by every insert into this store.
func (r *Recorder) Subscribe(ctx context.Context, after recorder.Position, topics []string) (recorder.Subscription, error) {
	if err := r.check(ctx, "subscribe"); err != nil {
		return nil, err
	}
	return recorder.NewPollingSubscription(r.SelectNotifications, &r.signal, 0, after, slices.Clone(topics)), nil
}

// InsertTracking records an upstream position that advances past the last one.
func (r *Recorder) InsertTracking(ctx context.Context, t recorder.Tracking) error {
	const op = "insert tracking"
	if err := r.check(ctx, op); err != nil {
		return err
	}
	if !r.tracking {
		return recorder.Errorf(recorder.ErrProgramming, op, "a tracking record needs a tracking or process recorder")
	}
	r.mu.Lock()
	if last, ok := r.trackers[t.ApplicationName]; ok && t.NotificationID <= last {
		r.mu.Unlock()
		return trackingConflict(op, t, last)
	}
	r.trackers[t.ApplicationName] = t.NotificationID
	r.mu.Unlock()
	r.signal.Notify()
	return nil
}

// MaxTrackingID returns the last recorded position of the upstream application.
func (r *Recorder) MaxTrackingID(ctx context.Context, applicationName string) (int64, bool, error) {
	if err := r.check(ctx, "max tracking id"); err != nil {
		return 0, false, err
	}
	r.mu.RLock()
	id, ok := r.trackers[applicationName]
	r.mu.RUnlock()
	return id, ok, nil
}

// HasTrackingID reports whether the position has reached notificationID.
func (r *Recorder) HasTrackingID(ctx context.Context, applicationName string, notificationID int64) (bool, error) {
	return recorder.HasTrackingID(ctx, r.MaxTrackingID, applicationName, notificationID)
}

// Wait returns when the position has reached notificationID; see recorder.WaitFor.
func (r *Recorder) Wait(ctx context.Context, applicationName string, notificationID int64, timeout time.Duration) error {
	return recorder.WaitTracking(ctx, r.HasTrackingID, &r.signal, applicationName, notificationID, timeout)
}
