package main

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/grpcapp"
)

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

// -h on every subcommand prints its help and exits 0.
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
}

// An argument of the wrong type names the type the method wants and what
// it got.
func TestCallArgumentErrors(t *testing.T) {
	addr, err := grpcapp.FreeLocalhostAddress()
	require.NoError(t, err)
	startServer(t, addr)
	_, stderr, code := runCmd(t, "call", addr, "GetOrder", "42")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "InvalidArgument")
	assert.Contains(t, stderr, "GetOrder argument 1: want uuid.UUID, got number 42")
	_, stderr, code = runCmd(t, "call", addr, "GetOrder", "not-a-uuid")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `want uuid.UUID, got string "not-a-uuid"`)
}
