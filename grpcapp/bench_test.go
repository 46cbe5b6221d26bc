package grpcapp_test

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/example/orders"
	"github.com/eventsourcing-go/eventsourcing/grpcapp"
	"github.com/eventsourcing-go/eventsourcing/grpcapp/pb"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// reportLatency reports the p50 and p99 of the timed round trips.
func reportLatency(b *testing.B, d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	if len(d) == 0 {
		return
	}
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// median returns the median of d (sorting it).
func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

// The target's ratio measured in one loop: a bare Ping and a remote
// GetOrder alternate on the same connection, so that both see the same load
// on a shared machine; reports both medians and their ratio.
func BenchmarkCallVsBare(b *testing.B) {
	s := startServer(b, newOrders(b), grpcapp.WithServerLogger(discard()))
	c := connect(b, s.Addr())
	rpc := pb.NewApplicationClient(c.Conn())
	ctx := context.Background()
	id, err := grpcapp.Call[uuid.UUID](ctx, c.App(), "CreateNewOrder")
	require.NoError(b, err)
	bare := make([]time.Duration, 0, b.N)
	call := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t0 := time.Now()
		if _, err := rpc.Ping(ctx, &pb.PingRequest{}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := grpcapp.Call[orders.OrderView](ctx, c.App(), "GetOrder", id); err != nil {
			b.Fatal(err)
		}
		bare, call = append(bare, t1.Sub(t0)), append(call, time.Since(t1))
	}
	mb, mc := median(bare), median(call)
	b.ReportMetric(float64(mb.Nanoseconds())/1e3, "bare-p50-µs")
	b.ReportMetric(float64(mc.Nanoseconds())/1e3, "call-p50-µs")
	b.ReportMetric(float64(mc)/float64(mb), "ratio")
}

// The baseline: a bare gRPC unary call (Ping does nothing) on the same
// connection as the calls below.
func BenchmarkBareUnary(b *testing.B) {
	s := startServer(b, newOrders(b), grpcapp.WithServerLogger(discard()))
	c := connect(b, s.Addr())
	rpc := pb.NewApplicationClient(c.Conn())
	ctx := context.Background()
	d := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t0 := time.Now()
		if _, err := rpc.Ping(ctx, &pb.PingRequest{}); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t0))
	}
	reportLatency(b, d)
}

// A remote GetOrder query through the proxy (encode, reflectively call,
// repository get, encode, decode).
func BenchmarkCallGetOrder(b *testing.B) {
	s := startServer(b, newOrders(b), grpcapp.WithServerLogger(discard()))
	c := connect(b, s.Addr())
	ctx := context.Background()
	id, err := grpcapp.Call[uuid.UUID](ctx, c.App(), "CreateNewOrder")
	require.NoError(b, err)
	d := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t0 := time.Now()
		if _, err := grpcapp.Call[orders.OrderView](ctx, c.App(), "GetOrder", id); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t0))
	}
	reportLatency(b, d)
}

// fillLog records n Order.Created events in app.
func fillLog(b testing.TB, app *orders.Orders, n int) {
	ctx := context.Background()
	for i := 0; i < n; i += 1000 {
		roots := make([]eventsourcing.Root, 0, 1000)
		for range min(1000, n-i) {
			roots = append(roots, orders.NewOrder())
		}
		_, err := app.Save(ctx, roots...)
		require.NoError(b, err)
	}
}

const logSize = 100_000

// The baseline: pages of 1,000 selected from the application's recorder in
// process.
func BenchmarkSelectLocal(b *testing.B) {
	app := newOrders(b)
	fillLog(b, app, logSize)
	ctx := context.Background()
	rec := app.Recorder()
	var start int64
	n := 0
	for b.Loop() {
		ns, err := rec.SelectNotifications(ctx, recorder.NotificationQuery{After: recorder.After(start), Limit: 1000})
		if err != nil {
			b.Fatal(err)
		}
		n += len(ns)
		if start += 1000; start >= logSize {
			start = 0
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "notifications/s")
}

// Pages of 1,000 selected over gRPC.
func BenchmarkSelectRemote(b *testing.B) {
	app := newOrders(b)
	fillLog(b, app, logSize)
	s := startServer(b, app, grpcapp.WithServerLogger(discard()))
	c := connect(b, s.Addr())
	ctx := context.Background()
	var start int64
	n := 0
	for b.Loop() {
		ns, err := c.Log().Select(ctx, recorder.NotificationQuery{After: recorder.After(start), Limit: 1000})
		if err != nil {
			b.Fatal(err)
		}
		n += len(ns)
		if start += 1000; start >= logSize {
			start = 0
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "notifications/s")
}

// Orders paid per second through the three servers of the in-process gRPC
// runner: b.N orders created by 8 concurrent callers, timed until the last
// is paid (Orders' log then holds 3 notifications per order).
func BenchmarkOrdersPaid(b *testing.B) {
	ctx := context.Background()
	r := grpcapp.NewRunner(orders.System(), nil, grpcapp.WithRunnerLogger(discard()))
	require.NoError(b, r.Start(ctx))
	defer r.Stop()
	app, err := r.Get("Orders")
	require.NoError(b, err)
	ordersApp := orders.Orders{}
	_ = ordersApp
	b.ResetTimer()
	var wg sync.WaitGroup
	work := make(chan struct{}, b.N)
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	for range 8 {
		wg.Go(func() {
			for range work {
				if _, err := app.Call(ctx, "CreateNewOrder"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	inproc, err := r.App("Payments")
	require.NoError(b, err)
	pr, _ := inproc.ProcessRecorder()
	own, err := r.App("Orders")
	require.NoError(b, err)
	// Paid = Orders has processed every Payment.Created.
	opr, _ := own.ProcessRecorder()
	_ = pr
	require.NoError(b, opr.Wait(ctx, "Payments", int64(b.N), 60*time.Second))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
}
