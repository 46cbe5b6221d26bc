package grpcapp

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/eventsourcing-go/eventsourcing/grpcapp/pb"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func notification(id int64, originator, topic string, state []byte) recorder.Notification {
	return recorder.Notification{ID: id, StoredEvent: recorder.StoredEvent{
		OriginatorID: originator, OriginatorVersion: id % 7, Topic: topic, State: state,
	}}
}

// roundTrip packs, marshals, unmarshals and unpacks, as the wire does.
func roundTrip(t *testing.T, ns []recorder.Notification) ([]recorder.Notification, *pb.PackedNotifications) {
	t.Helper()
	data, err := proto.Marshal(&pb.SelectReply{Packed: pack(ns)})
	require.NoError(t, err)
	var r pb.SelectReply
	require.NoError(t, proto.Unmarshal(data, &r))
	require.NotNil(t, r.GetPacked())
	got, err := unpack(r.GetPacked())
	require.NoError(t, err)
	return got, r.GetPacked()
}

func TestPackedUUIDs(t *testing.T) {
	var ns []recorder.Notification
	for i := range 50 {
		ns = append(ns, notification(int64(i+3), uuid.NewString(), []string{"a.Created", "a.Paid", "b.Created"}[i%3], []byte(strings.Repeat("x", i))))
	}
	got, p := roundTrip(t, ns)
	for i := range ns {
		if len(ns[i].State) == 0 {
			ns[i].State = nil
		}
	}
	assert.Equal(t, ns, got)
	assert.Len(t, p.GetOriginatorUuids(), 16*len(ns))
	assert.Empty(t, p.GetOriginatorIds())
	assert.Len(t, p.GetTopics(), 3)
	// A state's capacity ends at its length: appending never writes into the next.
	_ = append(got[1].State, 'y')
	assert.Equal(t, strings.Repeat("x", 2), string(got[2].State))
}

func TestPackedTextIDs(t *testing.T) {
	u := uuid.NewString()
	for _, odd := range []string{"order-1", strings.ToUpper(u), "{" + u + "}", strings.ReplaceAll(u, "-", ""), u[:35] + "g", ""} {
		ns := []recorder.Notification{notification(1, u, "t", []byte("s1")), notification(2, odd, "t", nil)}
		got, p := roundTrip(t, ns)
		assert.Equal(t, ns, got, odd)
		assert.Empty(t, p.GetOriginatorUuids(), odd)
	}
}

// A page carries each notification's trace context when one of them has
// one, and no column at all otherwise.
func TestPackedTraceParents(t *testing.T) {
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	ns := []recorder.Notification{notification(1, "x", "t", []byte("a")), notification(2, "y", "t", []byte("b"))}
	got, p := roundTrip(t, ns)
	assert.Equal(t, ns, got)
	assert.Empty(t, p.GetTraceParents(), "no trace, no column")
	ns[1].TraceParent = tp
	got, p = roundTrip(t, ns)
	assert.Equal(t, ns, got)
	assert.Equal(t, []string{"", tp}, p.GetTraceParents())
	assert.Equal(t, ns, fromPB(toPB(ns)), "the unpacked form carries it too")
}

func TestPackedEmpty(t *testing.T) {
	got, _ := roundTrip(t, nil)
	assert.Empty(t, got)
}

func TestParseUUID(t *testing.T) {
	for range 100 {
		u := uuid.New()
		var b [16]byte
		require.True(t, parseUUID(u.String(), b[:]))
		assert.Equal(t, u[:], b[:])
		var s [36]byte
		formatUUID(s[:], b[:])
		assert.Equal(t, u.String(), string(s[:]))
	}
}

func TestUnpackMalformed(t *testing.T) {
	good := pack([]recorder.Notification{notification(1, "x", "t", []byte("abc")), notification(2, "y", "t", []byte("d"))})
	for name, spoil := range map[string]func(p *pb.PackedNotifications){
		"versions":      func(p *pb.PackedNotifications) { p.OriginatorVersions = p.OriginatorVersions[:1] },
		"topic indexes": func(p *pb.PackedNotifications) { p.TopicIndexes = nil },
		"topic index":   func(p *pb.PackedNotifications) { p.TopicIndexes[1] = 5 },
		"originators":   func(p *pb.PackedNotifications) { p.OriginatorIds = p.OriginatorIds[:1] },
		"uuids":         func(p *pb.PackedNotifications) { p.OriginatorIds, p.OriginatorUuids = nil, make([]byte, 17) },
		"states":        func(p *pb.PackedNotifications) { p.StateLengths[1] = 9 },
		"trace parents": func(p *pb.PackedNotifications) { p.TraceParents = []string{"00-x"} },
	} {
		p := proto.Clone(good).(*pb.PackedNotifications)
		spoil(p)
		_, err := unpack(p)
		assert.Error(t, err, name)
	}
}

// The client's codec decodes what the protobuf codec decodes, packed pages
// itself and everything else through protobuf.
func TestClientCodec(t *testing.T) {
	var ns []recorder.Notification
	for i := range 300 {
		ns = append(ns, notification(int64(i+1)<<(i%40), uuid.NewString(), []string{"a", "b"}[i%2], []byte(strings.Repeat("s", i%5))))
	}
	ns[7].OriginatorVersion = -3
	text := append([]recorder.Notification(nil), ns...)
	text[5].OriginatorID = "order-5"
	traced := append([]recorder.Notification(nil), ns...)
	traced[9].TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for _, msg := range []proto.Message{
		&pb.SelectReply{Packed: pack(ns)},
		&pb.SelectReply{Packed: pack(text)},
		&pb.SelectReply{Packed: pack(traced)},
		&pb.NotificationBatch{Notifications: toPB(traced[8:10])},
		&pb.SelectReply{Packed: pack(nil)},
		&pb.SelectReply{},
		&pb.SelectReply{Notifications: toPB(ns[:3])},
		&pb.NotificationBatch{Packed: pack(ns)},
		&pb.NotificationBatch{Notifications: toPB(ns[:3])},
		&pb.PingReply{},
	} {
		data, err := proto.Marshal(msg)
		require.NoError(t, err)
		got := msg.ProtoReflect().New().Interface()
		require.NoError(t, clientCodec{protoCodec}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(data[:len(data)/2]), mem.SliceBuffer(data[len(data)/2:])}, got))
		assert.True(t, proto.Equal(msg, got), "%T", msg)
	}
	// Unexpected encodings (unpacked repeated numbers, unknown fields) go
	// to protobuf, which keeps what it knows.
	b := protowire.AppendTag(nil, 2, protowire.BytesType)
	inner := protowire.AppendTag(nil, 1, protowire.VarintType)
	inner = protowire.AppendVarint(inner, 42)
	inner = protowire.AppendTag(inner, 99, protowire.BytesType)
	inner = protowire.AppendBytes(inner, []byte("future"))
	b = protowire.AppendBytes(b, inner)
	var got pb.SelectReply
	require.NoError(t, clientCodec{protoCodec}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &got))
	assert.Equal(t, []int64{42}, got.GetPacked().GetIds())
	// Garbage is an error, not a panic.
	assert.Error(t, clientCodec{protoCodec}.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0x12, 0x05, 0x0a})}, &got))
}

// The server's codec marshals as protobuf does and recycles the columns.
func TestServerCodec(t *testing.T) {
	ns := []recorder.Notification{notification(1, uuid.NewString(), "t", []byte("abc"))}
	want, err := proto.Marshal(&pb.SelectReply{Packed: pack(ns)})
	require.NoError(t, err)
	msg := &pb.SelectReply{Packed: pack(ns)}
	data, err := serverCodec{protoCodec}.Marshal(msg)
	require.NoError(t, err)
	assert.Equal(t, want, data.Materialize())
	assert.Nil(t, msg.GetPacked().GetStates(), "the columns went back to the pool")
	data.Free()
}
