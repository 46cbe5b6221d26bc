package grpcapp_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/grpcapp"
	"github.com/eventsourcing-go/eventsourcing/grpcapp/pb"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// Clients that predate packed pages (they never set packed) still get
// notification messages, the same notifications a packed page gives.
func TestSelectUnpackedForOldClients(t *testing.T) {
	ctx := context.Background()
	app := newOrders(t)
	fillLog(t, app, 5)
	s := startServer(t, app, grpcapp.WithServerLogger(discard()))
	c := connect(t, s.Addr())
	rpc := pb.NewApplicationClient(c.Conn())

	old, err := rpc.SelectNotifications(ctx, &pb.SelectRequest{Limit: 10})
	require.NoError(t, err)
	assert.Nil(t, old.GetPacked())
	require.Len(t, old.GetNotifications(), 5)

	packed, err := rpc.SelectNotifications(ctx, &pb.SelectRequest{Limit: 10, Packed: true})
	require.NoError(t, err)
	assert.Empty(t, packed.GetNotifications())
	assert.Len(t, packed.GetPacked().GetIds(), 5)

	ns, err := c.Log().Select(ctx, recorder.NotificationQuery{Limit: 10})
	require.NoError(t, err)
	require.Len(t, ns, 5)
	for i, m := range old.GetNotifications() {
		assert.Equal(t, recorder.Notification{ID: m.GetId(), StoredEvent: recorder.StoredEvent{
			OriginatorID: m.GetOriginatorId(), OriginatorVersion: m.GetOriginatorVersion(), Topic: m.GetTopic(), State: m.GetState(),
		}}, ns[i])
	}

	stream, err := rpc.SubscribeNotifications(ctx, &pb.SubscribeRequest{})
	require.NoError(t, err)
	b, err := stream.Recv()
	require.NoError(t, err)
	assert.Nil(t, b.GetPacked())
	assert.NotEmpty(t, b.GetNotifications())
}
