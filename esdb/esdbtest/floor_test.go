package esdbtest

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	protobuf "google.golang.org/protobuf/proto"
)

// CPUTime is the CPU time the process (client, server and runtime) has
// used so far.
func CPUTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// StartFloor starts the floor server of the benchmarks and returns its
// connection string. It speaks just enough of the protocol for the
// benchmarks, with the real server's transport options, and does no work of
// its own: a read sends the same pre-encoded event readEvents times, and an
// append discards what it receives and answers a fixed success. What the
// client achieves against it is the most any server could give it on this
// machine, so a benchmark against the real server is judged by the ratio
// to it.
func StartFloor(tb testing.TB, readEvents int) string {
	tb.Helper()
	// The same shape as the benchmarks' events: a 100-byte binary payload
	// on a test-<uuid> stream, at a realistic position.
	r := &record{
		Stream: "test-" + uuid.NewString(), Revision: 1234, ID: uuid.New(), Type: "TestEvent",
		ContentType: contentTypeBinary, Created: 17e16, Data: make([]byte, 100), Meta: []byte{}, Pos: 12_345_678,
	}
	ev, err := encodedEvent(r, false)
	if err != nil {
		tb.Fatal(err)
	}
	opts := append(transportOptions(), grpc.ForceServerCodecV2(floorCodec{newRawCodec()}))
	gs := grpc.NewServer(opts...)
	streams.RegisterStreamsServer(gs, &floorStreams{event: ev, n: readEvents})
	serverfeatures.RegisterServerFeaturesServer(gs, &featuresServer{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	tb.Cleanup(gs.Stop)
	return "esdb://" + lis.Addr().String() + "?tls=false"
}

type floorStreams struct {
	streams.UnimplementedStreamsServer
	event rawMessage
	n     int
}

func (f *floorStreams) Read(_ *streams.ReadReq, stream streams.Streams_ReadServer) error {
	for range f.n {
		if err := stream.SendMsg(f.event); err != nil {
			return err
		}
	}
	return nil
}

var floorAppendResp = appendResp(writeResult{revision: 1, hasPos: true, pos: 12_345_678})

func (f *floorStreams) Append(stream streams.Streams_AppendServer) error {
	for {
		err := stream.RecvMsg(discard{})
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	return stream.SendAndClose(floorAppendResp)
}

// discard is a message the floor codec drops unread.
type discard struct{}

type floorCodec struct{ rawCodec }

func (c floorCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if _, ok := v.(discard); ok {
		return nil
	}
	return c.rawCodec.Unmarshal(data, v)
}

var _ encoding.CodecV2 = floorCodec{}

// BenchmarkClientDecode measures what the official client does to every
// event of a read before Recv returns it: unmarshal the ReadResp (the
// generic protobuf decoder; the client's conversion afterwards is not
// counted). It runs on the goroutine that calls Recv, one event after
// another, so 1/(its time) bounds any read through the client, whatever
// the server does.
func BenchmarkClientDecode(b *testing.B) {
	r := &record{
		Stream: "test-" + uuid.NewString(), Revision: 1234, ID: uuid.New(), Type: "TestEvent",
		ContentType: contentTypeBinary, Created: 17e16, Data: make([]byte, 100), Meta: []byte{}, Pos: 12_345_678,
	}
	ev, err := encodedEvent(r, false)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0 := CPUTime(b)
	for b.Loop() {
		var m streams.ReadResp
		if err := protobuf.Unmarshal(ev, &m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(CPUTime(b)-cpu0)/float64(b.N), "cpu-ns/event")
}
