package main

import (
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// startCluster runs the command with -cluster and returns the connection
// string it prints and the address of each node.
func startCluster(t *testing.T, args ...string) (string, []string) {
	t.Helper()
	uri := startNode(t, args...)
	return uri, strings.Split(strings.TrimPrefix(strings.SplitN(uri, "?", 2)[0], "esdb://"), ",")
}

// dialURI connects the official client with a connection string.
func dialURI(t *testing.T, uri string) *esdbclient.Client {
	t.Helper()
	cfg, err := esdbclient.ParseConnectionString(uri)
	require.NoError(t, err)
	cfg.Logger = esdbclient.NoopLogging()
	c, err := esdbclient.NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newEvent() esdbclient.EventData {
	return esdbclient.EventData{EventID: uuid.New(), EventType: "Tested", ContentType: esdbclient.ContentTypeJson, Data: []byte(`{}`)}
}

func gossipStates(t *testing.T, addr string) map[string]string {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	info, err := gossip.NewGossipClient(conn).Read(ctx, &shared.Empty{})
	require.NoError(t, err)
	out := map[string]string{}
	for _, m := range info.Members {
		a := net.JoinHostPort(m.HttpEndPoint.Address, strconv.Itoa(int(m.HttpEndPoint.Port)))
		out[a] = m.State.String() + " alive=" + strconv.FormatBool(m.IsAlive)
	}
	return out
}

// waitGossip polls a node's gossip, a bounded number of times, until it
// reports want (the signals are handled by another goroutine).
func waitGossip(t *testing.T, addr string, want map[string]string) {
	t.Helper()
	var got map[string]string
	for range 500 {
		if got = gossipStates(t, addr); assert.ObjectsAreEqual(want, got) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.Equal(t, want, got)
}

func TestClusterFlag(t *testing.T) {
	uri, nodes := startCluster(t, "-cluster", "3", "-addr", "127.0.0.1:0")
	require.Len(t, nodes, 3)
	require.True(t, strings.HasSuffix(uri, "?tls=false"), uri)
	want := map[string]string{
		nodes[0]: "Leader alive=true",
		nodes[1]: "Follower alive=true",
		nodes[2]: "Follower alive=true",
	}
	assert.Equal(t, want, gossipStates(t, nodes[2]))

	c := dialURI(t, uri)
	stream := uuid.NewString()
	_, err := c.AppendToStream(t.Context(), stream, esdbclient.AppendToStreamOptions{}, newEvent())
	require.NoError(t, err)

	// SIGUSR1 kills the leader; the next node leads.
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGUSR1))
	want[nodes[0]], want[nodes[1]] = "Leader alive=false", "Leader alive=true"
	waitGossip(t, nodes[2], want)
	for range 10 { // the first call after the kill may meet the dead connection
		if _, err = c.AppendToStream(t.Context(), stream, esdbclient.AppendToStreamOptions{}, newEvent()); err == nil {
			break
		}
	}
	require.NoError(t, err)

	// SIGUSR2 brings the killed node back as a follower.
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGUSR2))
	want[nodes[0]] = "Follower alive=true"
	waitGossip(t, nodes[2], want)
	assert.Equal(t, want, gossipStates(t, nodes[0]))
}

func TestClusterFlagTLS(t *testing.T) {
	uri, nodes := startCluster(t, "-cluster", "3", "-tls", "-addr", "127.0.0.1:0")
	require.Len(t, nodes, 3)
	require.Contains(t, uri, "tls=true&tlsCAFile=")
	_, err := dialURI(t, uri).AppendToStream(t.Context(), uuid.NewString(), esdbclient.AppendToStreamOptions{}, newEvent())
	require.NoError(t, err)
}

func TestClusterFlagRefusals(t *testing.T) {
	var cfg config
	assert.Error(t, cfg.parseFlags([]string{"-cluster", "-1"}, io.Discard))
	cfg = config{}
	assert.Error(t, cfg.parseFlags([]string{"-cluster", "3", "-cert", "n.crt", "-key", "n.key"}, io.Discard))
	cfg = config{}
	require.NoError(t, cfg.parseFlags([]string{"-cluster", "3", "-tls"}, io.Discard))
	assert.Equal(t, 3, cfg.cluster)
}
