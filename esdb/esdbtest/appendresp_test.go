package esdbtest

import (
	"math"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/stretchr/testify/require"
	protobuf "google.golang.org/protobuf/proto"
)

// TestSuccessRespMatchesProto checks the hand-encoded success answer of an
// append against the generic encoding of the same message.
func TestSuccessRespMatchesProto(t *testing.T) {
	for _, res := range []writeResult{
		{revision: 0, hasPos: true, pos: 256},
		{revision: 41, hasPos: true, pos: 12_345_678},
		{revision: math.MaxUint64 - 1, hasPos: true, pos: math.MaxUint64},
		{noStream: true},
		{noStream: true, hasPos: true},
		{revision: 7},
		{revision: 3, hasPos: true, pos: 0},
	} {
		var got streams.AppendResp
		require.NoError(t, protobuf.Unmarshal(successResp(res), &got))
		want := appendResp(res)
		require.True(t, protobuf.Equal(want, &got), "%+v: got %v, want %v", res, &got, want)
		wire, err := protobuf.MarshalOptions{Deterministic: true}.Marshal(want)
		require.NoError(t, err)
		require.Equal(t, wire, []byte(successResp(res)), "%+v", res)
	}
}

// TestAppendOptionsMatchProto decodes AppendReq options by hand and with
// the generated code: the same stream and expected revision.
func TestAppendOptionsMatchProto(t *testing.T) {
	id := func(name string) *shared.StreamIdentifier { return &shared.StreamIdentifier{StreamName: []byte(name)} }
	for _, o := range []*streams.AppendReq_Options{
		{StreamIdentifier: id("order-1"), ExpectedStreamRevision: &streams.AppendReq_Options_Revision{Revision: 0}},
		{StreamIdentifier: id("order-1"), ExpectedStreamRevision: &streams.AppendReq_Options_Revision{Revision: 1 << 40}},
		{StreamIdentifier: id("Hündin"), ExpectedStreamRevision: &streams.AppendReq_Options_NoStream{NoStream: &shared.Empty{}}},
		{StreamIdentifier: id("a"), ExpectedStreamRevision: &streams.AppendReq_Options_Any{Any: &shared.Empty{}}},
		{StreamIdentifier: id("a"), ExpectedStreamRevision: &streams.AppendReq_Options_StreamExists{StreamExists: &shared.Empty{}}},
		{StreamIdentifier: id("")},
		{},
	} {
		msg, err := protobuf.Marshal(&streams.AppendReq{Content: &streams.AppendReq_Options_{Options: o}})
		require.NoError(t, err)
		var want streams.AppendReq
		require.NoError(t, protobuf.Unmarshal(msg, &want))
		var f appendFrame
		require.NoError(t, f.decode(msg))
		require.True(t, f.hasOptions)
		require.Equal(t, string(want.GetOptions().GetStreamIdentifier().GetStreamName()), f.stream)
		require.Equal(t, toExpectation(want.GetOptions()), f.exp, "%v", o)
	}
	// Fields given twice: the later member of the oneof wins, and the
	// stream identifier is merged.
	first, _ := protobuf.Marshal(&streams.AppendReq{Content: &streams.AppendReq_Options_{Options: &streams.AppendReq_Options{
		StreamIdentifier: id("x"), ExpectedStreamRevision: &streams.AppendReq_Options_Any{Any: &shared.Empty{}}}}})
	second, _ := protobuf.Marshal(&streams.AppendReq{Content: &streams.AppendReq_Options_{Options: &streams.AppendReq_Options{
		StreamIdentifier: &shared.StreamIdentifier{}, ExpectedStreamRevision: &streams.AppendReq_Options_Revision{Revision: 5}}}})
	msg := append(first, second...)
	var want streams.AppendReq
	require.NoError(t, protobuf.Unmarshal(msg, &want))
	var f appendFrame
	require.NoError(t, f.decode(msg))
	require.Equal(t, string(want.GetOptions().GetStreamIdentifier().GetStreamName()), f.stream)
	require.Equal(t, toExpectation(want.GetOptions()), f.exp)
}
