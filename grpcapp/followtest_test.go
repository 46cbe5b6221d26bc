package grpcapp_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/follow/followtest"
	"github.com/eventsourcing-go/eventsourcing/grpcapp"
)

// The subscription runtime over gRPC: a memory application served by a
// Server, followed through RemoteSource (pages of SelectNotifications, one
// SubscribeNotifications stream). Drop stops the server and serves the
// application again on the same address.
var followHarness = followtest.Harness{
	Name: "grpc",
	Open: func(tb testing.TB, opts eventsourcing.Options) followtest.Upstream {
		app := followtest.NewApplication(tb, opts, map[string]string{"PERSISTENCE_MODULE": "memory"})
		var mu sync.Mutex
		serve := func(addr string) *grpcapp.Server {
			s, err := grpcapp.NewServer(app, grpcapp.WithAddress(addr), grpcapp.WithServerLogger(discard()))
			require.NoError(tb, err)
			require.NoError(tb, s.Start(context.Background()))
			return s
		}
		s := serve("localhost:0")
		tb.Cleanup(func() { mu.Lock(); defer mu.Unlock(); _ = s.Stop(context.Background()) })
		addr := s.Addr()
		c, err := grpcapp.NewClient(addr, grpcapp.WithMaxAttempts(2), grpcapp.WithClientLogger(discard()))
		require.NoError(tb, err)
		tb.Cleanup(func() { _ = c.Close() })
		restart := func(tb testing.TB) {
			mu.Lock()
			defer mu.Unlock()
			require.NoError(tb, s.Stop(context.Background()))
			s = serve(addr)
		}
		return followtest.Upstream{App: app, Source: grpcapp.NewRemoteSource(c), Drop: restart,
			// As the gRPC runner and server configure their followers.
			Configure: func(c *follow.Config) { c.Retryable, c.PageSize = grpcapp.Retryable, grpcapp.DefaultMaxSelectLimit }}
	},
}

func TestFollow(t *testing.T) { followtest.Run(t, followHarness) }

func BenchmarkFollow(b *testing.B) { followtest.Bench(b, followHarness) }
