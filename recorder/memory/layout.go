package memory

import "unsafe"

// The store's layout is chosen for the garbage collector as much as for lookups.
// A store holds millions of events, and the collector scans every object that
// contains pointers on every cycle: with one StoredEvent per event (two strings
// and a slice) plus one index object per originator, marking the store cost a
// quarter of a save. So nothing the store keeps per event or per originator
// holds a pointer:
//
//   - records and streams are fixed-size structs of integers in chunked tables;
//   - states and originator ids are bytes in an append-only arena, referred to
//     by spans (chunk, offset, length);
//   - topics are interned: a record holds a small index into the topic table;
//   - the index from UUID originator ids to streams is a map of [16]byte to
//     uint32, which the collector does not scan either (text ids are keyed by
//     views of the arena, one pointer per text-id originator).
//
// The collector then marks one large pointer-free block per few thousand
// events and scans none of them.

// table is a chunked slice: appending never copies what is stored (one growing
// slice would copy the whole table again and again as it grows), and a chunk is
// never moved, so positions stay valid.
type table[T any] struct {
	chunks [][]T
	n      int
}

const (
	tableBits = 12
	tableSize = 1 << tableBits
)

// add appends v and returns its position. The first chunk grows by append, so
// that a small store stays small; later ones are made whole.
func (t *table[T]) add(v T) int {
	c := t.n >> tableBits
	if c == len(t.chunks) {
		size := tableSize
		if c == 0 {
			size = 8
		}
		t.chunks = append(t.chunks, make([]T, 0, size))
	}
	t.chunks[c] = append(t.chunks[c], v)
	t.n++
	return t.n - 1
}

func (t *table[T]) at(pos int) *T {
	return &t.chunks[pos>>tableBits][pos&(tableSize-1)]
}

// span locates bytes in an arena.
type span struct {
	chunk, off, n uint32
}

// arena holds byte strings that never change once written: the states of
// events and the text of originator ids. Small ones are packed into chunks;
// a chunk is never moved or written over, so a view into it (a capped slice or
// a string made with unsafe.String) stays valid and unchanged for as long as
// it is held. States are still copied out on every read: callers may write
// into what they get and must not change the store.
type arena struct {
	chunks [][]byte // each at its full length
	cur    []byte   // the chunk small byte strings are packed into
	curIdx uint32   // its index in chunks
	used   uint32   // how much of it is taken
}

const (
	// Chunks start small, so that the many small stores of tests stay small,
	// and double up to arenaChunk.
	arenaFirst = 1 << 10
	arenaChunk = 64 << 10
	// arenaMax is the largest byte string packed into a shared chunk; a larger
	// one gets a chunk of its own, so that it wastes no room at a chunk's end.
	arenaMax = 2 << 10
)

// reserve returns the span of n new bytes and the memory to write them into.
func (a *arena) reserve(n int) (span, []byte) {
	if n == 0 {
		return span{}, nil
	}
	if n > arenaMax {
		b := make([]byte, n)
		a.chunks = append(a.chunks, b)
		return span{chunk: uint32(len(a.chunks) - 1), n: uint32(n)}, b
	}
	if int(a.used)+n > len(a.cur) {
		size := min(max(2*len(a.cur), arenaFirst), arenaChunk)
		a.cur = make([]byte, size)
		a.chunks = append(a.chunks, a.cur)
		a.curIdx, a.used = uint32(len(a.chunks)-1), 0
	}
	s := span{chunk: a.curIdx, off: a.used, n: uint32(n)}
	a.used += uint32(n)
	return s, a.cur[s.off : s.off+s.n : s.off+s.n]
}

func (a *arena) add(b []byte) span {
	s, dst := a.reserve(len(b))
	copy(dst, b)
	return s
}

func (a *arena) addString(str string) span {
	s, dst := a.reserve(len(str))
	copy(dst, str)
	return s
}

// bytes returns a view of s, capped so that appending to it cannot write into
// the arena. Only the store itself uses views of states; readers get copies.
func (a *arena) bytes(s span) []byte {
	if s.n == 0 {
		return nil
	}
	return a.chunks[s.chunk][s.off : s.off+s.n : s.off+s.n]
}

// string returns s as a string that shares the arena's memory, which is safe
// because arena bytes are never written again: every read of an originator id
// returns the same few bytes instead of allocating a copy.
func (a *arena) string(s span) string {
	if s.n == 0 {
		return ""
	}
	return unsafe.String(&a.chunks[s.chunk][s.off], s.n)
}

// record is one stored event; its position in the log is its notification id
// minus one.
type record struct {
	version int64
	state   span   // the encoded state
	stream  uint32 // index into Recorder.streams, which holds the originator id
	topic   uint32 // index into Recorder.topics
	// prev links the records of one originator in descending version order:
	// it is the notification id (position + 1) of the record with the next
	// lower version, 0 at the lowest.
	prev uint32
}

// stream is one originator's history: the head of its chain of records.
// Aggregates are read whole or from a snapshot on, and written at the top, so
// a chain walked down from the highest version serves the common queries with
// no per-originator allocation (most aggregates have a single event).
type stream struct {
	id   span   // the originator id's text
	last uint32 // notification id of the record with the highest version, 0 if none
}

// noStream marks an originator with no stream yet.
const noStream = ^uint32(0)
