package esdbtest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
)

// dialNode opens a plain gRPC connection to one node of a cluster.
func dialNode(t testing.TB, n *esdbtest.Node, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(n.Addr(), grpc.WithTransportCredentials(creds))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func readGossip(t testing.TB, conn *grpc.ClientConn) []*gossip.MemberInfo {
	t.Helper()
	info, err := gossip.NewGossipClient(conn).Read(ctxT(t), &shared.Empty{})
	require.NoError(t, err)
	return info.Members
}

// members maps each member's address to its state and liveness.
func members(ms []*gossip.MemberInfo) map[string]string {
	out := make(map[string]string, len(ms))
	for _, m := range ms {
		addr := net.JoinHostPort(m.HttpEndPoint.Address, strconv.Itoa(int(m.HttpEndPoint.Port)))
		out[addr] = m.State.String() + " alive=" + strconv.FormatBool(m.IsAlive)
	}
	return out
}

func TestClusterGossip(t *testing.T) {
	c := esdbtest.StartCluster(t, 3)
	nodes := c.Nodes()
	require.Len(t, nodes, 3)
	want := map[string]string{
		nodes[0].Addr(): "Leader alive=true",
		nodes[1].Addr(): "Follower alive=true",
		nodes[2].Addr(): "Follower alive=true",
	}
	ids := map[string]bool{}
	for _, n := range nodes {
		conn := dialNode(t, n, nil)
		ms := readGossip(t, conn)
		assert.Equal(t, want, members(ms), "gossip of %s", n.Addr())
		for _, m := range ms {
			ids[m.InstanceId.GetString_()] = true
		}
		feats, err := serverfeatures.NewServerFeaturesClient(conn).GetSupportedMethods(ctxT(t), &shared.Empty{})
		require.NoError(t, err)
		assert.Equal(t, esdbtest.ServerVersion, feats.EventStoreServerVersion)
	}
	assert.Len(t, ids, 3, "each member has its own instance id")
	assert.Equal(t, nodes[0], c.Leader())
	assert.ElementsMatch(t, nodes[1:], c.Followers())
}

func appendRaw(ctx context.Context, conn *grpc.ClientConn, stream string) (*streams.AppendResp, metadata.MD, error) {
	call, err := streams.NewStreamsClient(conn).Append(ctx)
	if err != nil {
		return nil, nil, err
	}
	opts := &streams.AppendReq{Content: &streams.AppendReq_Options_{Options: &streams.AppendReq_Options{
		StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte(stream)},
		ExpectedStreamRevision: &streams.AppendReq_Options_Any{Any: &shared.Empty{}},
	}}}
	msg := &streams.AppendReq{Content: &streams.AppendReq_ProposedMessage_{ProposedMessage: &streams.AppendReq_ProposedMessage{
		Id:       &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}},
		Metadata: map[string]string{"type": "Raw", "content-type": "application/json"},
		Data:     []byte(`{}`),
	}}}
	if err := call.Send(opts); err != nil {
		return nil, nil, err
	}
	if err := call.Send(msg); err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, err
	}
	resp, err := call.CloseAndRecv()
	return resp, call.Trailer(), err
}

func readRaw(ctx context.Context, conn *grpc.ClientConn, stream string) (int, metadata.MD, error) {
	call, err := streams.NewStreamsClient(conn).Read(ctx, &streams.ReadReq{Options: &streams.ReadReq_Options{
		StreamOption: &streams.ReadReq_Options_Stream{Stream: &streams.ReadReq_Options_StreamOptions{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)},
			RevisionOption:   &streams.ReadReq_Options_StreamOptions_Start{Start: &shared.Empty{}},
		}},
		CountOption:  &streams.ReadReq_Options_Count{Count: 10},
		UuidOption:   &streams.ReadReq_Options_UUIDOption{Content: &streams.ReadReq_Options_UUIDOption_String_{String_: &shared.Empty{}}},
		FilterOption: &streams.ReadReq_Options_NoFilter{NoFilter: &shared.Empty{}},
	}})
	if err != nil {
		return 0, nil, err
	}
	n := 0
	for {
		resp, err := call.Recv()
		if errors.Is(err, io.EOF) {
			return n, call.Trailer(), nil
		}
		if err != nil {
			return n, call.Trailer(), err
		}
		if resp.GetEvent() != nil {
			n++
		}
	}
}

// assertNotLeader checks the server's NotLeader answer: NotFound with the
// leader's endpoint in the trailers.
func assertNotLeader(t *testing.T, err error, trailer metadata.MD, leader *esdbtest.Node) {
	t.Helper()
	require.Error(t, err)
	assert.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	assert.Equal(t, "Leader info available", status.Convert(err).Message())
	assert.Equal(t, []string{"not-leader"}, trailer.Get("exception"))
	host, port, _ := net.SplitHostPort(leader.Addr())
	assert.Equal(t, []string{host}, trailer.Get("leader-endpoint-host"))
	assert.Equal(t, []string{port}, trailer.Get("leader-endpoint-port"))
}

func TestClusterFollowerAnswers(t *testing.T) {
	c := esdbtest.StartCluster(t, 3)
	leader, follower := c.Leader(), c.Followers()[0]
	conn := dialNode(t, follower, nil)
	ctx := ctxT(t)
	requires := metadata.AppendToOutgoingContext(ctx, "requires-leader", "true")
	name := streamName()

	t.Run("writes that require the leader", func(t *testing.T) {
		_, tr, err := appendRaw(requires, conn, name)
		assertNotLeader(t, err, tr, leader)
	})
	t.Run("writes are forwarded to the leader", func(t *testing.T) {
		resp, _, err := appendRaw(ctx, conn, name)
		require.NoError(t, err)
		require.NotNil(t, resp.GetSuccess())
		resp, _, err = appendRaw(metadata.AppendToOutgoingContext(ctx, "requires-leader", "false"), conn, name)
		require.NoError(t, err)
		require.NotNil(t, resp.GetSuccess())
	})
	t.Run("reads that require the leader", func(t *testing.T) {
		_, tr, err := readRaw(requires, conn, name)
		assertNotLeader(t, err, tr, leader)
	})
	t.Run("reads are served", func(t *testing.T) {
		n, _, err := readRaw(ctx, conn, name)
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		n, _, err = readRaw(requires, dialNode(t, leader, nil), name)
		require.NoError(t, err, "the leader serves what requires it")
		assert.Equal(t, 2, n)
	})
	t.Run("persistent subscriptions", func(t *testing.T) {
		var tr metadata.MD
		_, err := persistent.NewPersistentSubscriptionsClient(conn).Delete(ctx, &persistent.DeleteReq{Options: &persistent.DeleteReq_Options{
			StreamOption: &persistent.DeleteReq_Options_StreamIdentifier{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(name)}},
			GroupName:    "g",
		}}, grpc.Trailer(&tr))
		assertNotLeader(t, err, tr, leader)
		_, err = persistent.NewPersistentSubscriptionsClient(conn).List(ctx, &persistent.ListReq{Options: &persistent.ListReq_Options{
			ListOption: &persistent.ListReq_Options_ListAllSubscriptions{ListAllSubscriptions: &shared.Empty{}},
		}})
		assert.Equal(t, codes.Unavailable, status.Code(err))
		assert.Equal(t, "Server Is Not Ready", status.Convert(err).Message())
	})
}

// The official client connected to a follower creates a persistent
// subscription: the first call answers NotLeader and moves the client to
// the leader, so that the second succeeds (the client's own cluster test).
func TestClusterClientFollowsNotLeader(t *testing.T) {
	c := esdbtest.StartCluster(t, 3)
	client := esdbtest.Dial(t, c.Followers()[0].DiscoverURI()+"&nodePreference=follower")
	ctx := ctxT(t)
	name := streamName()
	err := client.CreatePersistentSubscription(ctx, name, "g", esdb.PersistentStreamSubscriptionOptions{})
	assert.Equal(t, esdb.ErrorCodeNotLeader, errCode(err), "%v", err)
	require.NoError(t, client.CreatePersistentSubscription(ctx, name, "g", esdb.PersistentStreamSubscriptionOptions{}))
	leaderCalls := c.Leader().Calls()
	_, err = client.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, evs(1)...)
	require.NoError(t, err)
	assert.Greater(t, c.Leader().Calls(), leaderCalls, "the client now talks to the leader")
}

func TestClusterSetRequiresLeader(t *testing.T) {
	c := esdbtest.StartCluster(t, 3)
	c.SetRequiresLeader(true)
	conn := dialNode(t, c.Followers()[0], nil)
	ctx := ctxT(t)
	_, tr, err := appendRaw(ctx, conn, streamName())
	assertNotLeader(t, err, tr, c.Leader())
	_, tr, err = readRaw(ctx, conn, streamName())
	assertNotLeader(t, err, tr, c.Leader())
	c.SetRequiresLeader(false)
	_, _, err = appendRaw(ctx, conn, streamName())
	require.NoError(t, err)
}

func TestClusterKillLeader(t *testing.T) {
	c := esdbtest.StartCluster(t, 3)
	nodes := c.Nodes()
	client := esdbtest.Dial(t, c.URI())
	ctx := ctxT(t)
	name := streamName()
	_, err := client.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, evs(1)...)
	require.NoError(t, err)

	killed, err := c.KillLeader()
	require.NoError(t, err)
	assert.Equal(t, nodes[0], killed)
	assert.False(t, killed.Alive())
	_, err = net.Dial("tcp", killed.Addr())
	require.Error(t, err, "a killed node no longer listens")

	leader := c.Leader()
	require.NotNil(t, leader)
	assert.Equal(t, nodes[1], leader, "the next node is elected")
	want := map[string]string{
		nodes[0].Addr(): "Leader alive=false",
		nodes[1].Addr(): "Leader alive=true",
		nodes[2].Addr(): "Follower alive=true",
	}
	for _, n := range nodes[1:] {
		assert.Equal(t, want, members(readGossip(t, dialNode(t, n, nil))), "gossip of %s", n.Addr())
	}

	// The client finds the new leader through its seeds; the first call
	// after the kill may fail (Unavailable), as on a real cluster.
	var got []*esdb.ResolvedEvent
	for range 10 {
		if _, err = client.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, evs(1)...); err == nil {
			break
		}
	}
	require.NoError(t, err)
	got, err = readStream(t, client, name, esdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	assert.Len(t, got, 2, "the log is the cluster's")

	// Back as a follower.
	require.NoError(t, killed.Restart())
	want[nodes[0].Addr()] = "Follower alive=true"
	assert.Equal(t, want, members(readGossip(t, dialNode(t, killed, nil))))

	// Without a majority no node leads: writes are not served.
	nodes[1].Kill()
	require.NotNil(t, c.Leader(), "two of three still elect")
	assert.Equal(t, nodes[2], c.Leader())
	nodes[2].Kill()
	assert.Nil(t, c.Leader())
	assert.Equal(t, "Unknown alive=true", members(readGossip(t, dialNode(t, nodes[0], nil)))[nodes[0].Addr()])
	_, _, err = appendRaw(ctx, dialNode(t, nodes[0], nil), name)
	assert.Equal(t, codes.Unavailable, status.Code(err))
	_, err = c.KillLeader()
	require.Error(t, err)
	require.NoError(t, nodes[2].Restart())
	assert.NotNil(t, c.Leader(), "a majority again")
}

func TestClusterTLS(t *testing.T) {
	c := esdbtest.StartCluster(t, 3, esdbtest.WithTLS())
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(c.CACertPEM()))
	creds := credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	for _, n := range c.Nodes() {
		ms := readGossip(t, dialNode(t, n, creds))
		assert.Len(t, ms, 3, "node %s serves TLS with the cluster's CA", n.Addr())
	}
	assert.Contains(t, c.URI(), "tls=true&tlsCAFile=")
	client := esdbtest.Dial(t, c.URI())
	_, err := client.AppendToStream(ctxT(t), streamName(), esdb.AppendToStreamOptions{}, evs(1)...)
	require.NoError(t, err)
	assert.Positive(t, c.Leader().Calls())
}

// Kills and Close may race (a test's cleanup while a helper kills nodes).
func TestClusterCloseWhileKilling(t *testing.T) {
	c, err := esdbtest.NewCluster(3)
	require.NoError(t, err)
	nodes := c.Nodes()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, n := range nodes {
			n.Kill()
		}
	}()
	require.NoError(t, c.Close())
	<-done
	require.NoError(t, c.Close(), "Close is idempotent")
	require.Error(t, nodes[0].Restart(), "a closed cluster does not restart nodes")
}
