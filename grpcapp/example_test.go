package grpcapp_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/example/orders"
	"github.com/eventsourcing-go/eventsourcing/grpcapp"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Serve an application, connect a client, call its commands and queries and
// select its notifications (the first flow of the reference's README).
func Example() {
	ctx := context.Background()
	app, err := orders.NewOrders(ctx, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer app.Close()

	// ORDERS_GRPC_SERVER_ADDRESS=localhost:50051 would do the same; port 0
	// picks a free one.
	server, err := grpcapp.NewServer(app, grpcapp.WithAddress("localhost:0"), grpcapp.WithServerLogger(discard()))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := server.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer server.Stop(ctx)

	client, err := grpcapp.Connect(ctx, server.Addr(), grpcapp.WithTypes(orders.Types()), grpcapp.WithMaxAttempts(10))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()

	id, _ := grpcapp.Call[uuid.UUID](ctx, client.App(), "CreateNewOrder")
	order, _ := grpcapp.Call[orders.OrderView](ctx, client.App(), "GetOrder", id)
	fmt.Println(order.ID == id, order.IsReserved, order.IsPaid)

	ns, _ := client.Log().Select(ctx, recorder.NotificationQuery{After: recorder.After(1), Inclusive: true, Limit: 10})
	for _, n := range ns {
		fmt.Println(n.ID, n.OriginatorID == id.String(), n.OriginatorVersion, n.Topic)
	}
	// Output:
	// true false false
	// 1 true 0 eventsourcing_grpc.example:Order.Created
}

// Run a system of gRPC servers and watch an order get paid (the second flow
// of the reference's README). WithSubprocesses runs each application in its
// own process of a command built on grpcapp/cli (the example's
// eventsourcing-grpc) instead.
func ExampleRunner() {
	ctx := context.Background()
	runner := grpcapp.NewRunner(orders.System(), nil, grpcapp.WithRunnerLogger(discard()))
	if err := runner.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer runner.Stop()

	app, _ := runner.Get("Orders")
	id, _ := grpcapp.Call[uuid.UUID](ctx, app, "CreateNewOrder")
	for {
		if paid, err := grpcapp.Call[bool](ctx, app, "IsOrderPaid", id); err != nil || paid {
			break
		}
	}
	client, _ := runner.Client("Orders")
	ns, _ := client.Log().Select(ctx, recorder.NotificationQuery{After: recorder.After(1), Inclusive: true, Limit: 10})
	for _, n := range ns {
		fmt.Println(n.ID, n.OriginatorVersion, n.Topic)
	}
	// Output:
	// 1 0 eventsourcing_grpc.example:Order.Created
	// 2 1 eventsourcing_grpc.example:Order.Reserved
	// 3 2 eventsourcing_grpc.example:Order.Paid
}
