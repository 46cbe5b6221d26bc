package grpcapp

import (
	"sync"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	protobuf "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/eventsourcing-go/eventsourcing/grpcapp/pb"
)

// Codecs for packed pages. They speak the standard protobuf encoding (every
// peer sees the same bytes) and only spare copies and allocations:
//
//   - the server's codec returns a packed page's columns to a pool once the
//     page is marshalled, so the next page reuses them;
//   - the client's codec decodes a packed page itself, with the states and
//     UUIDs aliasing the received bytes instead of copied out of them, and
//     leaves everything else to the protobuf codec.

// protoCodec is gRPC's protobuf codec.
var protoCodec = encoding.GetCodecV2(proto.Name)

// serverCodec is the server's codec (grpc.ForceServerCodecV2).
type serverCodec struct{ encoding.CodecV2 }

func (c serverCodec) Marshal(v any) (mem.BufferSlice, error) {
	var m protoreflect.ProtoMessage
	var packed *pb.PackedNotifications
	switch r := v.(type) {
	case *pb.SelectReply:
		m, packed = r, r.Packed
	case *pb.NotificationBatch:
		m, packed = r, r.Packed
	}
	if packed == nil {
		return c.CodecV2.Marshal(v)
	}
	// Into a buffer of pages (which, unlike gRPC's pool, is not cleared
	// before reuse: marshalling overwrites every byte handed out).
	size := protobuf.Size(m)
	buf := pagePool.Get(size)
	out, err := protobuf.MarshalOptions{UseCachedSize: true}.MarshalAppend((*buf)[:0], m)
	// The bytes are out: the columns can serve the next page.
	releasePacked(packed)
	if err != nil {
		pagePool.Put(buf)
		return nil, err
	}
	*buf = out
	return mem.BufferSlice{mem.NewBuffer(buf, pagePool)}, nil
}

// pagePool holds marshalled pages' buffers; gRPC puts each back once it
// has written it.
var pagePool = &bufferPool{}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get(n int) *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n)
	return &b
}

func (p *bufferPool) Put(b *[]byte) {
	if cap(*b) <= 2*maxPooled {
		p.pool.Put(b)
	}
}

// packBuffers are a packed page's columns, reused from page to page.
type packBuffers struct {
	ids, versions   []int64
	topics, lengths []uint32
	uuids, states   []byte
}

var packPool = sync.Pool{New: func() any { return new(packBuffers) }}

// maxPooled bounds what the pool keeps of one page's states, so that one
// huge page does not stay in memory.
const maxPooled = 1 << 20

// releasePacked gives p's columns back to the pool and clears them from p.
func releasePacked(p *pb.PackedNotifications) {
	if p == nil || cap(p.States) > maxPooled {
		return
	}
	packPool.Put(&packBuffers{
		ids: p.Ids[:0], versions: p.OriginatorVersions[:0],
		topics: p.TopicIndexes[:0], lengths: p.StateLengths[:0],
		uuids: p.OriginatorUuids[:0], states: p.States[:0],
	})
	p.Ids, p.OriginatorVersions, p.TopicIndexes, p.StateLengths, p.OriginatorUuids, p.States = nil, nil, nil, nil, nil, nil
}

// resize returns s with length n, reallocated when its capacity is short;
// the caller overwrites every element.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// clientCodec is the codec of the client's notification calls
// (grpc.ForceCodecV2 on those calls only).
type clientCodec struct{ encoding.CodecV2 }

func (c clientCodec) Unmarshal(data mem.BufferSlice, v any) error {
	var packed **pb.PackedNotifications
	switch m := v.(type) {
	case *pb.SelectReply:
		packed = &m.Packed
	case *pb.NotificationBatch:
		packed = &m.Packed
	default:
		return c.CodecV2.Unmarshal(data, v)
	}
	// A fresh copy that the page's states may alias (gRPC reuses its own
	// buffers).
	b := data.Materialize()
	if p, ok := decodeReply(b); ok {
		*packed = p
		return nil
	}
	// The unpacked form, unknown fields, anything unexpected: the protobuf
	// codec decides.
	return c.CodecV2.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, v)
}

// decodeReply decodes a SelectReply or NotificationBatch that holds a packed
// page (field 2) and nothing else.
func decodeReply(b []byte) (*pb.PackedNotifications, bool) {
	var p *pb.PackedNotifications
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num != 2 || typ != protowire.BytesType {
			return nil, false
		}
		b = b[n:]
		v, n := protowire.ConsumeBytes(b)
		if n < 0 || p != nil {
			return nil, false
		}
		b = b[n:]
		if p = decodePacked(v); p == nil {
			return nil, false
		}
	}
	return p, p != nil
}

// decodePacked decodes a PackedNotifications whose repeated numbers are
// packed (as proto3 encoders write them), or reports nil.
func decodePacked(b []byte) *pb.PackedNotifications {
	p := &pb.PackedNotifications{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return nil
		}
		b = b[n:]
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		ok := true
		switch num {
		case 1:
			p.Ids, ok = appendVarints(p.Ids, v, func(x uint64) int64 { return int64(x) })
		case 2:
			// A singular field: the last occurrence wins.
			p.OriginatorUuids = v[:len(v):len(v)]
		case 3:
			ok = utf8.Valid(v)
			p.OriginatorIds = append(p.OriginatorIds, string(v))
		case 4:
			p.OriginatorVersions, ok = appendVarints(p.OriginatorVersions, v, func(x uint64) int64 { return int64(x) })
		case 5:
			ok = utf8.Valid(v)
			p.Topics = append(p.Topics, string(v))
		case 6:
			p.TopicIndexes, ok = appendVarints(p.TopicIndexes, v, func(x uint64) uint32 { return uint32(x) })
		case 7:
			p.States = v[:len(v):len(v)]
		case 8:
			p.StateLengths, ok = appendVarints(p.StateLengths, v, func(x uint64) uint32 { return uint32(x) })
		case 9:
			ok = utf8.Valid(v)
			p.TraceParents = append(p.TraceParents, string(v))
		default:
			ok = false
		}
		if !ok {
			return nil
		}
	}
	return p
}

// appendVarints appends the packed varints of b to s, allocating once.
func appendVarints[T int64 | uint32](s []T, b []byte, conv func(uint64) T) ([]T, bool) {
	n := 0
	for _, c := range b {
		if c < 0x80 {
			n++
		}
	}
	if s == nil {
		s = make([]T, 0, n)
	}
	for len(b) > 0 {
		if b[0] < 0x80 {
			s = append(s, conv(uint64(b[0])))
			b = b[1:]
			continue
		}
		x, m := protowire.ConsumeVarint(b)
		if m < 0 {
			return s, false
		}
		s = append(s, conv(x))
		b = b[m:]
	}
	return s, true
}
