package esdbtest

import (
	"encoding/binary"
	"errors"
	"sync/atomic"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	protobuf "google.golang.org/protobuf/proto"
)

// rawMessage is a message already in wire form. Reads and subscriptions
// send the same ReadResp for a record again and again, so it is encoded
// once and cached on the record; this is most of the server's cost of a
// $all read.
type rawMessage []byte

// rawCodec is the proto codec that passes rawMessage through unchanged.
type rawCodec struct{ encoding.CodecV2 }

func newRawCodec() rawCodec { return rawCodec{encoding.GetCodecV2(proto.Name)} }

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(rawMessage); ok {
		return mem.BufferSlice{mem.SliceBuffer(r)}, nil
	}
	return c.CodecV2.Marshal(v)
}

// encodedEvent returns the wire form of the ReadResp carrying r, caching
// it per UUID format.
func encodedEvent(r *record, asString bool) (rawMessage, error) {
	slot := &r.encStructured
	if asString {
		slot = &r.encString
	}
	if b := slot.Load(); b != nil {
		return *b, nil
	}
	b, err := protobuf.Marshal(eventResp(r, asString))
	if err != nil {
		return nil, err
	}
	slot.Store(&b)
	return b, nil
}

// encCache is embedded in record.
type encCache struct {
	encStructured atomic.Pointer[[]byte]
	encString     atomic.Pointer[[]byte]
}

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	switch f := v.(type) {
	case *appendFrame:
		return f.decode(contiguous(data))
	case *batchFrame:
		return f.decode(contiguous(data))
	}
	return c.CodecV2.Unmarshal(data, v)
}

// contiguous returns a message's bytes. A message in one buffer, as nearly
// all are, is decoded in place, without a copy; the decoders copy out what
// they keep.
func contiguous(data mem.BufferSlice) []byte {
	if len(data) == 1 {
		return data[0].ReadOnlyData()
	}
	return data.Materialize()
}

// appendFrame is one AppendReq decoded by hand. Appends arrive as one
// message per event, and generic decoding (a map per event) was most of
// the server's cost of an append. The frame is reused for every message
// of one append.
type appendFrame struct {
	// hasOptions is set when the message carries the options: the
	// stream's name and the expected revision.
	hasOptions bool
	stream     string
	exp        expectation
	event      proposed
	hasEvent   bool
	hasType    bool
	hasCT      bool
	hasID      bool

	// The rest lasts for the whole append. The events of one append
	// nearly always share a type, so lastType saves a string per event.
	lastType string
	// arena holds the data and metadata of the append's events, copied
	// out of the message buffers (which gRPC reuses), so that an append
	// of n events makes a few allocations, not n, and the log holds a
	// few objects for the garbage collector to mark, not n.
	arena []byte
}

// keep copies b into the arena and returns the copy.
func (f *appendFrame) keep(b []byte) []byte {
	if len(b) == 0 {
		return []byte{}
	}
	if len(b) > cap(f.arena)-len(f.arena) {
		// The first chunk fits the first event exactly (an append of one
		// event wastes nothing); the next ones double, up to 64 KiB.
		f.arena = make([]byte, 0, max(len(b), min(2*cap(f.arena), 64<<10)))
	}
	n := len(f.arena)
	f.arena = append(f.arena, b...)
	return f.arena[n:len(f.arena):len(f.arena)]
}

// decode decodes one message, which is only valid during the call.
func (f *appendFrame) decode(b []byte) error {
	*f = appendFrame{lastType: f.lastType, arena: f.arena}
	for len(b) > 0 {
		fld, rest, err := nextField(b)
		if err != nil {
			return err
		}
		b = rest
		if fld.typ != protowire.BytesType {
			continue
		}
		v := fld.bytes
		switch fld.num {
		case 1:
			if err := f.decodeOptions(v); err != nil {
				return err
			}
		case 2:
			if err := f.decodeEvent(v); err != nil {
				return err
			}
		}
	}
	return nil
}

// decodeOptions decodes AppendReq.Options as the generic decoder would:
// a later field of the expected-revision oneof replaces an earlier one,
// and a message field given twice is merged. Without an expected revision
// it is revision 0, as the generated getters read it.
func (f *appendFrame) decodeOptions(b []byte) error {
	if !f.hasOptions {
		f.hasOptions = true
		f.exp = expectation{kind: expectRevision}
	}
	return eachField(b, func(fld field) error {
		switch {
		case fld.num == 1 && fld.typ == protowire.BytesType: // stream_identifier
			return eachField(fld.bytes, func(sf field) error {
				if sf.num == 3 && sf.typ == protowire.BytesType { // stream_name
					f.stream = string(sf.bytes)
				}
				return nil
			})
		case fld.num == 2 && fld.typ == protowire.VarintType:
			f.exp = expectation{kind: expectRevision, rev: fld.varint}
		case fld.num == 3 && fld.typ == protowire.BytesType:
			f.exp = expectation{kind: expectNoStream}
		case fld.num == 4 && fld.typ == protowire.BytesType:
			f.exp = expectation{kind: expectAny}
		case fld.num == 5 && fld.typ == protowire.BytesType:
			f.exp = expectation{kind: expectExists}
		}
		return nil
	})
}

// eachField calls fn with each field of an encoded message, in order.
func eachField(b []byte, fn func(field) error) error {
	for len(b) > 0 {
		fld, rest, err := nextField(b)
		if err != nil {
			return err
		}
		b = rest
		if err := fn(fld); err != nil {
			return err
		}
	}
	return nil
}

func (f *appendFrame) decodeEvent(b []byte) error {
	f.event = proposed{Data: []byte{}, Meta: []byte{}}
	f.hasEvent = true
	e := &f.event
	for len(b) > 0 {
		fld, rest, err := nextField(b)
		if err != nil {
			return err
		}
		b = rest
		if fld.typ != protowire.BytesType {
			continue
		}
		v := fld.bytes
		switch fld.num {
		case 1: // id
			id, err := decodeUUID(v)
			if err != nil {
				return err
			}
			e.ID, f.hasID = id, true
		case 2: // metadata map entry
			key, val, err := mapEntry(v)
			if err != nil {
				return err
			}
			switch string(key) {
			case "type":
				if string(val) != f.lastType {
					f.lastType = string(val)
				}
				e.Type, f.hasType = f.lastType, true
			case "content-type":
				e.ContentType, f.hasCT = internContentType(val), true
			}
		case 3:
			e.Meta = f.keep(v)
		case 4:
			e.Data = f.keep(v)
		}
	}
	return nil
}

// internContentType avoids an allocation per event for the two content
// types the client sends.
func internContentType(v []byte) string {
	switch string(v) {
	case contentTypeJSON:
		return contentTypeJSON
	case contentTypeBinary:
		return contentTypeBinary
	}
	return string(v)
}

// decodeUUID decodes a shared.UUID: structured (field 1: most, least
// significant bits) or string (field 2).
func decodeUUID(b []byte) (uuid.UUID, error) {
	var id uuid.UUID
	for len(b) > 0 {
		fld, rest, err := nextField(b)
		if err != nil {
			return id, err
		}
		b = rest
		if fld.typ != protowire.BytesType {
			continue
		}
		v := fld.bytes
		switch fld.num {
		case 1:
			var most, least uint64
			for len(v) > 0 {
				fld, rest, err := nextField(v)
				if err != nil {
					return id, err
				}
				v = rest
				if fld.typ != protowire.VarintType {
					continue
				}
				x := fld.varint
				switch fld.num {
				case 1:
					most = x
				case 2:
					least = x
				}
			}
			binary.BigEndian.PutUint64(id[:8], most)
			binary.BigEndian.PutUint64(id[8:], least)
			return id, nil
		case 2:
			return fromProtoUUID(&shared.UUID{Value: &shared.UUID_String_{String_: string(v)}})
		}
	}
	return id, errors.New("missing event id")
}

func mapEntry(b []byte) (key, val []byte, err error) {
	for len(b) > 0 {
		fld, rest, err := nextField(b)
		if err != nil {
			return nil, nil, err
		}
		b = rest
		if fld.typ != protowire.BytesType {
			continue
		}
		v := fld.bytes
		switch fld.num {
		case 1:
			key = v
		case 2:
			val = v
		}
	}
	return key, val, nil
}

// field is one field of an encoded protobuf message, as the hand-written
// decoders of the hot append path read them.
type field struct {
	num    protowire.Number
	typ    protowire.Type
	bytes  []byte // the value of a BytesType field
	varint uint64 // the value of a VarintType field
}

// nextField reads the field at the start of b and returns it with the rest of
// b; fields of other wire types are skipped over, their values not kept.
func nextField(b []byte) (field, []byte, error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return field{}, nil, protowire.ParseError(n)
	}
	b = b[n:]
	f := field{num: num, typ: typ}
	switch typ {
	case protowire.BytesType:
		f.bytes, n = protowire.ConsumeBytes(b)
	case protowire.VarintType:
		f.varint, n = protowire.ConsumeVarint(b)
	default:
		n = protowire.ConsumeFieldValue(num, typ, b)
	}
	if n < 0 {
		return field{}, nil, protowire.ParseError(n)
	}
	return f, b[n:], nil
}
