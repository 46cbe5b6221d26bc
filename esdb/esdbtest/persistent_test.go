package esdbtest_test

import (
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func psNext(t *testing.T, sub *esdb.PersistentSubscription) *esdb.EventAppeared {
	t.Helper()
	e := sub.Recv()
	require.Nil(t, e.SubscriptionDropped, "dropped: %v", e.SubscriptionDropped)
	require.NotNil(t, e.EventAppeared)
	return e.EventAppeared
}

func TestPersistentStreamGroup(t *testing.T) {
	_, c := startClient(t)
	ctx := ctxT(t)
	name := streamName()
	_, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, evs(5)...)
	require.NoError(t, err)

	require.NoError(t, c.CreatePersistentSubscription(ctx, name, "g", esdb.PersistentStreamSubscriptionOptions{StartFrom: esdb.Revision(2)}))
	err = c.CreatePersistentSubscription(ctx, name, "g", esdb.PersistentStreamSubscriptionOptions{})
	assert.Equal(t, esdb.ErrorCodeResourceAlreadyExists, errCode(err))

	sub, err := c.SubscribeToPersistentSubscription(ctx, name, "g", esdb.SubscribeToPersistentSubscriptionOptions{})
	require.NoError(t, err)
	defer sub.Close()

	// The start is inclusive.
	e := psNext(t, sub)
	assert.Equal(t, uint64(2), e.Event.OriginalEvent().EventNumber)
	assert.Zero(t, e.RetryCount)
	require.NoError(t, sub.Nack("again", esdb.NackActionRetry, e.Event))
	e3 := psNext(t, sub)
	require.NoError(t, sub.Ack(e3.Event))
	e4 := psNext(t, sub)
	require.NoError(t, sub.Nack("park", esdb.NackActionPark, e4.Event))

	retried := psNext(t, sub)
	assert.Equal(t, uint64(2), retried.Event.OriginalEvent().EventNumber)
	assert.Equal(t, 1, retried.RetryCount)
	require.NoError(t, sub.Ack(retried.Event))

	// Acks and nacks are one-way messages, handled after the retried event
	// may have gone out: wait for the park to show.
	var info *esdb.PersistentSubscriptionInfo
	require.Eventually(t, func() bool {
		info, err = c.GetPersistentSubscriptionInfo(ctx, name, "g", esdb.GetPersistentSubscriptionOptions{})
		require.NoError(t, err)
		return info.Stats.ParkedMessagesCount == 1
	}, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, name, info.EventSource)
	assert.Equal(t, "g", info.GroupName)
	assert.Equal(t, esdb.Revision(2), info.Settings.StartFrom)

	require.NoError(t, c.ReplayParkedMessages(ctx, name, "g", esdb.ReplayParkedMessagesOptions{}))
	parked := psNext(t, sub)
	assert.Equal(t, e4.Event.OriginalEvent().EventID, parked.Event.OriginalEvent().EventID)
	require.NoError(t, sub.Ack(parked.Event))

	// Live events follow; a skipped event is not redelivered.
	_, err = c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, evs(2)...)
	require.NoError(t, err)
	e5 := psNext(t, sub)
	assert.Equal(t, uint64(5), e5.Event.OriginalEvent().EventNumber)
	require.NoError(t, sub.Nack("skip", esdb.NackActionSkip, e5.Event))
	assert.Equal(t, uint64(6), psNext(t, sub).Event.OriginalEvent().EventNumber)

	list, err := c.ListPersistentSubscriptionsForStream(ctx, name, esdb.ListPersistentSubscriptionsOptions{})
	require.NoError(t, err)
	require.Len(t, list, 1)

	require.NoError(t, c.UpdatePersistentSubscription(ctx, name, "g", esdb.PersistentStreamSubscriptionOptions{}))
	require.NoError(t, c.DeletePersistentSubscription(ctx, name, "g", esdb.DeletePersistentSubscriptionOptions{}))
	err = c.DeletePersistentSubscription(ctx, name, "g", esdb.DeletePersistentSubscriptionOptions{})
	assert.Equal(t, esdb.ErrorCodeResourceNotFound, errCode(err))
	_, err = c.SubscribeToPersistentSubscription(ctx, name, "g", esdb.SubscribeToPersistentSubscriptionOptions{})
	assert.Equal(t, esdb.ErrorCodeResourceNotFound, errCode(err))
	require.NoError(t, c.RestartPersistentSubscriptionSubsystem(ctx, esdb.RestartPersistentSubscriptionSubsystemOptions{}))
}

func TestPersistentAllGroup(t *testing.T) {
	_, c := startClient(t)
	ctx := ctxT(t)
	name := "ps-" + streamName()
	_, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, evs(3)...)
	require.NoError(t, err)
	require.NoError(t, c.CreatePersistentSubscriptionToAll(ctx, "all-g", esdb.PersistentAllSubscriptionOptions{
		StartFrom: esdb.Start{},
		Filter:    &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"ps-"}},
	}))
	sub, err := c.SubscribeToPersistentSubscriptionToAll(ctx, "all-g", esdb.SubscribeToPersistentSubscriptionOptions{})
	require.NoError(t, err)
	defer sub.Close()
	for i := range 3 {
		e := psNext(t, sub)
		assert.Equal(t, name, e.Event.OriginalEvent().StreamID)
		assert.Equal(t, uint64(i), e.Event.OriginalEvent().EventNumber)
		require.NoError(t, sub.Ack(e.Event))
	}
	info, err := c.GetPersistentSubscriptionInfoToAll(ctx, "all-g", esdb.GetPersistentSubscriptionOptions{})
	require.NoError(t, err)
	assert.Equal(t, "$all", info.EventSource)
	all, err := c.ListPersistentSubscriptionsToAll(ctx, esdb.ListPersistentSubscriptionsOptions{})
	require.NoError(t, err)
	assert.Len(t, all, 1)

	// The group's configuration is in $all, as on a real node.
	cfg, err := readStream(t, c, "$persistentSubscriptionConfig", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	require.NoError(t, err)
	assert.Equal(t, "PersistentConfig1", cfg[0].Event.EventType)
}

func TestPersistentMaxSubscribers(t *testing.T) {
	srv, c := startClient(t)
	ctx := ctxT(t)
	name := streamName()
	s := esdb.SubscriptionSettingsDefault()
	s.MaxSubscriberCount = 1
	require.NoError(t, c.CreatePersistentSubscription(ctx, name, "g", esdb.PersistentStreamSubscriptionOptions{Settings: &s}))
	sub, err := c.SubscribeToPersistentSubscription(ctx, name, "g", esdb.SubscribeToPersistentSubscriptionOptions{})
	require.NoError(t, err)
	defer sub.Close()
	_, err = c.SubscribeToPersistentSubscription(ctx, name, "g", esdb.SubscribeToPersistentSubscriptionOptions{})
	require.Error(t, err)

	// The answer to the letter, as a real node builds it.
	var trailer metadata.MD
	rd, err := persistent.NewPersistentSubscriptionsClient(dialRaw(t, srv)).Read(ctxT(t), grpc.Trailer(&trailer))
	require.NoError(t, err)
	require.NoError(t, rd.Send(&persistent.ReadReq{Content: &persistent.ReadReq_Options_{Options: &persistent.ReadReq_Options{
		StreamOption: &persistent.ReadReq_Options_StreamIdentifier{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(name)}},
		GroupName:    "g", BufferSize: 10,
		UuidOption: &persistent.ReadReq_Options_UUIDOption{Content: &persistent.ReadReq_Options_UUIDOption_String_{String_: &shared.Empty{}}},
	}}}))
	_, err = rd.Recv()
	st := status.Convert(err)
	assert.Equal(t, codes.FailedPrecondition, st.Code())
	assert.Equal(t, "Maximum subscriptions reached for subscription group g on stream "+name+".", st.Message())
	assertGroupTrailers(t, trailer, "maximum-subscribers-reached", name, "g")
}
