package esdbtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Cluster is an in-process EventStoreDB cluster: several nodes, each with
// its own gRPC listener, over one shared log. One node is the leader and
// the others are followers, as gossip reports them. A follower serves
// reads; it answers NotLeader, with the leader's endpoint, to calls that
// need the leader, as a real follower does:
//
//   - appends, batch appends, deletes and tombstones sent with the
//     request header "requires-leader: true" (without it a follower
//     forwards the write to the leader, so it succeeds);
//   - reads and subscriptions sent with that header;
//   - creating, updating, deleting and reading persistent subscriptions
//     (always: they run on the leader only). Their GetInfo and List
//     answer Unavailable "Server Is Not Ready" on a follower.
//
// [Cluster.KillLeader] stops the leader's listener and closes its
// connections, as a crash would; while a majority of the nodes is alive,
// another node becomes the leader at once and gossip says so. A killed
// node can come back with [Node.Restart], as a follower.
//
// Options are those of [NewServer]; [WithAddr] with a fixed port puts the
// nodes on that port and the following ones, and [WithTLS] serves TLS on
// every node with one generated CA.
type Cluster struct {
	core  *Server
	nodes []*Node

	mu     sync.Mutex
	leader *Node // nil while no majority is alive

	requireLeader atomic.Bool // every call is taken as sent with requires-leader

	closeOnce sync.Once
	closeErr  error
}

// Node is one member of a [Cluster].
type Node struct {
	c     *Cluster
	index int
	id    uuid.UUID
	addr  string // host:port, kept across restarts
	host  string // the address advertised in gossip
	port  int

	// guarded by c.mu
	state gossip.MemberInfo_VNodeState
	alive bool
	grpc  *grpc.Server
	done  chan struct{}
	stamp time.Time // when the state last changed

	calls atomic.Int64 // stream, persistent and projection calls admitted
}

// NewCluster starts a cluster of size nodes (three for a real cluster)
// listening on 127.0.0.1. The first node is the leader. It is ready for
// clients when it returns.
func NewCluster(size int, opts ...Option) (*Cluster, error) {
	if size < 1 {
		return nil, fmt.Errorf("esdbtest: a cluster needs at least one node, not %d", size)
	}
	core, err := newCore(opts)
	if err != nil {
		return nil, err
	}
	host, portText, err := net.SplitHostPort(core.cfg.addr)
	if err != nil {
		_ = core.closeCore()
		return nil, fmt.Errorf("esdbtest: address %q: %w", core.cfg.addr, err)
	}
	base, err := strconv.Atoi(portText)
	if err != nil {
		_ = core.closeCore()
		return nil, fmt.Errorf("esdbtest: address %q: %w", core.cfg.addr, err)
	}
	c := &Cluster{core: core}
	for i := range size {
		port := 0
		if base != 0 {
			port = base + i
		}
		n := &Node{c: c, index: i, id: uuid.New(), addr: net.JoinHostPort(host, strconv.Itoa(port)), state: gossip.MemberInfo_Follower}
		if i == 0 {
			n.state = gossip.MemberInfo_Leader
			c.leader = n
		}
		c.nodes = append(c.nodes, n)
		c.mu.Lock()
		err := n.startLocked()
		c.mu.Unlock()
		if err != nil {
			return nil, errors.Join(err, c.Close())
		}
	}
	return c, nil
}

// StartCluster starts a cluster for a test and closes it at tb.Cleanup. It
// fails the test if the cluster cannot start.
func StartCluster(tb testing.TB, size int, opts ...Option) *Cluster {
	tb.Helper()
	c, err := NewCluster(size, opts...)
	if err != nil {
		tb.Fatalf("esdbtest.StartCluster: %v", err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("esdbtest: close cluster: %v", err)
		}
	})
	return c
}

// Nodes are the cluster's nodes, in the order of their addresses.
func (c *Cluster) Nodes() []*Node { return append([]*Node(nil), c.nodes...) }

// Leader is the current leader, or nil while no majority of the nodes is
// alive.
func (c *Cluster) Leader() *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

// Followers are the live followers.
func (c *Cluster) Followers() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var fs []*Node
	for _, n := range c.nodes {
		if n.alive && n.state == gossip.MemberInfo_Follower {
			fs = append(fs, n)
		}
	}
	return fs
}

// KillLeader kills the leader (see [Node.Kill]) and returns it. Another
// node is the leader when it returns, if a majority is still alive.
func (c *Cluster) KillLeader() (*Node, error) {
	c.mu.Lock()
	l := c.leader
	c.mu.Unlock()
	if l == nil {
		return nil, errors.New("esdbtest: the cluster has no leader")
	}
	l.Kill()
	return l, nil
}

// SetRequiresLeader makes the followers treat every call as sent with the
// header "requires-leader: true" (on) or read the header (off, the
// default). Clients that send the header whenever they prefer the leader
// (the .NET client, by default) see followers this way; the Go client v4
// never sends it, so this is how a test makes its writes on a follower
// answer NotLeader.
func (c *Cluster) SetRequiresLeader(on bool) { c.requireLeader.Store(on) }

// URI is a connection string naming every node as a gossip seed, so that
// the client discovers the cluster and picks a node by its node
// preference (leader by default): for example
// "esdb://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3?tls=false".
func (c *Cluster) URI() string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr
	}
	return "esdb://" + strings.Join(addrs, ",") + c.query()
}

func (c *Cluster) query() string {
	if !c.core.cfg.tls {
		return "?tls=false"
	}
	return "?tls=true&tlsCAFile=" + url.QueryEscape(c.core.caFile)
}

// CACertPEM is the PEM of the CA that signed every node's certificate, or
// nil without [WithTLS].
func (c *Cluster) CACertPEM() []byte { return c.core.caPEM }

// CAFile is the path of a file holding [Cluster.CACertPEM], removed by
// Close. Empty without TLS.
func (c *Cluster) CAFile() string { return c.core.caFile }

// Close stops every node and closes the shared log.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.core.cancel() // ends subscriptions, so graceful stops are quick
		type front struct {
			g    *grpc.Server
			done chan struct{}
		}
		c.mu.Lock()
		var fronts []front
		for _, n := range c.nodes {
			if n.grpc != nil {
				fronts = append(fronts, front{n.grpc, n.done})
				n.grpc = nil
			}
			n.alive = false
		}
		c.leader = nil
		c.mu.Unlock()
		for _, f := range fronts {
			stopGRPC(f.g)
			<-f.done
		}
		c.closeErr = c.core.closeCore()
	})
	return c.closeErr
}

// Addr is the node's address (the same after a restart).
func (n *Node) Addr() string { return n.addr }

// URI is a connection string for this node alone, without discovery.
func (n *Node) URI() string { return "esdb://" + n.addr + n.c.query() }

// DiscoverURI is an esdb+discover:// connection string with this node as
// the one gossip seed.
func (n *Node) DiscoverURI() string { return "esdb+discover://" + n.addr + n.c.query() }

// State is the node's state as gossip reports it (Leader or Follower; a
// killed node keeps the state it had, and is reported not alive).
func (n *Node) State() gossip.MemberInfo_VNodeState {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.state
}

// Alive reports whether the node serves.
func (n *Node) Alive() bool {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.alive
}

// Calls is the number of stream, persistent subscription and projection
// calls the node has admitted (answered NotLeader or not), so that tests
// can tell which node a client chose.
func (n *Node) Calls() int64 { return n.calls.Load() }

// Kill stops the node as a crash would: its listener closes, its
// connections drop (calls in progress fail with Unavailable) and gossip
// reports it not alive. When it was the leader, the live node after it
// becomes the leader, if a majority of the nodes is alive.
func (n *Node) Kill() {
	c := n.c
	c.mu.Lock()
	if !n.alive {
		c.mu.Unlock()
		return
	}
	n.alive = false
	n.stamp = time.Now()
	g, done := n.grpc, n.done
	n.grpc = nil
	if c.leader == n {
		c.leader = nil
	}
	c.electLocked(n.index)
	c.mu.Unlock()
	g.Stop()
	<-done
	c.core.log.Info("esdbtest: node killed", "addr", n.addr)
}

// Restart starts a killed node again on its address, as a follower (or as
// the leader when it restores the cluster's majority).
func (n *Node) Restart() error {
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if n.alive {
		return nil
	}
	if c.core.ctx.Err() != nil {
		return errors.New("esdbtest: the cluster is closed")
	}
	n.state = gossip.MemberInfo_Follower
	if err := n.startLocked(); err != nil {
		return err
	}
	c.electLocked(n.index)
	return nil
}

// startLocked listens and serves.
func (n *Node) startLocked() error {
	lis, err := net.Listen("tcp", n.addr)
	if err != nil {
		return fmt.Errorf("esdbtest: listen: %w", err)
	}
	a := lis.Addr().(*net.TCPAddr)
	n.port = a.Port
	n.addr = net.JoinHostPort(a.IP.String(), strconv.Itoa(a.Port))
	n.host = a.IP.String()
	if a.IP.IsUnspecified() {
		n.host = "127.0.0.1"
	}
	g := n.c.core.newGRPC(&clusterGossip{n: n}, n.unary, n.stream)
	n.grpc, n.done, n.alive, n.stamp = g, make(chan struct{}), true, time.Now()
	done := n.done
	go func() {
		defer close(done)
		if err := g.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			n.c.core.log.Error("esdbtest: serve", "addr", n.addr, "err", err)
		}
	}()
	n.c.core.log.Info("esdbtest: node listening", "addr", n.addr, "state", n.state.String(), "tls", n.c.core.cfg.tls)
	return nil
}

// electLocked keeps the roles consistent with who is alive: while a
// majority of the nodes is alive there is one leader (when there is none,
// the first live node after the node at index from) and the other live
// nodes follow it; without a majority no node leads.
func (c *Cluster) electLocked(from int) {
	alive := 0
	for _, n := range c.nodes {
		if n.alive {
			alive++
		}
	}
	if alive*2 <= len(c.nodes) {
		c.leader = nil
		for _, n := range c.nodes {
			if n.alive && n.state != gossip.MemberInfo_Unknown {
				n.state, n.stamp = gossip.MemberInfo_Unknown, time.Now()
			}
		}
		return
	}
	if c.leader == nil {
		for i := 1; i <= len(c.nodes); i++ {
			n := c.nodes[(from+i)%len(c.nodes)]
			if n.alive {
				n.state, n.stamp = gossip.MemberInfo_Leader, time.Now()
				c.leader = n
				c.core.log.Info("esdbtest: leader elected", "addr", n.addr)
				break
			}
		}
	}
	for _, n := range c.nodes {
		if n.alive && n != c.leader && n.state != gossip.MemberInfo_Follower {
			n.state, n.stamp = gossip.MemberInfo_Follower, time.Now()
		}
	}
}

// --- gossip ---

type clusterGossip struct {
	gossip.UnimplementedGossipServer
	n *Node
}

// Read answers every member of the cluster with its state, liveness and
// address, as each node's gossip does.
func (g *clusterGossip) Read(context.Context, *shared.Empty) (*gossip.ClusterInfo, error) {
	c := g.n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	info := &gossip.ClusterInfo{}
	for _, n := range c.nodes {
		info.Members = append(info.Members, &gossip.MemberInfo{
			InstanceId:   &shared.UUID{Value: &shared.UUID_String_{String_: n.id.String()}},
			TimeStamp:    n.stamp.UnixNano() / 100,
			State:        n.state,
			IsAlive:      n.alive,
			HttpEndPoint: &gossip.EndPoint{Address: n.host, Port: uint32(n.port)},
		})
	}
	return info, nil
}

// --- the role of a node ---

// callClass is what a method needs of the node it reaches.
type callClass int

const (
	anyNode      callClass = iota // served by every node
	writeCall                     // forwarded by a follower unless it requires the leader
	readCall                      // served by a follower unless it requires the leader
	leaderOnly                    // persistent subscriptions: the leader only
	leaderReady                   // persistent subscription statistics: not ready on a follower
	uncountedRPC                  // gossip and server features
)

var callClasses = map[string]callClass{
	streams.Streams_Append_FullMethodName:      writeCall,
	streams.Streams_BatchAppend_FullMethodName: writeCall,
	streams.Streams_Delete_FullMethodName:      writeCall,
	streams.Streams_Tombstone_FullMethodName:   writeCall,
	streams.Streams_Read_FullMethodName:        readCall,

	persistent.PersistentSubscriptions_Create_FullMethodName:  leaderOnly,
	persistent.PersistentSubscriptions_Update_FullMethodName:  leaderOnly,
	persistent.PersistentSubscriptions_Delete_FullMethodName:  leaderOnly,
	persistent.PersistentSubscriptions_Read_FullMethodName:    leaderOnly,
	persistent.PersistentSubscriptions_GetInfo_FullMethodName: leaderReady,
	persistent.PersistentSubscriptions_List_FullMethodName:    leaderReady,

	gossip.Gossip_Read_FullMethodName:                                        uncountedRPC,
	"/event_store.client.server_features.ServerFeatures/GetSupportedMethods": uncountedRPC,
}

// errNotReady is a node's answer when it cannot serve a call yet.
var errNotReady = status.Error(codes.Unavailable, "Server Is Not Ready")

// admit decides whether the node serves a call, and otherwise returns the
// server's answer with the trailers to send.
func (n *Node) admit(ctx context.Context, method string) (metadata.MD, error) {
	class := callClasses[method]
	if class != uncountedRPC {
		n.calls.Add(1)
	}
	c := n.c
	c.mu.Lock()
	alive, state, leader := n.alive, n.state, c.leader
	c.mu.Unlock()
	if !alive {
		return nil, status.Error(codes.Unavailable, "node is shutting down")
	}
	if state == gossip.MemberInfo_Leader {
		return nil, nil
	}
	needLeader := c.requireLeader.Load() || requiresLeader(ctx)
	switch class {
	case writeCall:
		if leader == nil {
			return nil, errNotReady
		}
		if !needLeader {
			return nil, nil
		}
	case readCall:
		if !needLeader {
			return nil, nil
		}
	case leaderOnly:
	case leaderReady:
		return nil, errNotReady
	default:
		return nil, nil
	}
	if leader == nil {
		return nil, errNotReady
	}
	return metadata.Pairs(
			"exception", "not-leader",
			"leader-endpoint-host", leader.host,
			"leader-endpoint-port", strconv.Itoa(leader.port)),
		status.Error(codes.NotFound, "Leader info available")
}

// requiresLeader reads the request header "requires-leader" as the
// server does: true only when it parses as true.
func requiresLeader(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	v := md.Get("requires-leader")
	if len(v) == 0 {
		return false
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v[0]))
	return err == nil && b
}

func (n *Node) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	md, err := n.admit(ctx, info.FullMethod)
	if err != nil {
		if md != nil {
			_ = grpc.SetTrailer(ctx, md)
		}
		return nil, err
	}
	return h(ctx, req)
}

func (n *Node) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	md, err := n.admit(ss.Context(), info.FullMethod)
	if err != nil {
		if md != nil {
			ss.SetTrailer(md)
		}
		if info.FullMethod == streams.Streams_Append_FullMethodName {
			// Answered after the client has sent all, as Append does.
			var f appendFrame
			drain(func() (struct{}, error) { return struct{}{}, ss.RecvMsg(&f) })
		}
		return err
	}
	return h(srv, ss)
}
