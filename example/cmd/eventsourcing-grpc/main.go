// Command eventsourcing-grpc serves the orders system of example/orders
// over gRPC: the command line of package grpcapp/cli with the example's
// registry (see its documentation for the subcommands and settings).
//
//	eventsourcing-grpc runner orders.System
package main

import (
	"github.com/eventsourcing-go/eventsourcing/example/orders"
	"github.com/eventsourcing-go/eventsourcing/grpcapp/cli"
)

func main() { cli.Main(orders.Registry()) }
