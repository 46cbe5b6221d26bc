package esdbtest_test

import (
	"strconv"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The answers in this file are a real node's, to the letter: status,
// message and trailers as its gRPC services build them.

func groupInfo(t *testing.T, conn *grpc.ClientConn, all bool, stream, group string) *persistent.SubscriptionInfo {
	t.Helper()
	o := &persistent.GetInfoReq_Options{GroupName: group}
	if all {
		o.StreamOption = &persistent.GetInfoReq_Options_All{All: &shared.Empty{}}
	} else {
		o.StreamOption = &persistent.GetInfoReq_Options_StreamIdentifier{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)}}
	}
	resp, err := persistent.NewPersistentSubscriptionsClient(conn).GetInfo(ctxT(t), &persistent.GetInfoReq{Options: o})
	require.NoError(t, err)
	return resp.GetSubscriptionInfo()
}

func TestPersistentAllGroupPositions(t *testing.T) {
	srv, c := startClient(t)
	ctx := ctxT(t)
	conn := dialRaw(t, srv)
	name := streamName()
	r, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, evs(1)...)
	require.NoError(t, err)
	p := esdb.Position{Commit: r.CommitPosition, Prepare: r.PreparePosition}

	starts := []struct {
		group string
		from  esdb.AllPosition
		want  string
	}{
		{"from-start", esdb.Start{}, "C:0/P:0"},
		{"from-end", esdb.End{}, "C:-1/P:-1"},
		{"from-position", p, "C:" + uitoa(p.Commit) + "/P:" + uitoa(p.Prepare)},
	}
	for _, s := range starts {
		require.NoError(t, c.CreatePersistentSubscriptionToAll(ctx, s.group, esdb.PersistentAllSubscriptionOptions{StartFrom: s.from}))
		info := groupInfo(t, conn, true, "", s.group)
		assert.Equal(t, s.want, info.StartFrom, s.group)
		assert.Equal(t, "$all", info.EventSource)
	}
	got, err := c.GetPersistentSubscriptionInfoToAll(ctx, "from-end", esdb.GetPersistentSubscriptionOptions{})
	require.NoError(t, err)
	assert.Equal(t, esdb.End{}, got.Settings.StartFrom, "the client reads it back")

	// Positions known and checkpointed are $all positions too.
	sub, err := c.SubscribeToPersistentSubscriptionToAll(ctx, "from-position", esdb.SubscribeToPersistentSubscriptionOptions{})
	require.NoError(t, err)
	defer sub.Close()
	e := psNext(t, sub)
	assert.Equal(t, p, e.Event.OriginalEvent().Position)
	assert.Regexp(t, `^C:\d+/P:\d+$`, groupInfo(t, conn, true, "", "from-position").LastKnownEventPosition)

	// Stream groups print revisions.
	require.NoError(t, c.CreatePersistentSubscription(ctx, name, "from-end", esdb.PersistentStreamSubscriptionOptions{StartFrom: esdb.End{}}))
	assert.Equal(t, "-1", groupInfo(t, conn, false, name, "from-end").StartFrom)
	require.NoError(t, c.CreatePersistentSubscription(ctx, name, "from-start", esdb.PersistentStreamSubscriptionOptions{StartFrom: esdb.Start{}}))
	assert.Equal(t, "0", groupInfo(t, conn, false, name, "from-start").StartFrom)
}

// assertGroupTrailers checks the trailers a real node sends with an error
// about a persistent subscription group.
func assertGroupTrailers(t *testing.T, trailer metadata.MD, exception, stream, group string) {
	t.Helper()
	assert.Equal(t, []string{exception}, trailer.Get("exception"))
	assert.Equal(t, []string{stream}, trailer.Get("stream-name"))
	assert.Equal(t, []string{group}, trailer.Get("group-name"))
}

func uitoa(v uint64) string { return strconv.FormatUint(v, 10) }

func TestPersistentGroupSettingsRefused(t *testing.T) {
	srv, c := startClient(t)
	ctx := ctxT(t)
	conn := dialRaw(t, srv)
	name := streamName()

	// An unknown consumer strategy, by name.
	var trailer metadata.MD
	defaults := esdb.SubscriptionSettingsDefault()
	_, err := persistent.NewPersistentSubscriptionsClient(conn).Create(ctx, &persistent.CreateReq{Options: &persistent.CreateReq_Options{
		StreamOption: &persistent.CreateReq_Options_Stream{Stream: &persistent.CreateReq_StreamOptions{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(name)},
			RevisionOption:   &persistent.CreateReq_StreamOptions_Start{Start: &shared.Empty{}},
		}},
		GroupName: "g",
		Settings: &persistent.CreateReq_Settings{ConsumerStrategy: "Nope", ReadBatchSize: defaults.ReadBatchSize,
			HistoryBufferSize: defaults.HistoryBufferSize, LiveBufferSize: defaults.LiveBufferSize},
	}}, grpc.Trailer(&trailer))
	st := status.Convert(err)
	assert.Equal(t, codes.Internal, st.Code())
	assert.Equal(t, "Subscription group g on stream "+name+" failed: 'Consumer strategy Nope does not exist.'", st.Message())
	assertGroupTrailers(t, trailer, "persistent-subscription-failed", name, "g")
	assert.Equal(t, []string{"Consumer strategy Nope does not exist."}, trailer.Get("reason"))

	// A read batch as large as the history buffer.
	bad := esdb.SubscriptionSettingsDefault()
	bad.ReadBatchSize = bad.HistoryBufferSize
	err = c.CreatePersistentSubscription(ctx, name, "g", esdb.PersistentStreamSubscriptionOptions{Settings: &bad})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ReadBatchSize may not be greater than or equal to BufferSize")
	err = c.CreatePersistentSubscriptionToAll(ctx, "g", esdb.PersistentAllSubscriptionOptions{Settings: &bad})
	require.Error(t, err)

	// Updates: the group must exist first, then the settings are checked.
	err = c.UpdatePersistentSubscription(ctx, name, "g", esdb.PersistentStreamSubscriptionOptions{Settings: &bad})
	assert.Equal(t, esdb.ErrorCodeResourceNotFound, errCode(err))
	require.NoError(t, c.CreatePersistentSubscription(ctx, name, "g", esdb.PersistentStreamSubscriptionOptions{}))
	err = c.UpdatePersistentSubscription(ctx, name, "g", esdb.PersistentStreamSubscriptionOptions{Settings: &bad})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ReadBatchSize may not be greater than or equal to BufferSize")
	info, err := c.GetPersistentSubscriptionInfo(ctx, name, "g", esdb.GetPersistentSubscriptionOptions{})
	require.NoError(t, err)
	assert.Equal(t, defaults.ReadBatchSize, info.Settings.ReadBatchSize, "a refused update changes nothing")
}

func TestDeletedStreamAnswers(t *testing.T) {
	_, c := startClient(t)
	ctx := ctxT(t)

	// Soft-deleted, then deleted or tombstoned again expecting it to exist.
	soft := streamName()
	_, err := c.AppendToStream(ctx, soft, esdb.AppendToStreamOptions{}, evs(2)...)
	require.NoError(t, err)
	_, err = c.DeleteStream(ctx, soft, esdb.DeleteStreamOptions{})
	require.NoError(t, err)
	_, err = c.DeleteStream(ctx, soft, esdb.DeleteStreamOptions{ExpectedRevision: esdb.StreamExists{}})
	assert.Equal(t, esdb.ErrorCodeStreamDeleted, errCode(err))
	_, err = c.TombstoneStream(ctx, soft, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.StreamExists{}})
	assert.Equal(t, esdb.ErrorCodeStreamDeleted, errCode(err))

	// The metadata stream of a tombstoned stream is deleted too.
	hard := streamName()
	_, err = c.SetStreamMetadata(ctx, hard, esdb.AppendToStreamOptions{}, esdb.StreamMetadata{})
	require.NoError(t, err)
	_, err = c.AppendToStream(ctx, hard, esdb.AppendToStreamOptions{}, evs(1)...)
	require.NoError(t, err)
	_, err = c.TombstoneStream(ctx, hard, esdb.TombstoneStreamOptions{})
	require.NoError(t, err)
	_, err = c.GetStreamMetadata(ctx, hard, esdb.ReadStreamOptions{})
	assert.Equal(t, esdb.ErrorCodeStreamDeleted, errCode(err))
	_, err = readStream(t, c, "$$"+hard, esdb.ReadStreamOptions{}, 10)
	assert.Equal(t, esdb.ErrorCodeStreamDeleted, errCode(err))
	_, err = c.SetStreamMetadata(ctx, hard, esdb.AppendToStreamOptions{}, esdb.StreamMetadata{})
	assert.Equal(t, esdb.ErrorCodeStreamDeleted, errCode(err))
}

func TestPersistentGroupMissing(t *testing.T) {
	srv := startServer(t)
	ps := persistent.NewPersistentSubscriptionsClient(dialRaw(t, srv))
	name := streamName()
	id := &shared.StreamIdentifier{StreamName: []byte(name)}

	var trailer metadata.MD
	_, err := ps.GetInfo(ctxT(t), &persistent.GetInfoReq{Options: &persistent.GetInfoReq_Options{
		StreamOption: &persistent.GetInfoReq_Options_StreamIdentifier{StreamIdentifier: id}, GroupName: "g"}}, grpc.Trailer(&trailer))
	st := status.Convert(err)
	assert.Equal(t, codes.NotFound, st.Code())
	assert.Equal(t, "Subscription group g on stream "+name+" does not exist.", st.Message())
	assertGroupTrailers(t, trailer, "persistent-subscription-does-not-exist", name, "g")

	// Listing the groups of a stream without any names no group.
	_, err = ps.List(ctxT(t), &persistent.ListReq{Options: &persistent.ListReq_Options{
		ListOption: &persistent.ListReq_Options_ListForStream{ListForStream: &persistent.ListReq_StreamOption{
			StreamOption: &persistent.ListReq_StreamOption_Stream{Stream: id}}}}}, grpc.Trailer(&trailer))
	st = status.Convert(err)
	assert.Equal(t, codes.NotFound, st.Code())
	assert.Equal(t, "Subscription group  on stream "+name+" does not exist.", st.Message())

	// Listing every group of an empty node lists none.
	list, err := ps.List(ctxT(t), &persistent.ListReq{Options: &persistent.ListReq_Options{
		ListOption: &persistent.ListReq_Options_ListAllSubscriptions{ListAllSubscriptions: &shared.Empty{}}}})
	require.NoError(t, err)
	assert.Empty(t, list.GetSubscriptions())
}

func TestDeleteWithoutStreamName(t *testing.T) {
	srv := startServer(t)
	sc := streams.NewStreamsClient(dialRaw(t, srv))
	ctx := ctxT(t)

	for name, call := range map[string]func(grpc.CallOption) error{
		"delete": func(o grpc.CallOption) error {
			_, err := sc.Delete(ctx, &streams.DeleteReq{}, o)
			return err
		},
		"tombstone": func(o grpc.CallOption) error {
			_, err := sc.Tombstone(ctx, &streams.TombstoneReq{Options: &streams.TombstoneReq_Options{}}, o)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			var trailer metadata.MD
			st := status.Convert(call(grpc.Trailer(&trailer)))
			assert.Equal(t, codes.InvalidArgument, st.Code())
			assert.Equal(t, name+" options with a stream name are required", st.Message())
			assert.Equal(t, []string{"bad-request"}, trailer.Get("exception"))
		})
	}
}
