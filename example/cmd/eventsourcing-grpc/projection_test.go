package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/grpcapp"
)

// member starts `server TOPIC` of orders.System as a subprocess with env.
func member(t *testing.T, topic string, env []string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary, "server", topic)
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, "SYSTEM_TOPIC=orders.System")
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func connectTo(t *testing.T, addr string) *grpcapp.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := grpcapp.Connect(ctx, addr, grpcapp.WithBackoff(10*time.Millisecond, 100*time.Millisecond), grpcapp.WithMaxAttempts(200))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// The OrdersSummary projection's server is killed (SIGKILL) while it
// catches up with Orders, and started again: its counts are exact, because
// each count is recorded with its tracking record. Then its status names
// its upstream, a rebuild counts everything again, and a rebuild of a
// process application is refused.
func TestProjectionServerKilledCountsExactlyOnce(t *testing.T) {
	dir := t.TempDir()
	addrs := map[string]string{}
	for _, n := range []string{"ORDERS", "RESERVATIONS", "PAYMENTS", "ORDERSSUMMARY"} {
		a, err := grpcapp.FreeLocalhostAddress()
		require.NoError(t, err)
		addrs[n] = a
	}
	env := []string{
		"PERSISTENCE_MODULE=sqlite",
		"ORDERS_SQLITE_DBNAME=" + filepath.Join(dir, "orders.db"),
		"ORDERSSUMMARY_SQLITE_DBNAME=" + filepath.Join(dir, "summary.db"),
	}
	for n, a := range addrs {
		env = append(env, n+"_GRPC_SERVER_ADDRESS="+a)
	}
	// Orders alone: its followers back off until Reservations and
	// Payments come, which they do not here.
	member(t, "orders.Orders", env)
	orders := connectTo(t, addrs["ORDERS"])
	ctx := t.Context()
	const n = 1500
	for range n {
		_, err := grpcapp.Call[uuid.UUID](ctx, orders.App(), "CreateNewOrder")
		require.NoError(t, err)
	}
	st, err := orders.Status(ctx)
	require.NoError(t, err)
	require.True(t, st.HasHead)
	head := st.Head

	summary := member(t, "orders.OrdersSummary", env)
	c := connectTo(t, addrs["ORDERSSUMMARY"])
	// Kill it as soon as it has made progress (or at once, if it is fast).
	for range 200 {
		s, err := c.Status(ctx)
		if err == nil && len(s.Upstreams) == 1 && s.Upstreams[0].HasPosition {
			t.Logf("killed at position %d of %d", s.Upstreams[0].Position, head)
			break
		}
		time.Sleep(time.Millisecond)
	}
	require.NoError(t, summary.Process.Signal(syscall.SIGKILL))
	_ = summary.Wait()
	_ = c.Close()

	member(t, "orders.OrdersSummary", env)
	c = connectTo(t, addrs["ORDERSSUMMARY"])
	require.NoError(t, c.Wait(ctx, "Orders", head, 30*time.Second))
	created, err := grpcapp.Call[int](ctx, c.App(), "CountCreated")
	require.NoError(t, err)
	assert.Equal(t, n, created, "every order counted exactly once")
	d, err := c.Describe(ctx)
	require.NoError(t, err)
	for _, m := range d.GetMethods() {
		assert.True(t, m.GetQuery(), "the view declares %s a query", m.GetName())
	}

	out, stderr, code := runCmd(t, "status", addrs["ORDERSSUMMARY"])
	require.Equal(t, 0, code, stderr)
	for _, word := range []string{"projection OrdersSummary", "upstream Orders", "state", `"live"`, "position", "head", "lag"} {
		assert.Contains(t, out, word)
	}

	out, stderr, code = runCmd(t, "rebuild", addrs["ORDERSSUMMARY"])
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "view emptied")
	require.NoError(t, c.Wait(ctx, "Orders", head, 30*time.Second))
	created, err = grpcapp.Call[int](ctx, c.App(), "CountCreated")
	require.NoError(t, err)
	assert.Equal(t, n, created, "a rebuild counts everything again, once")

	_, stderr, code = runCmd(t, "rebuild", addrs["ORDERS"])
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "only a projection can be rebuilt")
}
