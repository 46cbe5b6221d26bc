// Package esdbtest runs an in-process server that speaks EventStoreDB's
// gRPC protocol, so that code using the official Go client
// (github.com/EventStore/EventStore-Client-Go/v4) can be tested without
// Docker, the way net/http/httptest serves HTTP handlers.
//
// The server behaves like a single EventStoreDB 24.10 node: appends with
// every expected-revision variant and idempotent re-appends, batch appends
// (Streams.BatchAppend, correlated and chunked, with per-write deadlines),
// reads of streams and of $all in both directions, soft delete and
// tombstone, stream metadata ($maxCount, $maxAge, $tb), catch-up
// subscriptions with filters (evaluated as .NET regular expressions, as the
// server does), checkpoints and the caught-up signal, persistent
// subscriptions, server features and gossip (so esdb+discover:// works),
// and, with [WithProjections], the Projections service with JavaScript
// projections and the system projections. Errors carry the server's status
// codes, messages and trailers. What it does not implement (replication,
// ACLs, among others) is listed in docs/eventstoredb.md. It keeps one ordered log
// whose positions (commit = prepare) step like byte offsets, so they are
// strictly increasing but not contiguous, as on a real node.
//
// Connect the client with the server's connection string:
//
//	srv := esdbtest.Start(t)
//	cfg, _ := esdb.ParseConnectionString(srv.URI())
//	client, _ := esdb.NewClient(cfg)
//
// Always go through ParseConnectionString: a hand-built Configuration never
// runs discovery and cannot connect.
//
// Options add TLS with a generated CA ([WithTLS]), basic-auth users
// ([WithUsers]), persistence to a directory ([WithDataDir]) and a fixed
// address ([WithAddr]) and projections ([WithProjections]); a logger at
// debug level ([WithLogger]) logs every call. The cmd/esdb-emulator binary serves the same server for other
// processes and languages.
//
// [StartCluster] and [NewCluster] run a cluster instead: several nodes,
// each on its own port, over one shared log, whose gossip reports a leader
// and followers, whose followers answer NotLeader as the server's do, and
// whose leader can be killed ([Cluster.KillLeader]) so that another is
// elected, for failover tests:
//
//	c := esdbtest.StartCluster(t, 3)
//	cfg, _ := esdb.ParseConnectionString(c.URI()) // every node as a gossip seed
//	c.KillLeader()
package esdbtest
