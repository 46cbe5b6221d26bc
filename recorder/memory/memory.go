// Package memory is the in-memory persistence module, registered as "memory" (the
// default module) and under the reference library's names "popo" and
// "eventsourcing.popo".
//
// Every recorder the factory builds is a new, empty store, so applications never
// share state (and runners must hand out their own instances). A store is one
// slice of events in notification order (id = index + 1), an index from
// originator id to that originator's versions, and one RWMutex: inserts check
// the whole batch for conflicts before writing anything, then append and wake
// subscribers and waiters through a recorder.Signal.
package memory

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func init() {
	recorder.Register("memory", Open, "popo", "eventsourcing.popo")
}

// Open returns a factory of in-memory recorders; the module has no settings.
func Open(ctx context.Context, _ recorder.Env) (recorder.Factory, error) {
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
func (f *Factory) AggregateRecorder(ctx context.Context, purpose string) (recorder.AggregateRecorder, error) {
	if err := f.check(ctx, "aggregate recorder"); err != nil {
		return nil, err
	}
	switch purpose {
	case "events", "snapshots":
	default:
		return nil, recorder.Errorf(recorder.ErrProgramming, "aggregate recorder",
			"purpose %q is neither \"events\" nor \"snapshots\"", purpose)
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

// entry locates one version of an originator in the events slice.
type entry struct {
	version int64
	pos     int
}

// eventLog holds the events in notification order, in chunks: appending never
// copies what is stored (one growing slice would copy the whole log again and
// again as it grows), and a chunk is never moved, so positions stay valid.
type eventLog struct {
	chunks [][]recorder.StoredEvent
	n      int
}

const (
	chunkBits = 12
	chunkSize = 1 << chunkBits
)

// append stores e and returns its position. The first chunk grows by append,
// so that a small store stays small; later ones are made whole.
func (l *eventLog) append(e recorder.StoredEvent) int {
	c := l.n >> chunkBits
	if c == len(l.chunks) {
		size := chunkSize
		if c == 0 {
			size = 8
		}
		l.chunks = append(l.chunks, make([]recorder.StoredEvent, 0, size))
	}
	l.chunks[c] = append(l.chunks[c], e)
	l.n++
	return l.n - 1
}

func (l *eventLog) at(pos int) *recorder.StoredEvent {
	return &l.chunks[pos>>chunkBits][pos&(chunkSize-1)]
}

// streamIndex maps originator ids to streams. Canonical UUIDs (lower-case,
// hyphenated: what the framework writes) are keyed by their 16 bytes: the map
// then holds its keys inline, so a lookup among millions hashes 16 bytes and
// compares without following a pointer to the key's text, and the collector
// has no key strings to mark. Any other id is a text id, keyed as it is.
type streamIndex struct {
	uuids map[[16]byte]*stream
	texts map[string]*stream
}

func (x *streamIndex) get(id string) *stream {
	if k, ok := canonicalUUID(id); ok {
		return x.uuids[k]
	}
	return x.texts[id]
}

func (x *streamIndex) set(id string, st *stream) {
	if k, ok := canonicalUUID(id); ok {
		x.uuids[k] = st
		return
	}
	x.texts[id] = st
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

// stream indexes one originator's versions in ascending order. Most aggregates
// in a benchmark and many in practice have one event, so the first entry lives
// in the struct: a new originator costs one allocation.
type stream struct {
	entries []entry
	first   [1]entry
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
	events   eventLog         // notification id = index + 1
	streams  streamIndex      // originator id → its versions
	trackers map[string]int64 // upstream application → last notification id
	arena    []byte           // backing store of small states, see keep
	found    []*stream        // validate's lookups, reused by write

	signal recorder.Signal
}

func newRecorder(closed *atomic.Bool, app, tracking bool) *Recorder {
	return &Recorder{
		closed: closed, app: app, tracking: tracking,
		streams:  streamIndex{uuids: make(map[[16]byte]*stream), texts: make(map[string]*stream)},
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

// validate checks, under the write lock, that no event of the batch is recorded
// already or repeated within the batch and that the tracking record advances.
func (r *Recorder) validate(op string, events []recorder.StoredEvent, t *recorder.Tracking) error {
	r.found = r.found[:0]
	for i := range events {
		e := &events[i]
		st := r.streams.get(e.OriginatorID)
		if i > 0 && st == nil && e.OriginatorID == events[i-1].OriginatorID {
			st = r.found[i-1] // still nil: a new stream, looked up once
		}
		r.found = append(r.found, st)
		if st == nil {
			continue
		}
		if _, found := search(st.entries, e.OriginatorVersion); found {
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

// write appends a validated batch; the caller holds the write lock.
func (r *Recorder) write(events []recorder.StoredEvent, t *recorder.Tracking) []int64 {
	var ids []int64
	if r.app && len(events) > 0 {
		ids = make([]int64, len(events))
	}
	var prev *stream
	for i := range events {
		e := events[i]
		e.State = r.keep(e.State)
		pos := r.events.append(e)
		en := entry{version: e.OriginatorVersion, pos: pos}
		st := r.found[i]
		switch {
		case st != nil:
		case i > 0 && e.OriginatorID == events[i-1].OriginatorID:
			st = prev
		default:
			// Validate saw no stream, but an earlier event of a batch with
			// several originators may have made it.
			if st = r.streams.get(e.OriginatorID); st == nil {
				st = &stream{first: [1]entry{en}}
				st.entries = st.first[:]
				if rest := len(events) - i; rest > 1 && events[len(events)-1].OriginatorID == e.OriginatorID {
					// Likely a new aggregate's batch: size its index once.
					st.entries = make([]entry, 1, rest)
					st.entries[0] = en
				}
				r.streams.set(e.OriginatorID, st)
				prev = st
				if ids != nil {
					ids[i] = int64(pos + 1)
				}
				continue
			}
		}
		st.add(en)
		prev = st
		if ids != nil {
			ids[i] = int64(pos + 1)
		}
	}
	clear(r.found) // drop the pointers until the next batch
	if t != nil {
		r.trackers[t.ApplicationName] = t.NotificationID
	}
	return ids
}

func (st *stream) add(en entry) {
	if n := len(st.entries); n == 0 || st.entries[n-1].version < en.version {
		st.entries = append(st.entries, en)
		return
	}
	// Versions may arrive out of order (a lower version inserted later, which the
	// contract allows); keep the index sorted.
	i, _ := search(st.entries, en.version)
	st.entries = slices.Insert(st.entries, i, en)
}

// search returns the index of the first entry whose version is ≥ v, and whether
// it is v.
func search(entries []entry, v int64) (int, bool) {
	if n := len(entries); n == 0 || entries[n-1].version < v {
		return n, false
	}
	lo, hi := 0, len(entries)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if entries[m].version < v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, entries[lo].version == v
}

// after returns the index of the first entry whose version is > v.
func after(entries []entry, v int64) int {
	if v == math.MaxInt64 {
		return len(entries)
	}
	i, _ := search(entries, v+1)
	return i
}

const (
	arenaChunk = 64 << 10
	arenaMax   = 2 << 10
)

// empty is the state of events recorded with none: non-nil, and with no
// capacity, so that appending to it never writes into shared memory.
var empty = make([]byte, 0)

// keep copies a state into the store, so callers cannot mutate it. Small states
// are packed into shared chunks, which saves an allocation per event; each is
// sliced with its capacity capped, and reads copy them out again.
func (r *Recorder) keep(b []byte) []byte {
	n := len(b)
	if n == 0 {
		return empty
	}
	if n > arenaMax {
		return slices.Clone(b)
	}
	if cap(r.arena)-len(r.arena) < n {
		r.arena = make([]byte, 0, arenaChunk)
	}
	start := len(r.arena)
	r.arena = append(r.arena, b...)
	return r.arena[start : start+n : start+n]
}

// SelectEvents returns one originator's events; see recorder.EventQuery.
func (r *Recorder) SelectEvents(ctx context.Context, originatorID string, q recorder.EventQuery) ([]recorder.StoredEvent, error) {
	if err := r.check(ctx, "select events"); err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	var entries []entry
	if st := r.streams.get(originatorID); st != nil {
		entries = st.entries
	}
	lo, hi := 0, len(entries)
	if q.After != nil {
		lo = after(entries, *q.After)
	}
	if q.UpTo != nil {
		hi = after(entries, *q.UpTo)
	}
	if lo >= hi {
		return nil, nil
	}
	n := hi - lo
	if q.Limit > 0 && n > q.Limit {
		n = q.Limit
	}
	if q.Desc {
		lo = hi - n
	}
	selected := entries[lo : lo+n]
	size := 0
	for _, en := range selected {
		size += len(r.events.at(en.pos).State)
	}
	buf := make([]byte, 0, size)
	out := make([]recorder.StoredEvent, n)
	for i, en := range selected {
		j := i
		if q.Desc {
			j = n - 1 - i
		}
		out[j], buf = r.copyOut(r.events.at(en.pos), buf)
	}
	return out, nil
}

// copyOut returns e with its state copied into buf, so callers cannot mutate the store.
func (r *Recorder) copyOut(stored *recorder.StoredEvent, buf []byte) (recorder.StoredEvent, []byte) {
	e := *stored
	start := len(buf)
	buf = append(buf, e.State...)
	e.State = buf[start:len(buf):len(buf)]
	return e, buf
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
	end := int64(r.events.n) // exclusive index
	if q.Stop != nil {
		end = max(0, min(end, *q.Stop))
	}
	var first int64 // index
	if q.Start != nil {
		first = max(*q.Start, 1) - 1
		if q.ExclusiveStart && *q.Start >= 1 {
			first++
		}
	}
	if first >= end {
		return nil, nil
	}
	lo, hi := int(first), int(end)
	// First pass: find how many match and the bytes they need, so the result is
	// two allocations whatever the filter.
	n, size, last := 0, 0, lo
	for i := lo; i < hi && n < q.Limit; i++ {
		if e := r.events.at(i); recorder.MatchTopic(q.Topics, e.Topic) {
			n++
			size += len(e.State)
			last = i
		}
	}
	if n == 0 {
		return nil, nil
	}
	out := make([]recorder.Notification, 0, n)
	buf := make([]byte, 0, size)
	for i := lo; i <= last; i++ {
		if stored := r.events.at(i); recorder.MatchTopic(q.Topics, stored.Topic) {
			var e recorder.StoredEvent
			e, buf = r.copyOut(stored, buf)
			out = append(out, recorder.Notification{StoredEvent: e, ID: int64(i + 1)})
		}
	}
	return out, nil
}

// MaxNotificationID returns the last notification id, and false when there is none.
func (r *Recorder) MaxNotificationID(ctx context.Context) (int64, bool, error) {
	if err := r.check(ctx, "max notification id"); err != nil {
		return 0, false, err
	}
	r.mu.RLock()
	n := r.events.n
	r.mu.RUnlock()
	return int64(n), n > 0, nil
}

// Subscribe returns a subscription woken by every insert into this store.
func (r *Recorder) Subscribe(ctx context.Context, after *int64, topics []string) (recorder.Subscription, error) {
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
	id, ok, err := r.MaxTrackingID(ctx, applicationName)
	if err != nil {
		return false, fmt.Errorf("has tracking id: %w", err)
	}
	return ok && id >= notificationID, nil
}

// Wait returns when the position has reached notificationID; see recorder.WaitFor.
func (r *Recorder) Wait(ctx context.Context, applicationName string, notificationID int64, timeout time.Duration) error {
	return recorder.WaitFor(ctx, timeout, &r.signal, func(ctx context.Context) (bool, error) {
		return r.HasTrackingID(ctx, applicationName, notificationID)
	})
}
