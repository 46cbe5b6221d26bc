package grpcapp

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Connections between clients and servers are checked by HTTP/2 pings, so
// that one whose peer vanished without closing it (a network partition, a
// container or pod that came back with another address) fails within
// keepaliveTime+keepaliveTimeout: its calls and subscriptions end with
// Unavailable and are made again on a new connection, instead of waiting
// on the dead one until the kernel gives up on it, about a quarter of an
// hour later, while a follower on it still reports itself live.
const (
	keepaliveTime    = 10 * time.Second // the least grpc-go allows a client
	keepaliveTimeout = 5 * time.Second
)

// clientKeepalive pings after keepaliveTime without traffic, also on a
// connection with no call in flight.
var clientKeepalive = grpc.WithKeepaliveParams(keepalive.ClientParameters{
	Time: keepaliveTime, Timeout: keepaliveTimeout, PermitWithoutStream: true,
})

// serverKeepalive adds to opts: it lets clients ping that often (grpc-go's default
// answers a client pinging more than once in 5 minutes by closing the
// connection), and pings idle clients itself, so that a stream to a
// follower that vanished is ended too.
func serverKeepalive(opts ...grpc.ServerOption) []grpc.ServerOption {
	return append([]grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveTime / 2, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: keepaliveTime, Timeout: keepaliveTimeout}),
	}, opts...)
}
