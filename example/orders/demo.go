package orders

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/grpcapp"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// Demo creates an order through the runner's Orders proxy, prints its
// progress until it is paid, then its three notifications.
func Demo(ctx context.Context, r *grpcapp.Runner, w io.Writer) error {
	orders, err := r.Get("Orders")
	if err != nil {
		return err
	}
	began := time.Now()
	id, err := grpcapp.Call[uuid.UUID](ctx, orders, "CreateNewOrder")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nCreated order %s\n", id)
	reserved := false
	deadline := time.Now().Add(10 * time.Second)
	for {
		o, err := grpcapp.Call[OrderView](ctx, orders, "GetOrder", id)
		if err != nil {
			return err
		}
		if o.IsReserved && !reserved {
			reserved = true
			fmt.Fprintf(w, "  reserved after %v (reservation %s)\n", time.Since(began).Round(time.Microsecond), o.ReservationID)
		}
		if o.IsPaid {
			fmt.Fprintf(w, "  paid after %v (payment %s)\n", time.Since(began).Round(time.Microsecond), o.PaymentID)
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("order %s not paid within 10 s", id)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.Errored():
			return r.Err()
		case <-time.After(time.Millisecond):
		}
	}
	client, _ := r.Client("Orders")
	// From the start of the log: ids are 1, 2, 3 on SQL and memory, $all
	// commit positions on EventStoreDB.
	ns, err := client.Log().Select(ctx, recorder.NotificationQuery{Limit: 10})
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "Orders' notifications:")
	for _, n := range ns {
		fmt.Fprintf(w, "  #%d %s v%d %s\n", n.ID, n.OriginatorID, n.OriginatorVersion, n.Topic)
	}
	if summary, err := r.Get("OrdersSummary"); err == nil {
		// The projection follows Orders on its own: wait until it has
		// seen the order paid, then ask it.
		last := ns[len(ns)-1].ID
		if err := summary.Client().Wait(ctx, "Orders", last, 10*time.Second); err != nil {
			return fmt.Errorf("OrdersSummary did not count the order: %w", err)
		}
		paid, err := grpcapp.Call[int](ctx, summary, "CountPaid")
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "OrdersSummary counts %d paid order(s) (at %s)\n", paid, r.Addresses()["OrdersSummary"])
	}
	addr := r.Addresses()["Orders"]
	fmt.Fprintf(w, "\nTry:\n  go run ./example/cmd/eventsourcing-grpc call %s GetOrder %s\n  go run ./example/cmd/eventsourcing-grpc call %s CreateNewOrder\n", addr, id, addr)
	return nil
}
