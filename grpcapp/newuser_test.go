package grpcapp_test

import (
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/grpcapp"
)

// A server whose address is taken, or is no address at all, fails to start
// with the listen error, and stopping it afterwards is safe.
func TestStartFailsToListen(t *testing.T) {
	taken, err := net.Listen("tcp", "localhost:0")
	require.NoError(t, err)
	defer taken.Close()
	_, port, err := net.SplitHostPort(taken.Addr().String())
	require.NoError(t, err)

	for _, tt := range []struct{ addr, want string }{
		{"localhost:" + port, "address already in use"},
		{"localhost:99999", "invalid port"},
	} {
		t.Run(tt.addr, func(t *testing.T) {
			s, err := grpcapp.NewServer(newOrders(t), grpcapp.WithAddress(tt.addr))
			require.NoError(t, err)
			err = s.Start(context.Background())
			require.Error(t, err)
			assert.Contains(t, err.Error(), "listen "+tt.addr)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotPanics(t, func() { assert.NoError(t, s.Stop(context.Background())) })
			assert.NotPanics(t, func() { assert.NoError(t, s.Stop(context.Background())) }, "Stop stays idempotent")
			assert.ErrorIs(t, s.Start(context.Background()), grpcapp.ErrServerStarted)
		})
	}
}
