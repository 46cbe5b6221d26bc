package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/example/orders"
	"github.com/eventsourcing-go/eventsourcing/grpcapp"
	"github.com/eventsourcing-go/eventsourcing/grpcapp/cli"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

var binary string

func TestMain(m *testing.M) {
	dir, _ := os.MkdirTemp("", "esgrpc")
	binary = filepath.Join(dir, "eventsourcing-grpc")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		os.Stderr.WriteString(string(out))
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func runCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), orders.Registry(), append([]string{"eventsourcing-grpc"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

// startServer starts `server orders.Orders` as a subprocess at addr.
func startServer(t *testing.T, addr string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary, "server", "orders.Orders")
	cmd.Env = append(os.Environ(), append([]string{"ORDERS_GRPC_SERVER_ADDRESS=" + addr}, env...)...)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := grpcapp.Connect(ctx, addr, grpcapp.WithBackoff(10*time.Millisecond, 100*time.Millisecond), grpcapp.WithMaxAttempts(100))
	require.NoError(t, err)
	c.Close()
	return cmd
}

func TestServerCallNotifications(t *testing.T) {
	addr, err := grpcapp.FreeLocalhostAddress()
	require.NoError(t, err)
	began := time.Now()
	cmd := startServer(t, addr)
	t.Logf("server answered after %v", time.Since(began))

	out, stderr, code := runCmd(t, "call", addr, "CreateNewOrder")
	require.Equal(t, 0, code, stderr)
	var id string
	require.NoError(t, json.Unmarshal([]byte(out), &id))
	assert.Regexp(t, `^[0-9a-f-]{36}$`, id)

	out, stderr, code = runCmd(t, "call", addr, "GetOrder", id)
	require.Equal(t, 0, code, stderr)
	var order map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &order))
	assert.Equal(t, id, order["id"])
	assert.Equal(t, false, order["is_paid"])

	out, stderr, code = runCmd(t, "notifications", addr, "--start", "1", "--limit", "10")
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 1)
	var n map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &n))
	assert.Equal(t, map[string]any{"id": 1.0, "originator_id": id, "originator_version": 0.0, "topic": "eventsourcing_grpc.example:Order.Created"}, n)
	out, _, code = runCmd(t, "notifications", addr, "--topic", "wrong")
	assert.Equal(t, 0, code)
	assert.Empty(t, out)

	_, stderr, code = runCmd(t, "call", addr, "Close")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "Unimplemented")
	_, stderr, code = runCmd(t, "call", addr, "GetOrder", "not-a-uuid")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "InvalidArgument")

	// SIGTERM stops gracefully: exit status 0.
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait())
}

// A follower process killed mid-stream (SIGKILL) and restarted resumes from
// its tracking records: Reservations ends with exactly one reservation per
// order, on SQLite.
func TestFollowerKilledAndRestarted(t *testing.T) {
	ctx := context.Background()
	ordersApp, err := orders.NewOrders(ctx, map[string]string{"PERSISTENCE_MODULE": "memory"})
	require.NoError(t, err)
	defer ordersApp.Close()
	s, err := grpcapp.NewServer(ordersApp, grpcapp.WithAddress("localhost:0"))
	require.NoError(t, err)
	require.NoError(t, s.Start(ctx))
	defer s.Stop(ctx)
	resAddr, err := grpcapp.FreeLocalhostAddress()
	require.NoError(t, err)
	db := filepath.Join(t.TempDir(), "reservations.db")
	env := append(os.Environ(),
		"APPLICATION_TOPIC=orders.Reservations", "SYSTEM_TOPIC=orders.System",
		"ORDERS_GRPC_SERVER_ADDRESS="+s.Addr(), "RESERVATIONS_GRPC_SERVER_ADDRESS="+resAddr,
		"PAYMENTS_GRPC_SERVER_ADDRESS=localhost:1", "MAX_PULL_INTERVAL=0.2",
		"RESERVATIONS_PERSISTENCE_MODULE=sqlite", "RESERVATIONS_SQLITE_DBNAME="+db)
	start := func() *exec.Cmd {
		cmd := exec.Command(binary, "server")
		cmd.Env = env
		require.NoError(t, cmd.Start())
		return cmd
	}
	const total = 300
	create := func(n int) {
		for range n {
			_, err := ordersApp.CreateNewOrder(ctx)
			require.NoError(t, err)
		}
	}
	follower := start()
	create(total / 2)
	time.Sleep(50 * time.Millisecond) // let it process part of the stream
	require.NoError(t, follower.Process.Kill())
	_ = follower.Wait()
	create(total / 2)
	follower = start()
	defer func() { _ = follower.Process.Signal(syscall.SIGTERM); _ = follower.Wait() }()

	c, err := grpcapp.Connect(ctx, resAddr, grpcapp.WithMaxAttempts(100), grpcapp.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	require.NoError(t, err)
	defer c.Close()
	var ns []recorder.Notification
	require.Eventually(t, func() bool {
		ns, err = c.Log().Select(ctx, recorder.NotificationQuery{Limit: 1000})
		return err == nil && len(ns) >= total
	}, 20*time.Second, 20*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // a duplicate would show up by now
	ns, err = c.Log().Select(ctx, recorder.NotificationQuery{Limit: 1000})
	require.NoError(t, err)
	assert.Len(t, ns, total, "exactly one reservation per order")
	seen := map[string]bool{}
	for _, n := range ns {
		assert.False(t, seen[n.OriginatorID], "duplicate reservation")
		seen[n.OriginatorID] = true
	}
}

// The multi-stage Dockerfile cannot build without a registry, so it is
// checked by reading it (docker-compose.yml and deploy/k8s/ are compared in
// deploy_test.go).
func TestDockerfile(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	assert.Contains(t, string(dockerfile), "CGO_ENABLED=0")
	assert.Contains(t, string(dockerfile), "USER 65532:65532", "a numeric user, so that Kubernetes runAsNonRoot can check it")
	assert.Contains(t, string(dockerfile), "./example/cmd/eventsourcing-grpc")
}
