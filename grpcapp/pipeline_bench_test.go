package grpcapp_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/example/orders"
	"github.com/eventsourcing-go/eventsourcing/grpcapp"
)

// One order at a time through the in-process gRPC runner: created by a
// call to Orders, reserved by Reservations, paid by Payments, counted by
// the OrdersSummary projection, each following its leader over gRPC.
// Reports the p50 and p99 of created → paid (Orders has recorded the
// payment) and of created → counted (the projection's Wait, over gRPC, has
// returned for the Paid notification).
func BenchmarkOrderCreatedPaidCounted(b *testing.B) {
	ctx := context.Background()
	r := grpcapp.NewRunner(orders.System(), nil, grpcapp.WithRunnerLogger(discard()))
	require.NoError(b, r.Start(ctx))
	defer r.Stop()
	app, err := r.Get("Orders")
	require.NoError(b, err)
	summary, err := r.Client("OrdersSummary")
	require.NoError(b, err)
	own, err := r.App("Orders")
	require.NoError(b, err)
	opr, _ := own.ProcessRecorder()
	var paid, counted []time.Duration
	i := int64(0)
	for b.Loop() {
		i++
		t0 := time.Now()
		if _, err := app.Call(ctx, "CreateNewOrder"); err != nil {
			b.Fatal(err)
		}
		// The i-th order's payment is Payments' i-th notification; its
		// Paid event is Orders' 3i-th (memory ids count events).
		if err := opr.Wait(ctx, "Payments", i, 10*time.Second); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := summary.Wait(ctx, "Orders", 3*i, 10*time.Second); err != nil {
			b.Fatal(err)
		}
		paid, counted = append(paid, t1.Sub(t0)), append(counted, time.Since(t0))
	}
	report := func(name string, d []time.Duration) {
		median(d)
		b.ReportMetric(float64(d[len(d)/2].Nanoseconds())/1e3, name+"-p50-µs")
		b.ReportMetric(float64(d[len(d)*99/100].Nanoseconds())/1e3, name+"-p99-µs")
	}
	report("paid", paid)
	report("counted", counted)
}
