package cli

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/example/orders"
	"github.com/eventsourcing-go/eventsourcing/grpcapp"
)

// runCmd runs a subcommand of the example's command in this process.
func runCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runWith(t, orders.Registry(), args...)
}

func runWith(t *testing.T, reg *grpcapp.Registry, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(t.Context(), reg, append([]string{"eventsourcing-grpc"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

// startServer serves Orders (in memory) in this process at a free address.
func startServer(t *testing.T) (*grpcapp.Server, string) {
	t.Helper()
	app, err := orders.NewOrders(t.Context(), map[string]string{"PERSISTENCE_MODULE": "memory"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = app.Close() })
	s, err := grpcapp.NewServer(app, grpcapp.WithAddress("localhost:0"))
	require.NoError(t, err)
	require.NoError(t, s.Start(t.Context()))
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s, s.Addr()
}

// A server on a taken port, or on no port at all, prints why it cannot
// listen and exits 1.
func TestServerCannotListen(t *testing.T) {
	taken, err := net.Listen("tcp", "localhost:0")
	require.NoError(t, err)
	defer taken.Close()
	_, port, err := net.SplitHostPort(taken.Addr().String())
	require.NoError(t, err)
	for _, addr := range []string{"localhost:" + port, "127.0.0.1:" + port, "localhost:99999"} {
		t.Run(addr, func(t *testing.T) {
			t.Setenv("APPLICATION_TOPIC", "")
			t.Setenv("SYSTEM_TOPIC", "")
			t.Setenv("ORDERS_GRPC_SERVER_ADDRESS", addr)
			var code int
			var stderr string
			require.NotPanics(t, func() { _, stderr, code = runCmd(t, "server", "orders.Orders") })
			assert.Equal(t, 1, code)
			assert.Contains(t, stderr, addr)
			assert.Regexp(t, "address already in use|port \"99999\" is not a number in 0..65535", stderr)
			assert.NotContains(t, stderr, "panic")
		})
	}
}

// -h on every subcommand prints its help, named after the program, and
// exits 0.
func TestSubcommandHelp(t *testing.T) {
	for _, sub := range []string{"server", "runner", "call", "notifications", "ssl", "status", "rebuild", "health"} {
		for _, h := range []string{"-h", "--help"} {
			out, stderr, code := runCmd(t, sub, h)
			assert.Equal(t, 0, code, "%s %s: %s", sub, h, stderr)
			assert.NotContains(t, stderr, "eventsourcing-grpc:", "%s %s is not an error", sub, h)
			if sub != "health" {
				assert.Contains(t, out, "usage: eventsourcing-grpc "+sub, "%s %s", sub, h)
			}
		}
	}
	out, _, code := runCmd(t, "notifications", "localhost:1", "-h")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "-limit")

	var o bytes.Buffer
	code = Run(t.Context(), nil, []string{filepath.Join("bin", "mycommand"), "status", "-h"}, &o, &o)
	assert.Equal(t, 0, code)
	assert.Contains(t, o.String(), "usage: mycommand status", "the program's own name")
}

// An argument of the wrong type names the type the method wants and what
// it got.
func TestCallArgumentErrors(t *testing.T) {
	_, addr := startServer(t)
	_, stderr, code := runCmd(t, "call", addr, "GetOrder", "42")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "InvalidArgument")
	assert.Contains(t, stderr, "GetOrder argument 1: want uuid.UUID, got number 42")
	_, stderr, code = runCmd(t, "call", addr, "GetOrder", "not-a-uuid")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `want uuid.UUID, got string "not-a-uuid"`)
}

func TestUsageErrors(t *testing.T) {
	t.Setenv("APPLICATION_TOPIC", "")
	t.Setenv("SYSTEM_TOPIC", "")
	_, _, code := runCmd(t)
	assert.Equal(t, 2, code)
	_, _, code = runCmd(t, "no-such-subcommand")
	assert.Equal(t, 2, code)
	_, stderr, code := runCmd(t, "server")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "orders.Orders", "the registered topics")
	_, stderr, code = runCmd(t, "server", "no.Such")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `no application registered as "no.Such"`)
	_, stderr, code = runCmd(t, "runner", "no.Such")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "orders.System")
	addr, _ := grpcapp.FreeLocalhostAddress()
	_, stderr, code = runCmd(t, "call", "-timeout", "200ms", addr, "GetOrder")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "Unavailable")
}

// A registry with a failed registration stops every subcommand, naming
// the mistake, before anything starts.
func TestRegistryError(t *testing.T) {
	reg := orders.Registry()
	err := reg.App("orders.Orders", orders.PaymentsApp())
	require.ErrorIs(t, err, eventsourcing.ErrArgument)
	_, stderr, code := runWith(t, reg, "status", "-h")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `eventsourcing-grpc: grpcapp: registry: invalid argument: "orders.Orders" is already registered`)
}

// Without a registry the client subcommands work, and the server and
// runner say that nothing is registered.
func TestNilRegistry(t *testing.T) {
	t.Setenv("APPLICATION_TOPIC", "")
	t.Setenv("SYSTEM_TOPIC", "")
	_, addr := startServer(t)
	out, stderr, code := runWith(t, nil, "call", addr, "Describe")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "CreateNewOrder")
	out, stderr, code = runWith(t, nil, "health", addr)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "serving "+addr+"\n", out)
	_, stderr, code = runWith(t, nil, "runner", "orders.System")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `no system registered as "orders.System"`)
}

// systemInMemory sets the environment of the orders system in memory, each
// member at a free address.
func systemInMemory(t *testing.T) {
	t.Helper()
	t.Setenv("PERSISTENCE_MODULE", "memory")
	for _, n := range []string{"ORDERS", "RESERVATIONS", "PAYMENTS", "ORDERSSUMMARY"} {
		addr, err := grpcapp.FreeLocalhostAddress()
		require.NoError(t, err)
		t.Setenv(n+"_GRPC_SERVER_ADDRESS", addr)
	}
}

// A runner interrupted (Ctrl-C, SIGTERM) before its system is ready stops
// cleanly: exit 0, not an error about members that did not become ready.
func TestRunnerInterruptedWhileStarting(t *testing.T) {
	systemInMemory(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the signal arrived before the members answered
	var out, errb bytes.Buffer
	code := Run(ctx, orders.Registry(), []string{"eventsourcing-grpc", "runner", "-in-process", "-demo=false", "orders.System"}, &out, &errb)
	assert.Equal(t, 0, code, "stderr: %s", errb.String())
	assert.Contains(t, out.String(), "Stopped while starting.")
	assert.NotContains(t, errb.String(), "did not become ready")
}

// The runner in this process runs the registered demonstration: an order
// is created, reserved and paid, and the hints call the program by the
// name it was run as.
func TestRunnerDemo(t *testing.T) {
	systemInMemory(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &syncBuffer{ch: make(chan struct{}, 1)}
	done := make(chan int)
	go func() {
		done <- Run(ctx, orders.Registry(), []string{"./bin/eventsourcing-grpc", "runner", "-in-process", "orders.System"}, out, os.Stderr)
	}()
	for !strings.Contains(out.String(), "Press Ctrl-C to stop.") {
		select {
		case code := <-done:
			t.Fatalf("the runner ended (%d): %s", code, out.String())
		case <-out.ch:
		}
	}
	cancel()
	assert.Equal(t, 0, <-done)
	assert.Contains(t, out.String(), "Running orders.System (in this process):")
	assert.Regexp(t, `paid after .* \(payment `, out.String())
	assert.Contains(t, out.String(), "OrdersSummary counts 1 paid order(s)")
	assert.Contains(t, out.String(), "./bin/eventsourcing-grpc call localhost:")
}

// syncBuffer is a buffer written by the runner and read by the test; ch
// says that something was written.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	ch  chan struct{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.ch <- struct{}{}:
	default:
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The ssl subcommand issues certificates for every member of the
// registered systems when given no host.
func TestSSLDefaultHosts(t *testing.T) {
	dir := t.TempDir()
	out, stderr, code := runCmd(t, "ssl", "-dir", dir)
	require.Equal(t, 0, code, stderr)
	for _, h := range []string{"orders", "orderssummary", "payments", "reservations"} {
		assert.FileExists(t, filepath.Join(dir, h, h+".crt"))
		assert.Contains(t, out, h)
	}
	_, stderr, code = runWith(t, grpcapp.NewRegistry(), "ssl", "-dir", t.TempDir(), "one")
	require.Equal(t, 0, code, stderr)
}

func TestHealthUsage(t *testing.T) {
	t.Setenv(grpcapp.EnvApplicationTop, "")
	_, stderr, code := runCmd(t, "health")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "usage: health")
	t.Setenv(grpcapp.EnvApplicationTop, "no.Such")
	_, stderr, code = runCmd(t, "health")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `no application or projection registered as "no.Such"`)
}

// health without ADDRESS finds the projection's address too.
func TestHealthOfProjectionTopic(t *testing.T) {
	_, addr := startServer(t)
	t.Setenv(grpcapp.EnvApplicationTop, "orders.OrdersSummary")
	t.Setenv("ORDERSSUMMARY_GRPC_SERVER_ADDRESS", addr)
	out, stderr, code := runCmd(t, "health")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "serving "+addr+"\n", out)
}

func TestLoopbackFor(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:50051":   "127.0.0.1:50051",
		"[::]:50051":      "127.0.0.1:50051",
		":50051":          "127.0.0.1:50051",
		"orders:50051":    "orders:50051",
		"localhost:50051": "localhost:50051",
		"10.0.0.7:50051":  "10.0.0.7:50051",
	} {
		assert.Equal(t, want, loopbackFor(in), in)
	}
}
