package main

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
