package esdbtest_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
)

// dialRaw opens a plain gRPC connection to the server, for driving the
// protocol with the official client's generated code where the client
// itself offers no call (BatchAppend).
func dialRaw(t testing.TB, srv *esdbtest.Server) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func openBatch(t testing.TB, conn *grpc.ClientConn) streams.Streams_BatchAppendClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ba, err := streams.NewStreamsClient(conn).BatchAppend(ctx)
	require.NoError(t, err)
	return ba
}

func structuredUUID(id uuid.UUID) *shared.UUID {
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(binary.BigEndian.Uint64(id[:8])),
		LeastSignificantBits: int64(binary.BigEndian.Uint64(id[8:])),
	}}}
}

func proposedOf(events ...esdb.EventData) []*streams.BatchAppendReq_ProposedMessage {
	out := make([]*streams.BatchAppendReq_ProposedMessage, len(events))
	for i, e := range events {
		ct := "application/json"
		if e.ContentType == esdb.ContentTypeBinary {
			ct = "application/octet-stream"
		}
		out[i] = &streams.BatchAppendReq_ProposedMessage{
			Id:             structuredUUID(e.EventID),
			Metadata:       map[string]string{"type": e.EventType, "content-type": ct},
			CustomMetadata: e.Metadata,
			Data:           e.Data,
		}
	}
	return out
}

func batchOptions(stream string, exp esdb.ExpectedRevision) *streams.BatchAppendReq_Options {
	o := &streams.BatchAppendReq_Options{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)}}
	switch e := exp.(type) {
	case esdb.NoStream:
		o.ExpectedStreamPosition = &streams.BatchAppendReq_Options_NoStream{NoStream: &emptypb.Empty{}}
	case esdb.StreamExists:
		o.ExpectedStreamPosition = &streams.BatchAppendReq_Options_StreamExists{StreamExists: &emptypb.Empty{}}
	case esdb.StreamRevision:
		o.ExpectedStreamPosition = &streams.BatchAppendReq_Options_StreamPosition{StreamPosition: e.Value}
	default:
		o.ExpectedStreamPosition = &streams.BatchAppendReq_Options_Any{Any: &emptypb.Empty{}}
	}
	return o
}

// batchAppend appends events in one final request and returns the answer.
func batchAppend(t testing.TB, ba streams.Streams_BatchAppendClient, stream string, exp esdb.ExpectedRevision, events ...esdb.EventData) *streams.BatchAppendResp {
	t.Helper()
	corr := structuredUUID(uuid.New())
	require.NoError(t, ba.Send(&streams.BatchAppendReq{CorrelationId: corr, Options: batchOptions(stream, exp),
		ProposedMessages: proposedOf(events...), IsFinal: true}))
	resp, err := ba.Recv()
	require.NoError(t, err)
	assert.True(t, proto.Equal(corr, resp.CorrelationId), "correlated")
	assert.Equal(t, stream, string(resp.GetStreamIdentifier().GetStreamName()))
	return resp
}

// detail unpacks the one detail of a batch append failure.
func detail[T proto.Message](t testing.TB, st *rpcstatus.Status, into T) T {
	t.Helper()
	require.Len(t, st.GetDetails(), 1)
	require.NoError(t, st.GetDetails()[0].UnmarshalTo(into))
	return into
}

// outcome is what a client learns from an append, by either call.
type outcome struct {
	ok       bool
	revision uint64 // after a success
	wrong    bool   // wrong expected version
	deleted  bool
}

func appendOutcome(err error, r *esdb.WriteResult) outcome {
	switch {
	case err == nil:
		return outcome{ok: true, revision: r.NextExpectedVersion}
	case errCode(err) == esdb.ErrorCodeWrongExpectedVersion:
		return outcome{wrong: true}
	case errCode(err) == esdb.ErrorCodeStreamDeleted:
		return outcome{deleted: true}
	}
	return outcome{}
}

func batchOutcome(t testing.TB, resp *streams.BatchAppendResp) outcome {
	t.Helper()
	if s := resp.GetSuccess(); s != nil {
		require.NotNil(t, s.GetPosition(), "a write answers its position")
		assert.Positive(t, s.GetPosition().GetCommitPosition())
		return outcome{ok: true, revision: s.GetCurrentRevision()}
	}
	st := resp.GetError()
	switch code.Code(st.GetCode()) {
	case code.Code_ALREADY_EXISTS:
		assert.Equal(t, "WrongExpectedVersion", st.GetMessage())
		detail(t, st, &shared.WrongExpectedVersion{})
		return outcome{wrong: true}
	case code.Code_NOT_FOUND:
		assert.Equal(t, "StreamDeleted", st.GetMessage())
		return outcome{deleted: true}
	}
	t.Fatalf("unexpected answer %v", resp)
	return outcome{}
}

// TestBatchAppendMatchesAppend runs the same appends through Append (the
// official client) and BatchAppend, each on its own stream, and expects
// the same outcomes and the same stream contents.
func TestBatchAppendMatchesAppend(t *testing.T) {
	srv, c := startClient(t)
	ba := openBatch(t, dialRaw(t, srv))
	ctx := ctxT(t)
	viaAppend, viaBatch := streamName(), streamName()

	repeat := evs(2) // appended twice: the second time is idempotent
	steps := []struct {
		exp    esdb.ExpectedRevision
		events []esdb.EventData
	}{
		{esdb.NoStream{}, repeat},
		{esdb.NoStream{}, repeat},
		{esdb.Revision(1), evs(3)},
		{esdb.NoStream{}, evs(1)},
		{esdb.Revision(9), evs(1)},
		{esdb.Revision(0), evs(1)},
		{esdb.StreamExists{}, evs(1)},
		{esdb.Any{}, evs(100)},
		{esdb.Any{}, nil},
	}
	for i, s := range steps {
		r, err := c.AppendToStream(ctx, viaAppend, esdb.AppendToStreamOptions{ExpectedRevision: s.exp}, s.events...)
		want := appendOutcome(err, r)
		got := batchOutcome(t, batchAppend(t, ba, viaBatch, s.exp, s.events...))
		assert.Equal(t, want, got, "step %d: %T", i, s.exp)
	}
	_, err := c.AppendToStream(ctx, streamName(), esdb.AppendToStreamOptions{ExpectedRevision: esdb.StreamExists{}}, evs(1)...)
	assert.Equal(t, esdb.ErrorCodeWrongExpectedVersion, errCode(err))
	assert.Equal(t, outcome{wrong: true}, batchOutcome(t, batchAppend(t, ba, streamName(), esdb.StreamExists{}, evs(1)...)))

	a, err := readStream(t, c, viaAppend, esdb.ReadStreamOptions{}, 1000)
	require.NoError(t, err)
	b, err := readStream(t, c, viaBatch, esdb.ReadStreamOptions{}, 1000)
	require.NoError(t, err)
	require.Len(t, b, len(a))
	for i := range a {
		x, y := a[i].Event, b[i].Event
		assert.Equal(t, x.EventNumber, y.EventNumber)
		assert.Equal(t, x.EventType, y.EventType)
		assert.Equal(t, x.ContentType, y.ContentType)
		assert.Equal(t, x.Data, y.Data)
		assert.Equal(t, x.UserMetadata, y.UserMetadata)
	}
}

func TestBatchAppendWrongExpectedVersionDetails(t *testing.T) {
	srv := startServer(t)
	ba := openBatch(t, dialRaw(t, srv))
	name := streamName()
	batchAppend(t, ba, name, esdb.NoStream{}, evs(3)...)

	resp := batchAppend(t, ba, name, esdb.Revision(7), evs(1)...)
	st := resp.GetError()
	require.NotNil(t, st)
	assert.Equal(t, int32(code.Code_ALREADY_EXISTS), st.GetCode())
	w := detail(t, st, &shared.WrongExpectedVersion{})
	assert.Equal(t, uint64(2), w.GetCurrentStreamRevision(), "the current revision")
	assert.Equal(t, uint64(7), w.GetExpectedStreamPosition())

	w = detail(t, batchAppend(t, ba, name, esdb.NoStream{}, evs(1)...).GetError(), &shared.WrongExpectedVersion{})
	assert.NotNil(t, w.GetExpectedNoStream())
	assert.Equal(t, uint64(2), w.GetCurrentStreamRevision())

	w = detail(t, batchAppend(t, ba, streamName(), esdb.Revision(0), evs(1)...).GetError(), &shared.WrongExpectedVersion{})
	assert.NotNil(t, w.GetCurrentNoStream(), "a missing stream has no revision")

	w = detail(t, batchAppend(t, ba, streamName(), esdb.StreamExists{}, evs(1)...).GetError(), &shared.WrongExpectedVersion{})
	assert.NotNil(t, w.GetExpectedStreamExists())
}

func TestBatchAppendStreamDeleted(t *testing.T) {
	srv, c := startClient(t)
	ba := openBatch(t, dialRaw(t, srv))
	name := streamName()
	batchAppend(t, ba, name, esdb.Any{}, evs(1)...)
	_, err := c.TombstoneStream(ctxT(t), name, esdb.TombstoneStreamOptions{})
	require.NoError(t, err)

	st := batchAppend(t, ba, name, esdb.Any{}, evs(1)...).GetError()
	require.NotNil(t, st)
	assert.Equal(t, int32(code.Code_NOT_FOUND), st.GetCode())
	d := detail(t, st, &shared.StreamDeleted{})
	assert.Equal(t, name, string(d.GetStreamIdentifier().GetStreamName()))

	// A soft-deleted stream is deleted for "stream exists" only.
	soft := streamName()
	batchAppend(t, ba, soft, esdb.Any{}, evs(2)...)
	_, err = c.DeleteStream(ctxT(t), soft, esdb.DeleteStreamOptions{})
	require.NoError(t, err)
	assert.Equal(t, outcome{deleted: true}, batchOutcome(t, batchAppend(t, ba, soft, esdb.StreamExists{}, evs(1)...)))
	assert.Equal(t, outcome{ok: true, revision: 2}, batchOutcome(t, batchAppend(t, ba, soft, esdb.NoStream{}, evs(1)...)))
}

// TestBatchAppendChunks sends writes in several chunks, two writes
// interleaved on one call, options in the first chunk only.
func TestBatchAppendChunks(t *testing.T) {
	srv, c := startClient(t)
	ba := openBatch(t, dialRaw(t, srv))
	s1, s2 := streamName(), streamName()
	id1, id2 := uuid.New(), uuid.New()
	e1, e2 := evs(5), evs(3)
	// The second write's correlation id is sent as a string.
	c1 := structuredUUID(id1)
	c2 := &shared.UUID{Value: &shared.UUID_String_{String_: id2.String()}}
	reqs := []*streams.BatchAppendReq{
		{CorrelationId: c1, Options: batchOptions(s1, esdb.NoStream{}), ProposedMessages: proposedOf(e1[:2]...)},
		{CorrelationId: c2, Options: batchOptions(s2, esdb.Any{}), ProposedMessages: proposedOf(e2[:1]...)},
		{CorrelationId: c1, ProposedMessages: proposedOf(e1[2:4]...)},
		{CorrelationId: c2, ProposedMessages: proposedOf(e2[1:]...), IsFinal: true},
		{CorrelationId: c1, ProposedMessages: proposedOf(e1[4:]...), IsFinal: true},
	}
	for _, r := range reqs {
		require.NoError(t, ba.Send(r))
	}
	require.NoError(t, ba.CloseSend())

	r2, err := ba.Recv()
	require.NoError(t, err)
	assert.True(t, proto.Equal(c2, r2.CorrelationId), "echoed as sent: %v", r2.CorrelationId)
	assert.Equal(t, uint64(2), r2.GetSuccess().GetCurrentRevision())
	r1, err := ba.Recv()
	require.NoError(t, err)
	assert.True(t, proto.Equal(c1, r1.CorrelationId))
	assert.Equal(t, uint64(4), r1.GetSuccess().GetCurrentRevision())
	_, err = ba.Recv()
	assert.ErrorIs(t, err, io.EOF, "the call ends once every write is answered")

	got, err := readStream(t, c, s1, esdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	require.Len(t, got, 5)
	for i, e := range got {
		assert.Equal(t, e1[i].EventID, e.Event.EventID)
	}
}

func TestBatchAppendDeadlines(t *testing.T) {
	srv, c := startClient(t)
	ba := openBatch(t, dialRaw(t, srv))

	expiredCases := map[string]*streams.BatchAppendReq_Options{
		"zero duration": {DeadlineOption: &streams.BatchAppendReq_Options_Deadline{Deadline: durationpb.New(0)}},
		"past time": {DeadlineOption: &streams.BatchAppendReq_Options_Deadline_21_10_0{
			Deadline_21_10_0: timestamppb.New(time.Now().Add(-time.Second))}},
	}
	for name, deadline := range expiredCases {
		t.Run(name, func(t *testing.T) {
			stream := streamName()
			o := batchOptions(stream, esdb.Any{})
			o.DeadlineOption = deadline.DeadlineOption
			corr := structuredUUID(uuid.New())
			require.NoError(t, ba.Send(&streams.BatchAppendReq{CorrelationId: corr, Options: o,
				ProposedMessages: proposedOf(evs(1)...), IsFinal: true}))
			resp, err := ba.Recv()
			require.NoError(t, err)
			assert.True(t, proto.Equal(corr, resp.CorrelationId))
			st := resp.GetError()
			require.NotNil(t, st)
			assert.Equal(t, int32(code.Code_DEADLINE_EXCEEDED), st.GetCode())
			detail(t, st, &shared.Timeout{})
			_, err = readStream(t, c, stream, esdb.ReadStreamOptions{}, 10)
			assert.Equal(t, esdb.ErrorCodeResourceNotFound, errCode(err), "nothing written")
		})
	}

	t.Run("client done before the final chunk", func(t *testing.T) {
		ba := openBatch(t, dialRaw(t, srv))
		o := batchOptions(streamName(), esdb.Any{})
		o.DeadlineOption = &streams.BatchAppendReq_Options_Deadline{Deadline: durationpb.New(10 * time.Millisecond)}
		corr := structuredUUID(uuid.New())
		require.NoError(t, ba.Send(&streams.BatchAppendReq{CorrelationId: corr, Options: o, ProposedMessages: proposedOf(evs(1)...)}))
		require.NoError(t, ba.CloseSend())
		// The write is still answered, then the call ends.
		resp, err := ba.Recv()
		require.NoError(t, err)
		assert.True(t, proto.Equal(corr, resp.CorrelationId))
		assert.Equal(t, int32(code.Code_DEADLINE_EXCEEDED), resp.GetError().GetCode())
		_, err = ba.Recv()
		assert.ErrorIs(t, err, io.EOF)
	})

	t.Run("final chunk too late", func(t *testing.T) {
		stream := streamName()
		o := batchOptions(stream, esdb.Any{})
		o.DeadlineOption = &streams.BatchAppendReq_Options_Deadline{Deadline: durationpb.New(time.Millisecond)}
		corr := structuredUUID(uuid.New())
		require.NoError(t, ba.Send(&streams.BatchAppendReq{CorrelationId: corr, Options: o, ProposedMessages: proposedOf(evs(1)...)}))
		// The write times out waiting for its final chunk.
		resp, err := ba.Recv()
		require.NoError(t, err)
		assert.True(t, proto.Equal(corr, resp.CorrelationId))
		assert.Equal(t, int32(code.Code_DEADLINE_EXCEEDED), resp.GetError().GetCode())

		// Its final chunk is ignored: the next answer is another write's.
		require.NoError(t, ba.Send(&streams.BatchAppendReq{CorrelationId: corr, ProposedMessages: proposedOf(evs(1)...), IsFinal: true}))
		next := batchAppend(t, ba, streamName(), esdb.Any{}, evs(1)...)
		assert.NotNil(t, next.GetSuccess())
		_, err = readStream(t, c, stream, esdb.ReadStreamOptions{}, 10)
		assert.Equal(t, esdb.ErrorCodeResourceNotFound, errCode(err))
	})
}

func TestBatchAppendInvalidRequests(t *testing.T) {
	srv := startServer(t)
	ba := openBatch(t, dialRaw(t, srv))
	badRequest := func(r *streams.BatchAppendReq) *shared.BadRequest {
		t.Helper()
		require.NoError(t, ba.Send(r))
		resp, err := ba.Recv()
		require.NoError(t, err)
		st := resp.GetError()
		require.NotNil(t, st, "%v", resp)
		assert.Equal(t, int32(code.Code_INVALID_ARGUMENT), st.GetCode())
		assert.Equal(t, "BadRequest", st.GetMessage())
		return detail(t, st, &shared.BadRequest{})
	}
	br := badRequest(&streams.BatchAppendReq{CorrelationId: structuredUUID(uuid.New()),
		Options: &streams.BatchAppendReq_Options{ExpectedStreamPosition: &streams.BatchAppendReq_Options_Any{Any: &emptypb.Empty{}}}, IsFinal: true})
	assert.Contains(t, br.GetMessage(), "StreamIdentifier")

	untyped := proposedOf(evs(1)...)
	delete(untyped[0].Metadata, "type")
	br = badRequest(&streams.BatchAppendReq{CorrelationId: structuredUUID(uuid.New()),
		Options: batchOptions(streamName(), esdb.Any{}), ProposedMessages: untyped, IsFinal: true})
	assert.Contains(t, br.GetMessage(), "type")

	// Too large, counted over the chunks of one write.
	half := esdb.EventData{EventID: uuid.New(), EventType: "Big", ContentType: esdb.ContentTypeBinary, Data: bytes.Repeat([]byte{1}, 1<<19+1)}
	corr := structuredUUID(uuid.New())
	require.NoError(t, ba.Send(&streams.BatchAppendReq{CorrelationId: corr, Options: batchOptions(streamName(), esdb.Any{}), ProposedMessages: proposedOf(half)}))
	second := half
	second.EventID = uuid.New()
	require.NoError(t, ba.Send(&streams.BatchAppendReq{CorrelationId: corr, ProposedMessages: proposedOf(second), IsFinal: true}))
	resp, err := ba.Recv()
	require.NoError(t, err)
	st := resp.GetError()
	assert.Equal(t, int32(code.Code_INVALID_ARGUMENT), st.GetCode())
	assert.Equal(t, uint32(1<<20), detail(t, st, &shared.MaximumAppendSizeExceeded{}).GetMaxAppendSize())
}

func TestBatchAppendIsAFeature(t *testing.T) {
	srv := startServer(t)
	m, err := serverfeatures.NewServerFeaturesClient(dialRaw(t, srv)).GetSupportedMethods(ctxT(t), &shared.Empty{})
	require.NoError(t, err)
	found := false
	for _, x := range m.GetMethods() {
		found = found || (x.GetServiceName() == "event_store.client.streams.streams" && x.GetMethodName() == "batchappend")
	}
	assert.True(t, found)
}

// TestBatchAppendEndsWithClient checks that a call whose client goes away
// while a write waits for its final chunk ends without answering it.
func TestBatchAppendEndsWithClient(t *testing.T) {
	srv, c := startClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	ba, err := streams.NewStreamsClient(dialRaw(t, srv)).BatchAppend(ctx)
	require.NoError(t, err)
	stream := streamName()
	require.NoError(t, ba.Send(&streams.BatchAppendReq{CorrelationId: structuredUUID(uuid.New()),
		Options: batchOptions(stream, esdb.Any{}), ProposedMessages: proposedOf(evs(1)...)}))
	// A write answered on the same call proves the first chunk arrived.
	batchAppend(t, ba, streamName(), esdb.Any{}, evs(1)...)
	cancel()
	_, err = ba.Recv()
	require.Error(t, err)
	assert.False(t, errors.Is(err, io.EOF))
	_, err = readStream(t, c, stream, esdb.ReadStreamOptions{}, 10)
	assert.Equal(t, esdb.ErrorCodeResourceNotFound, errCode(err))
}
