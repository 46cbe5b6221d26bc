package codec

import (
	"errors"
	"fmt"
	"reflect"
	"time"
	"unsafe"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/internal/seal"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// ErrDeserialisation reports stored state that cannot be opened or decoded;
// package eventsourcing exports it under the same name.
var ErrDeserialisation = errors.New("deserialisation error")

// AppendStored encodes an event of the originator whose id has the text oid
// as a stored event: its state, appended to buf, then sealed by pipe. A
// batch's states so share one buffer: each state is sliced with its
// capacity capped, and buf is never written again where a state lies. It
// returns buf extended.
func (t *Registry) AppendStored(buf []byte, pipe seal.Pipeline, oid string, version int64, timestamp time.Time, originatorTopic string, payload any) (recorder.StoredEvent, []byte, error) {
	ti, err := t.TypeOf(reflect.TypeOf(payload))
	if err != nil {
		return recorder.StoredEvent{}, buf, fmt.Errorf("encode event %s v%d: %w", oid, version, err)
	}
	start := len(buf)
	if buf, err = t.AppendEvent(buf, ti, timestamp, originatorTopic, payload); err != nil {
		return recorder.StoredEvent{}, buf[:start], fmt.Errorf("encode event %q of %s v%d: %w", ti.topic, oid, version, err)
	}
	state := buf[start:len(buf):len(buf)]
	if state, err = pipe.Seal(state); err != nil {
		return recorder.StoredEvent{}, buf, fmt.Errorf("encode event %q of %s v%d: %w", ti.topic, oid, version, err)
	}
	return recorder.StoredEvent{OriginatorID: oid, OriginatorVersion: version, Topic: ti.topic, State: state}, buf, nil
}

// Decoded is a stored event decoded: the envelope's fields besides the
// version, and the payload.
type Decoded struct {
	OriginatorID uuid.UUID
	Timestamp    time.Time
	// OriginatorTopic is nil but on a creation event; it aliases the
	// stored state or a scratch buffer, and is valid until the next read.
	OriginatorTopic []byte
	Data            any
}

// DecodeStored opens s with pipe and decodes it. Any failure wraps
// ErrDeserialisation and names the topic, id and version.
func (t *Registry) DecodeStored(pipe seal.Pipeline, s *recorder.StoredEvent) (Decoded, error) {
	// Without the string arena: the strings of one event are made on their own.
	r := Reader{t: t, pipe: pipe}
	var d Decoded
	err := r.ReadAt(unsafe.Slice(s, 1), 0, true, &d)
	return d, err
}

// Reader decodes the stored events of one read, an aggregate's history,
// say, sharing allocations among them: the payloads of a run of events of
// one type are decoded into one allocation (see payloadArena), and their
// strings are carved from shared chunks (see stringArena). It knows the
// originator id the read selected by, so that it parses no id twice. A
// Reader is used by one goroutine; it is best kept as a local variable,
// where it costs no allocation of its own.
type Reader struct {
	t        *Registry
	pipe     seal.Pipeline
	sid      string    // the text of id, as the read selected by it ("" if none)
	id       uuid.UUID // parsed
	topic    string    // of the run being decoded
	ti       *Type     // registered under topic
	payloads payloadArena
	strs     stringArena
}

// Reader returns a reader of stored events selected by the originator id
// sid (id parsed; "" and uuid.Nil when not known), opened with pipe.
func (t *Registry) Reader(pipe seal.Pipeline, sid string, id uuid.UUID) Reader {
	return Reader{t: t, pipe: pipe, sid: sid, id: id, strs: stringArena{on: true}}
}

// ReadAt decodes stored[i], the next event of the read, into d: it opens
// the state, upcasts it when its type has upcasters, and decodes it. stored
// are the events of the read, so that a run of events with one topic starts
// once. Without wantTime the timestamp is checked but not made (it is zero).
// d is filled in place rather than returned, and the steps are not split
// into calls of their own: either costs a replay of a long history a copy or
// a call per event. The payload must not be changed, and its strings are
// shared with other payloads of the read.
func (r *Reader) ReadAt(stored []recorder.StoredEvent, i int, wantTime bool, d *Decoded) error {
	s := &stored[i]
	if r.ti == nil || s.Topic != r.topic {
		ti, err := r.t.ByTopic(s.Topic)
		if err != nil {
			return decodeError(s, err)
		}
		n := 1
		for n < len(stored)-i && stored[i+n].Topic == s.Topic {
			n++
		}
		r.topic, r.ti, r.payloads = s.Topic, ti, newPayloadArena(ti, n)
	}
	var err error
	if r.sid != "" && s.OriginatorID == r.sid {
		d.OriginatorID = r.id
	} else if d.OriginatorID, err = uuid.Parse(s.OriginatorID); err != nil {
		return decodeError(s, fmt.Errorf("originator id: %w", err))
	}
	if d.OriginatorID == r.id {
		// The events of one select mostly share one string: compared with
		// itself, the next ones match without reading it.
		r.sid = s.OriginatorID
	}
	state, err := r.pipe.Open(s.State)
	if err != nil {
		return decodeError(s, err)
	}
	if len(r.ti.upcasters) > 0 {
		if state, err = r.t.upcast(state, r.ti); err != nil {
			return decodeError(s, err)
		}
	}
	v := r.payloads.next()
	if d.Timestamp, d.OriginatorTopic, r.strs, err = r.t.decodeEventState(state, r.ti, v, wantTime, r.strs); err != nil {
		return decodeError(s, err)
	}
	d.Data = r.payloads.box(v)
	return nil
}

// decodeError is how every failure to decode s reads.
func decodeError(s *recorder.StoredEvent, err error) error {
	return fmt.Errorf("%w: topic %q originator %s version %d: %w",
		ErrDeserialisation, s.Topic, s.OriginatorID, s.OriginatorVersion, err)
}

// SealSnapshot encodes a snapshot of root, a pointer to an aggregate of
// type ti (see AppendSnapshot), and seals it with pipe.
func (t *Registry) SealSnapshot(pipe seal.Pipeline, ti *Type, at, createdOn, modifiedOn time.Time, root any) ([]byte, error) {
	state, err := t.AppendSnapshot(nil, ti, at, createdOn, modifiedOn, root)
	if err != nil {
		return nil, err
	}
	return pipe.Seal(state)
}

// OpenSnapshot opens the stored snapshot s with pipe and decodes it into
// root, a pointer to a new aggregate of type ti, and its timestamps into
// createdOn and modifiedOn; it returns the aggregate's id. A snapshot of
// another type fails with ErrAggregateType, any other failure wraps
// ErrDeserialisation.
func (t *Registry) OpenSnapshot(pipe seal.Pipeline, s *recorder.StoredEvent, ti *Type, root any, createdOn, modifiedOn *time.Time) (uuid.UUID, error) {
	fail := func(err error) (uuid.UUID, error) {
		return uuid.Nil, fmt.Errorf("%w: snapshot of %s version %d: %w", ErrDeserialisation, s.OriginatorID, s.OriginatorVersion, err)
	}
	id, err := uuid.Parse(s.OriginatorID)
	if err != nil {
		return fail(err)
	}
	state, err := pipe.Open(s.State)
	if err != nil {
		return fail(err)
	}
	if err := t.DecodeSnapshot(state, ti, root, createdOn, modifiedOn); err != nil {
		if errors.Is(err, ErrAggregateType) {
			return uuid.Nil, err
		}
		return fail(err)
	}
	return id, nil
}
