package grpcapp_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// blackhole forwards TCP connections to a server until freeze, after which
// the connections it already has stop carrying anything, in either
// direction, without being closed: what a network partition, or a peer
// that came back with another address, looks like to both ends. New
// connections are forwarded again.
type blackhole struct {
	lis    net.Listener
	target string
	done   chan struct{}

	mu     sync.Mutex
	conns  int
	frozen int // connections with an index below are frozen
	all    []net.Conn
}

func newBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &blackhole{lis: lis, target: target, done: make(chan struct{})}
	go b.serve()
	t.Cleanup(func() {
		close(b.done)
		lis.Close()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, c := range b.all {
			c.Close()
		}
	})
	return b
}

func (b *blackhole) port() string {
	_, port, _ := net.SplitHostPort(b.lis.Addr().String())
	return port
}

func (b *blackhole) freeze() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.frozen = b.conns
}

func (b *blackhole) serve() {
	for {
		in, err := b.lis.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", b.target)
		if err != nil {
			in.Close()
			continue
		}
		b.mu.Lock()
		i := b.conns
		b.conns++
		b.all = append(b.all, in, out)
		b.mu.Unlock()
		go b.pipe(i, in, out)
		go b.pipe(i, out, in)
	}
}

func (b *blackhole) pipe(i int, from, to net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		b.mu.Lock()
		frozen := i < b.frozen
		b.mu.Unlock()
		if frozen {
			<-b.done // swallow everything, close nothing
			return
		}
		if n > 0 {
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// A subscription whose connection goes dead without being closed notices
// (by the connection's keepalive pings) and subscribes again, instead of
// waiting on the dead stream until the kernel gives up on it, a quarter of
// an hour later; so a follower does not stay "live" on a partitioned
// leader.
func TestSubscriptionOverDeadConnection(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := startServer(t, newOrders(t))
	direct := connect(t, s.Addr())
	hole := newBlackhole(t, s.Addr())
	c := connect(t, "localhost:"+hole.port())

	_, err := direct.App().Call(ctx, "CreateNewOrder")
	require.NoError(t, err)
	sub, err := c.Log().Subscribe(ctx, recorder.Start(), nil)
	require.NoError(t, err)
	defer sub.Close()
	first, err := sub.Next(ctx)
	require.NoError(t, err)

	hole.freeze()
	_, err = direct.App().Call(ctx, "CreateNewOrder")
	require.NoError(t, err)
	// A bound far above the keepalive's time and timeout (15 s), far below
	// the kernel's retransmission timeout.
	nextCtx, cancelNext := context.WithTimeout(ctx, 60*time.Second)
	defer cancelNext()
	n, err := sub.Next(nextCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("the subscription did not notice in 60 s that its connection carries nothing any more")
	}
	require.NoError(t, err)
	require.Greater(t, n.ID, first.ID)
}
