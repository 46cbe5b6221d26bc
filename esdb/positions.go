package esdb

import (
	"context"
	"math/bits"
	"sync/atomic"
	"unicode/utf8"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// The positions of a batch's events.
//
// An append answers with one position, the last event's. EventStoreDB writes
// the events of one append as consecutive records of its transaction log,
// each event's $all position being the byte offset of its record, so each
// earlier event's position is the next one's minus the size of its own
// record. That size is a function of the lengths of what the module sent
// (stream name, event type, data, metadata), as below. docs/eventstoredb.md
// ("Appends and positions") gives the server's side of this.
//
// Two checks keep the derivation exact where the server may differ: the
// first batch appended through a factory is also read back and compared
// (a log format with other records, such as the experimental V3 one, fails
// the comparison, and the factory then reads every batch back); and a
// batch whose derived span crosses a chunk boundary is read back, since
// servers before 23.10 may split such an append across two chunks.

// recordBase is the size of an event's record in EventStoreDB's log (the
// prepare record of log format V2, record version 1) apart from its
// strings and payloads: the length prefix and suffix (4 + 4), record type
// and version (1 + 1), log position (8), flags (2), transaction position
// (8), transaction offset (4), expected version (8), event id and
// correlation id (16 + 16), timestamp (8), and the lengths of data and
// metadata (4 + 4).
const recordBase = 88

// chunkSize is the size of a chunk of the transaction log (the server's
// default). Records of one append share a chunk from 23.10 on; before,
// an append crossing a chunk's end went on in the next chunk, after a gap.
const chunkSize = 256 << 20

// stringSize is the size of a string in the log: its UTF-8 bytes after
// their count as a ULEB128 (the .NET BinaryWriter's string encoding).
func stringSize(n int) uint64 {
	return uint64(n) + uint64(max(1, (bits.Len(uint(n))+6)/7))
}

// recordSize is the size the server's log gives the record of e appended
// to a stream whose name takes streamBytes (a valid UTF-8 string).
func recordSize(streamBytes uint64, e *esdbclient.EventData) uint64 {
	return recordBase + streamBytes + stringSize(len(e.EventType)) + uint64(len(e.Data)) + uint64(len(e.Metadata))
}

// derivePositions fills ids with the positions of the events of data, the
// last of which is at last, and reports whether the derivation applies:
// names the server stores as sent (valid UTF-8: it decodes and re-encodes
// them), positions that stay positive, one chunk.
func derivePositions(stream string, data []esdbclient.EventData, last uint64, ids []int64) bool {
	if !utf8.ValidString(stream) {
		return false
	}
	sb := stringSize(len(stream))
	pos := last
	ids[len(ids)-1] = int64(last)
	for i := len(data) - 2; i >= 0; i-- {
		e := &data[i]
		if !utf8.ValidString(e.EventType) {
			return false
		}
		size := recordSize(sb, e)
		if size >= pos {
			return false
		}
		pos -= size
		ids[i] = int64(pos)
	}
	return pos/chunkSize == last/chunkSize
}

// The states of a factory's check of derived positions.
const (
	layoutUnchecked int32 = iota
	layoutExact           // a read-back matched: derive
	layoutOther           // a read-back differed: read every batch back
)

// positionCheck is a factory's record of whether derived positions matched
// the server's. The zero value is unchecked.
type positionCheck struct{ state atomic.Int32 }

// positions returns the $all positions of the events of data, just
// appended to stream from version first, whose last event the server put
// at last (0: no position reported).
func (r *Recorder) positions(ctx context.Context, op, stream string, first int64, data []esdbclient.EventData, last uint64) ([]int64, error) {
	ids := make([]int64, len(data))
	if last != 0 && len(data) == 1 {
		ids[0] = int64(last)
		return ids, nil
	}
	derived := last != 0 && derivePositions(stream, data, last, ids)
	state := r.f.positions.state.Load()
	if derived && state == layoutExact {
		return ids, nil
	}
	read, err := r.readBack(ctx, op, stream, first, len(data))
	if err != nil {
		return nil, err
	}
	if derived && state == layoutUnchecked {
		if equalIDs(ids, read) {
			r.f.positions.state.CompareAndSwap(layoutUnchecked, layoutExact)
		} else if r.f.positions.state.CompareAndSwap(layoutUnchecked, layoutOther) {
			r.f.log.Warn("the server's positions of a batch differ from those derived from its record sizes; every batch is read back",
				"stream", stream, "derived", ids, "read", read)
		}
	}
	return read, nil
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// readBack reads the n events appended to stream from version first and
// returns their commit positions (stream reads carry positions from 22.6).
func (r *Recorder) readBack(ctx context.Context, op, stream string, first int64, n int) ([]int64, error) {
	read, err := r.readStream(ctx, stream, esdbclient.Forwards, esdbclient.Revision(uint64(first)), uint64(n), nil)
	if err != nil {
		return nil, &recorder.Error{Kind: kindOf(err), Op: op + ": read back positions", OriginatorID: stream, Version: first, Err: err}
	}
	if len(read) != n {
		return nil, recorder.Errorf(recorder.ErrInternal, op, "read back %d of the %d events appended to %q", len(read), n, stream)
	}
	ids := make([]int64, n)
	for i, e := range read {
		ids[i] = int64(e.Position.Commit)
	}
	return ids, nil
}
