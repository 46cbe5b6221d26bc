package esdbtest

import (
	"encoding/json"
	"hash/maphash"
	"math"
	"math/bits"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
)

const (
	// maxAppendSize is the real node's default cap on one append (1 MiB).
	maxAppendSize = 1 << 20
	// tombstoneRevision is the revision a real node gives the $streamDeleted
	// record of a hard-deleted stream.
	tombstoneRevision = math.MaxInt64
	// softDeletedTB is the $tb value that marks a soft-deleted stream.
	softDeletedTB = math.MaxInt64
	// recordBase is the size of an event's record in a real node's
	// transaction log apart from its strings and payloads (see size).
	recordBase = 88
	// firstPosition is where the first seed record goes: real logs start
	// with epoch records, so positions of user records are well above zero.
	firstPosition = 256

	contentTypeJSON   = "application/json"
	contentTypeBinary = "application/octet-stream"
)

// record is one entry of the log. Records are immutable once committed, so
// readers may use them without holding the store lock.
type record struct {
	Stream      string
	Revision    uint64
	ID          uuid.UUID
	Type        string
	ContentType string
	Created     int64 // .NET ticks (100 ns) since the Unix epoch
	Data        []byte
	Meta        []byte
	Pos         uint64

	encCache
}

// size is the size of the record in a real node's transaction log, so
// that positions step as a real node's do: each record of an append starts
// where the previous one ends. A real node writes an event as a prepare
// record (log format V2, record version 1): its length before and after it
// (4 + 4 bytes), record type and version (1 + 1), log position (8), flags
// (2), transaction position (8) and offset (4), expected version (8), the
// stream name, event id and correlation id (16 + 16), timestamp (8), the
// event type, then data and metadata, each after its length (4). The
// content type is a flag, not a string. A string is its UTF-8 bytes after
// their count as a ULEB128.
func (r *record) size() uint64 {
	return recordBase + logStringSize(len(r.Stream)) + logStringSize(len(r.Type)) + uint64(len(r.Data)) + uint64(len(r.Meta))
}

// logStringSize is the size of a string of n UTF-8 bytes in the log.
func logStringSize(n int) uint64 {
	return uint64(n) + uint64(max(1, (bits.Len(uint(n))+6)/7))
}

// streamMeta holds the parsed system keys of a stream's latest metadata.
type streamMeta struct {
	raw      []byte
	tb       int64 // -1 when unset
	maxCount int64 // -1 when unset
	maxAge   int64 // seconds, -1 when unset
}

func parseStreamMeta(raw []byte) streamMeta {
	m := streamMeta{raw: raw, tb: -1, maxCount: -1, maxAge: -1}
	var keys struct {
		TB       *int64 `json:"$tb"`
		MaxCount *int64 `json:"$maxCount"`
		MaxAge   *int64 `json:"$maxAge"`
	}
	if json.Unmarshal(raw, &keys) != nil {
		return m
	}
	if keys.TB != nil {
		m.tb = *keys.TB
	}
	if keys.MaxCount != nil {
		m.maxCount = *keys.MaxCount
	}
	if keys.MaxAge != nil {
		m.maxAge = *keys.MaxAge
	}
	return m
}

// stream indexes one stream's records in the log.
type stream struct {
	name string
	// revs[r] is the log index of revision r. Append-only, so a reader may
	// keep a copy of the slice header taken under the read lock.
	revs      []int
	ids       idIndex
	tombstone int // log index of the $streamDeleted record, or -1
	hasMeta   bool
	meta      streamMeta
}

// idAt returns the event id of a revision of the stream.
func (s *stream) idAt(log []*record) func(rev uint64) uuid.UUID {
	return func(rev uint64) uuid.UUID { return log[s.revs[rev]].ID }
}

// idIndex finds the latest revision of an event id in a stream, for
// idempotent re-appends. Every appended event is added but only the first
// event of an append is looked up, so adding must be cheap: a map keyed by
// id cost a cache miss per event once a stream outgrew the caches (most of
// the store's cost of an append). Here the ids' hashes go into buckets that
// are only appended to, and a lookup scans one bucket (at most a few KiB)
// and checks its candidates against the log.
type idIndex struct {
	// buckets has a power-of-two length; each bucket is in revision order.
	buckets [][]idEntry
	n       int
}

type idEntry struct {
	hash uint64
	rev  uint64
}

// idBucketSize is the mean bucket length at which the buckets double.
const idBucketSize = 128

var idSeed = maphash.MakeSeed()

func (x *idIndex) add(id uuid.UUID, rev uint64) {
	if x.n >= len(x.buckets)*idBucketSize {
		x.grow()
	}
	h := maphash.Comparable(idSeed, id)
	b := &x.buckets[h&uint64(len(x.buckets)-1)]
	*b = append(*b, idEntry{hash: h, rev: rev})
	x.n++
}

// grow doubles the buckets. Each new bucket takes its entries from one old
// bucket, in order, and room to double before the next growth.
func (x *idIndex) grow() {
	if len(x.buckets) == 0 {
		// Most streams are small and never grow past this one bucket.
		x.buckets = make([][]idEntry, 1)
		return
	}
	n := 2 * len(x.buckets)
	mask := uint64(n - 1)
	counts := make([]int, n)
	for _, b := range x.buckets {
		for _, e := range b {
			counts[e.hash&mask]++
		}
	}
	buckets := make([][]idEntry, n)
	for i, c := range counts {
		if c > 0 {
			buckets[i] = make([]idEntry, 0, 2*c)
		}
	}
	for _, b := range x.buckets {
		for _, e := range b {
			i := e.hash & mask
			buckets[i] = append(buckets[i], e)
		}
	}
	x.buckets = buckets
}

// get returns the latest revision of id; idAt gives the id of a revision.
func (x *idIndex) get(id uuid.UUID, idAt func(uint64) uuid.UUID) (uint64, bool) {
	if len(x.buckets) == 0 {
		return 0, false
	}
	h := maphash.Comparable(idSeed, id)
	b := x.buckets[h&uint64(len(x.buckets)-1)]
	for i := len(b) - 1; i >= 0; i-- {
		if b[i].hash == h && idAt(b[i].rev) == id {
			return b[i].rev, true
		}
	}
	return 0, false
}

func (s *stream) last() int64 { return int64(len(s.revs)) - 1 }

func (s *stream) softDeleted() bool { return s.hasMeta && s.meta.tb == softDeletedTB }

// expectKind is the kind of expected stream revision of a write.
type expectKind int

const (
	expectAny expectKind = iota
	expectNoStream
	expectExists
	expectRevision
)

type expectation struct {
	kind expectKind
	rev  uint64
}

// proposed is one event of an append request.
type proposed struct {
	ID          uuid.UUID
	Type        string
	ContentType string
	Data        []byte
	Meta        []byte
}

// writeResult is the outcome of an append that did not fail with an error.
type writeResult struct {
	// wrong is set when the expected revision did not match.
	wrong     bool
	noStream  bool // current revision is "no stream"
	revision  uint64
	hasPos    bool
	pos       uint64
	expected  expectation
	actualRev int64 // for wrong-expected-version answers; -1 = no stream
}

// streamDeletedError reports a tombstoned (or, for stream_exists, a
// soft-deleted) stream.
type streamDeletedError struct{ stream string }

func (e *streamDeletedError) Error() string { return "event stream '" + e.stream + "' is deleted" }

// wrongVersionError reports a failed expected-revision check on delete.
type wrongVersionError struct {
	stream   string
	expected expectation
	actual   int64
}

func (e *wrongVersionError) Error() string { return "wrong expected version for stream " + e.stream }

// store is the single log of the server. One RWMutex guards it: writers
// take the write lock for the whole check-and-commit, readers take the read
// lock only long enough to copy slice headers.
type store struct {
	mu      sync.RWMutex
	log     []*record
	streams map[string]*stream
	nextPos uint64
	// notify is closed and replaced after every commit, waking every live
	// subscriber at once.
	notify chan struct{}
	file   *logFile
	now    func() time.Time
	// lastIndexed is the stream of the last record indexed.
	lastIndexed *stream
}

func newStore() *store {
	return &store{
		streams: make(map[string]*stream),
		nextPos: firstPosition,
		notify:  make(chan struct{}),
		now:     time.Now,
	}
}

func (s *store) ticks() int64 { return s.now().UnixNano() / 100 }

// getStream returns the stream, creating its index entry when create is set.
func (s *store) getStream(name string, create bool) *stream {
	st := s.streams[name]
	if st == nil && create {
		st = &stream{name: name, tombstone: -1}
		s.streams[name] = st
	}
	return st
}

// index adds a record (already positioned) to the log and its stream. It is
// shared by live commits and by replay of a data file.
func (s *store) index(r *record) {
	i := len(s.log)
	s.log = append(s.log, r)
	s.nextPos = r.Pos + r.size()
	// Consecutive records nearly always share a stream (a batch is one
	// stream), so the last one saves a map lookup per event.
	st := s.lastIndexed
	if st == nil || st.name != r.Stream {
		st = s.getStream(r.Stream, true)
		s.lastIndexed = st
	}
	if r.Revision == tombstoneRevision && r.Type == "$streamDeleted" {
		st.tombstone = i
		return
	}
	st.revs = append(st.revs, i)
	st.ids.add(r.ID, r.Revision)
	if target, ok := metaTarget(r.Stream); ok {
		t := s.getStream(target, true)
		t.hasMeta = true
		t.meta = parseStreamMeta(r.Data)
	}
}

// metaTarget returns the stream that a $$ metadata stream describes.
func metaTarget(name string) (string, bool) {
	if len(name) > 2 && name[0] == '$' && name[1] == '$' {
		return name[2:], true
	}
	return "", false
}

// commit positions and indexes new records, persists them and wakes
// subscribers. The caller holds the write lock.
func (s *store) commit(recs []*record) error {
	for _, r := range recs {
		r.Pos = s.nextPos
		s.nextPos += r.size()
	}
	if s.file != nil {
		if err := s.file.write(recs); err != nil {
			// Roll back the positions: nothing was indexed yet.
			s.nextPos = recs[0].Pos
			return err
		}
	}
	for _, r := range recs {
		s.index(r)
	}
	close(s.notify)
	s.notify = make(chan struct{})
	return nil
}

// idempotent reports whether events equal the stream's events starting at
// revision from; it returns the revision of the last matching event.
func idempotent(st *stream, log []*record, from int64, events []proposed) (uint64, bool) {
	if from < 0 || len(events) == 0 || from+int64(len(events)) > int64(len(st.revs)) {
		return 0, false
	}
	for i, e := range events {
		if log[st.revs[from+int64(i)]].ID != e.ID {
			return 0, false
		}
	}
	return uint64(from) + uint64(len(events)) - 1, true
}

// append writes events to a stream after checking the expected revision.
func (s *store) append(name string, exp expectation, events []proposed) (writeResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	st := s.streams[name]
	res := writeResult{expected: exp}
	last := int64(-1)
	soft := false
	if s.metaOfTombstonedLocked(name) {
		return res, &streamDeletedError{stream: name}
	}
	if st != nil {
		if st.tombstone >= 0 {
			return res, &streamDeletedError{stream: name}
		}
		last = st.last()
		soft = st.softDeleted()
	}
	res.actualRev = last

	// Idempotent re-append: the same ids right after the expected revision
	// answer the original result and write nothing. Per stream only.
	if st != nil && len(events) > 0 {
		from := int64(-2)
		switch exp.kind {
		case expectNoStream:
			if last >= 0 && !soft {
				from = 0
			}
		case expectRevision:
			if int64(exp.rev) != last {
				from = int64(exp.rev) + 1
			}
		case expectAny, expectExists:
			if r, ok := st.ids.get(events[0].ID, st.idAt(s.log)); ok {
				from = int64(r)
			}
		}
		if from >= 0 {
			if rev, ok := idempotent(st, s.log, from, events); ok {
				res.revision = rev
				res.hasPos = true
				res.pos = s.log[st.revs[rev]].Pos
				return res, nil
			}
			if exp.kind == expectAny || exp.kind == expectExists {
				// A partial match of a run of recent events.
				res.wrong = true
				return res, nil
			}
		}
	}

	ok := false
	switch exp.kind {
	case expectAny:
		ok = true
	case expectNoStream:
		ok = last < 0 || soft
	case expectExists:
		if soft {
			return res, &streamDeletedError{stream: name}
		}
		ok = last >= 0 || (st != nil && st.hasMeta)
	case expectRevision:
		ok = int64(exp.rev) == last
	}
	if !ok {
		res.wrong = true
		return res, nil
	}

	if len(events) == 0 {
		if last < 0 {
			res.noStream = true
			return res, nil
		}
		res.revision = uint64(last)
		res.hasPos = true
		res.pos = s.log[st.revs[last]].Pos
		return res, nil
	}

	created := s.ticks()
	recs := make([]*record, 0, len(events)+1)
	// One allocation for the whole batch rather than one per event: the
	// records live as long as the log, so they may as well share a block.
	block := make([]record, len(events))
	for i, e := range events {
		r := &block[i]
		*r = record{
			Stream: name, Revision: uint64(last + 1 + int64(i)), ID: e.ID, Type: e.Type,
			ContentType: e.ContentType, Created: created, Data: e.Data, Meta: e.Meta,
		}
		recs = append(recs, r)
	}
	lastRec := recs[len(recs)-1]
	if soft {
		// Recreating a soft-deleted stream: the truncation moves to the
		// first new revision, keeping the other metadata keys, in a
		// record after the events, as a real node writes it.
		recs = append(recs, s.metaRecord(st, last+1, created))
	}
	if err := s.commit(recs); err != nil {
		return res, err
	}
	res.revision = lastRec.Revision
	res.hasPos = true
	res.pos = lastRec.Pos
	return res, nil
}

// metaRecord builds a $metadata record for st with $tb set to tb, keeping
// the other keys of the current metadata.
func (s *store) metaRecord(st *stream, tb int64, created int64) *record {
	m := map[string]json.RawMessage{}
	if st.hasMeta {
		_ = json.Unmarshal(st.meta.raw, &m) // invalid metadata is replaced
	}
	m["$tb"] = json.RawMessage(jsonInt(tb))
	data, _ := json.Marshal(m) // a map of raw messages always marshals
	metaName := "$$" + st.name
	var rev uint64
	if ms := s.streams[metaName]; ms != nil {
		rev = uint64(len(ms.revs))
	}
	return &record{
		Stream: metaName, Revision: rev, ID: uuid.New(), Type: "$metadata",
		ContentType: contentTypeJSON, Created: created, Data: data, Meta: []byte{},
	}
}

func jsonInt(v int64) []byte {
	b, _ := json.Marshal(v)
	return b
}

// metaOfTombstonedLocked reports whether name is the metadata stream of a
// tombstoned stream, which a real node treats as deleted too. The caller
// holds the lock.
func (s *store) metaOfTombstonedLocked(name string) bool {
	target, ok := metaTarget(name)
	if !ok {
		return false
	}
	st := s.streams[target]
	return st != nil && st.tombstone >= 0
}

// deleteRefused is the error of a delete (soft) or tombstone that may not
// go ahead, nil if it may: first a stream tombstoned, or soft-deleted and
// expected to exist; then a failed expected-revision check. The caller
// holds the lock.
func deleteRefused(st *stream, name string, exp expectation, soft bool) error {
	if st != nil && (st.tombstone >= 0 || (exp.kind == expectExists && st.softDeleted())) {
		return &streamDeletedError{stream: name}
	}
	if last, ok := checkDelete(st, exp, soft); !ok {
		return &wrongVersionError{stream: name, expected: exp, actual: last}
	}
	return nil
}

// checkDelete applies the expected-revision check of a delete or tombstone.
func checkDelete(st *stream, exp expectation, soft bool) (int64, bool) {
	last := int64(-1)
	exists := false
	if st != nil {
		last = st.last()
		exists = last >= 0 || st.hasMeta
	}
	switch exp.kind {
	case expectAny:
		return last, exists || !soft
	case expectNoStream:
		return last, last < 0 && (exists || !soft)
	case expectExists:
		return last, exists
	default:
		return last, int64(exp.rev) == last
	}
}

// softDelete marks a stream deleted by setting $tb to the maximum.
func (s *store) softDelete(name string, exp expectation) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if err := deleteRefused(st, name, exp, true); err != nil {
		return 0, err
	}
	rec := s.metaRecord(st, softDeletedTB, s.ticks())
	if err := s.commit([]*record{rec}); err != nil {
		return 0, err
	}
	return rec.Pos, nil
}

// tombstone hard-deletes a stream for good.
func (s *store) tombstone(name string, exp expectation) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if err := deleteRefused(st, name, exp, false); err != nil {
		return 0, err
	}
	rec := &record{
		Stream: name, Revision: tombstoneRevision, ID: uuid.New(), Type: "$streamDeleted",
		ContentType: contentTypeBinary, Created: s.ticks(), Data: []byte{}, Meta: []byte{},
	}
	if err := s.commit([]*record{rec}); err != nil {
		return 0, err
	}
	return rec.Pos, nil
}

// snapshot is a consistent view of the log for lock-free reading.
type snapshot struct {
	log    []*record
	next   uint64
	notify chan struct{}
}

func (s *store) snap() snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return snapshot{log: s.log, next: s.nextPos, notify: s.notify}
}

// streamView is a consistent view of one stream.
type streamView struct {
	exists    bool
	revs      []int
	tombstone int
	meta      streamMeta
	hasMeta   bool
	// metaOfTombstoned: the stream is the metadata of a tombstoned stream.
	metaOfTombstoned bool
	snapshot
}

func (s *store) streamSnap(name string) streamView {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v := streamView{tombstone: -1, snapshot: snapshot{log: s.log, next: s.nextPos, notify: s.notify},
		metaOfTombstoned: s.metaOfTombstonedLocked(name)}
	if st := s.streams[name]; st != nil {
		v.exists = len(st.revs) > 0 || st.tombstone >= 0
		v.revs = st.revs
		v.tombstone = st.tombstone
		v.meta = st.meta
		v.hasMeta = st.hasMeta
	}
	return v
}

// visibleFrom is the first revision a stream read may return, applying $tb
// and $maxCount ($$ streams keep only their latest event).
func (v *streamView) visibleFrom(name string) int64 {
	lo := int64(0)
	n := int64(len(v.revs))
	if v.hasMeta {
		if v.meta.tb > lo {
			lo = v.meta.tb
		}
		if v.meta.maxCount >= 0 && n-v.meta.maxCount > lo {
			lo = n - v.meta.maxCount
		}
	}
	if _, ok := metaTarget(name); ok && n-1 > lo {
		lo = n - 1
	}
	return lo
}

// expired reports whether $maxAge hides the record.
func (v *streamView) expired(r *record, nowTicks int64) bool {
	return v.hasMeta && v.meta.maxAge >= 0 && r.Created < nowTicks-v.meta.maxAge*int64(time.Second/100)
}

// seek returns the index of the first record with position >= pos and
// whether pos is exactly a record's position.
func seek(log []*record, pos uint64) (int, bool) {
	i := sort.Search(len(log), func(i int) bool { return log[i].Pos >= pos })
	return i, i < len(log) && log[i].Pos == pos
}

// validPosition reports whether a $all read may start at pos: zero, a
// record's position or at/after the end of the log.
func (sn *snapshot) validPosition(pos uint64) (int, bool) {
	i, exact := seek(sn.log, pos)
	return i, pos == 0 || exact || pos >= sn.next
}
