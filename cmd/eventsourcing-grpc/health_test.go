package main

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/grpcapp"
)

// health exits 0 while the server serves, by the address given or by the
// one the environment gives the application, and 1 once it has stopped.
func TestHealth(t *testing.T) {
	addr, err := grpcapp.FreeLocalhostAddress()
	require.NoError(t, err)
	cmd := startServer(t, addr)

	out, stderr, code := runCmd(t, "health", addr)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "serving "+addr+"\n", out)

	t.Setenv(grpcapp.EnvApplicationTop, "orders.Orders")
	t.Setenv("ORDERS_GRPC_SERVER_ADDRESS", addr)
	_, stderr, code = runCmd(t, "health", "-timeout", "2s")
	require.Equal(t, 0, code, stderr)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	_ = cmd.Wait()
	_, stderr, code = runCmd(t, "health", addr)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, addr)
}

func TestHealthUsage(t *testing.T) {
	t.Setenv(grpcapp.EnvApplicationTop, "")
	_, stderr, code := runCmd(t, "health")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "usage: health")
}
