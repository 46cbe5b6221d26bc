// Package grpcapp serves event-sourced applications over gRPC and runs
// systems of them as gRPC servers.
//
// A Server hosts one application: callers run its commands and queries by
// name (only the exported, context-first methods of the application's own
// type: never the embedded framework's Save, Close or Repository), select
// its notification log, and followers stream it. Errors keep their kind
// across the wire: errors.Is(err, eventsourcing.ErrAggregateNotFound) holds
// on the client for a NotFound status, and so on (see Error).
//
//	server, _ := grpcapp.NewServer(app) // ORDERS_GRPC_SERVER_ADDRESS
//	_ = server.Start(ctx)
//	client, _ := grpcapp.Connect(ctx, "localhost:50051", grpcapp.WithTypes(orders.Types()))
//	id, _ := grpcapp.Call[uuid.UUID](ctx, client.App(), "CreateNewOrder")
//
// Clients retry queries and never re-send a command once the server may
// have run it. A method is a query only when the application (or a
// projection's view) declares it so, with QueryDeclarer or WithQueries; its
// name has no say.
//
// NewSystemServer serves one member of a system.System. An application's
// server follows its leaders, and a projection's server follows its
// upstream, on follow.Follower with a RemoteSource: pages of the leader's
// log while behind, one notification stream while caught up, resubscribed
// from the last position after a drop, so effects are exactly-once. A
// projection's server serves its view's own queries; every server answers
// Status, and Wait and Rebuild where they apply. Runner runs a whole system
// this way, in process or one subprocess per member.
//
// A Registry names by topic the systems, applications and projections a
// command serves (APPLICATION_TOPIC, SYSTEM_TOPIC); package grpcapp/cli is
// the command line built on one, so a program's main is its registry and
// cli.Main.
//
// Loopback addresses (localhost, 127.0.0.1 or [::1] with a port) are served
// in plaintext on the loopback interface only; every other address needs
// mutual TLS
// (GRPC_SSL_PRIVATE_KEY_PATH, GRPC_SSL_CERTIFICATE_PATH,
// GRPC_SSL_ROOT_CERTIFICATE_PATH) unless GRPC_INSECURE is set.
//
// Servers and clients are traced and measured with OpenTelemetry (a span
// and a duration per RPC on each side, the server's span of a call named by
// the command or query it runs) once a tracer or meter provider records
// (the global ones, or WithServerTelemetry and WithClientTelemetry); each
// notification carries the trace context of the span that recorded its
// event, so a follower's processing continues the leader's trace. Server and
// Runner report their followers' progress (Upstreams), from which package
// operate judges readiness.
package grpcapp
