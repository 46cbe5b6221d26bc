package grpcapp_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

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

// stuckApp answers pings and never finishes a call before its deadline.
type stuckApp struct {
	pb.UnimplementedApplicationServer
}

func (stuckApp) Ping(context.Context, *pb.PingRequest) (*pb.PingReply, error) {
	return &pb.PingReply{}, nil
}

func (stuckApp) Call(ctx context.Context, _ *pb.CallRequest) (*pb.CallReply, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// Each attempt has the client's call timeout as its deadline, and a sooner
// deadline of the caller's context wins.
func TestCallTimeout(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	pb.RegisterApplicationServer(srv, stuckApp{})
	go srv.Serve(lis)
	defer srv.Stop()

	_, port, _ := net.SplitHostPort(lis.Addr().String())
	c, err := grpcapp.NewClient("localhost:"+port, grpcapp.WithCallTimeout(200*time.Millisecond), grpcapp.WithMaxAttempts(1))
	require.NoError(t, err)
	defer c.Close()
	t0 := time.Now()
	_, err = c.App().Call(context.Background(), "Slow")
	assert.ErrorIs(t, err, grpcapp.ErrDeadlineExceeded)
	assert.Less(t, time.Since(t0), 3*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	t0 = time.Now()
	_, err = c.App().Call(ctx, "Slow")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(t0), 150*time.Millisecond+time.Second)
}
