package grpcapp_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/example/orders"
	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/grpcapp"
	"github.com/eventsourcing-go/eventsourcing/recorder"
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

// Loopback addresses in every spelling are plaintext like localhost; an
// address that is not host:port is reported as invalid, not as insecure.
func TestLoopbackAndInvalidAddresses(t *testing.T) {
	for addr, want := range map[string]bool{
		"localhost:50051": true, "127.0.0.1:50051": true, "127.1.2.3:0": true, "[::1]:50051": true,
		"0.0.0.0:50051": false, "orders:50051": false, "[::]:50051": false, "localhost": false, "localhost:99999": false,
	} {
		assert.Equal(t, want, grpcapp.IsLocalhost(addr), addr)
	}
	for _, addr := range []string{"localhost:99999", "localhost", "orders:http", "127.0.0.1:-1", "a:b:c"} {
		_, err := grpcapp.NewServer(newOrders(t), grpcapp.WithAddress(addr))
		assert.ErrorIs(t, err, grpcapp.ErrInvalidAddress, addr)
		assert.NotErrorIs(t, err, grpcapp.ErrInsecureAddress, addr)
		_, err = grpcapp.NewClient(addr)
		assert.ErrorIs(t, err, grpcapp.ErrInvalidAddress, addr)
	}

	ctx := context.Background()
	hosts := []string{"127.0.0.1"}
	if l, err := net.Listen("tcp", "[::1]:0"); err == nil {
		l.Close()
		hosts = append(hosts, "[::1]")
	}
	for _, host := range hosts {
		s := startServer(t, newOrders(t), grpcapp.WithAddress(host+":0"))
		assert.True(t, strings.HasPrefix(s.Addr(), host+":"), s.Addr())
		c := connect(t, s.Addr())
		_, err := c.App().Call(ctx, "CreateNewOrder")
		require.NoError(t, err, host)
	}
}

// syncBuffer is a bytes.Buffer for a logger written from other goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A refused handshake says on the client that the handshake failed and
// why, and the server logs it.
func TestRefusedHandshakesAreExplained(t *testing.T) {
	ctx := context.Background()
	dir, other := t.TempDir(), t.TempDir()
	opts := grpcapp.CertificateOptions{RootBits: 2048, HostBits: 2048}
	require.NoError(t, grpcapp.GenerateCertificates(dir, []string{"orders", "client"}, opts))
	require.NoError(t, grpcapp.GenerateCertificates(other, []string{"client"}, opts))
	files := func(dir, host string) grpcapp.TLS {
		return grpcapp.TLS{
			KeyPath:             filepath.Join(dir, host, host+".key"),
			CertificatePath:     filepath.Join(dir, host, host+".crt"),
			RootCertificatePath: filepath.Join(dir, host, "root.crt"),
		}
	}
	// Each CA has a name of its own.
	assert.NotEqual(t, rootSubject(t, dir), rootSubject(t, other))

	var logs syncBuffer
	s := startServer(t, newOrders(t), grpcapp.WithAddress("127.0.0.1:0"), grpcapp.WithServerTLS(files(dir, "orders")),
		grpcapp.WithServerLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	addr := s.Addr()
	once := []grpcapp.ClientOption{grpcapp.WithMaxAttempts(1)}

	// A certificate of another CA, trusting the server's CA.
	foreign := files(other, "client")
	foreign.RootCertificatePath = filepath.Join(dir, "root", "root.crt")
	_, err := grpcapp.Connect(ctx, addr, append(once, grpcapp.WithTLS(foreign))...)
	require.ErrorIs(t, err, grpcapp.ErrUnavailable)
	t.Log(err)
	assert.Contains(t, err.Error(), "TLS handshake with "+addr+" failed")
	assert.Contains(t, err.Error(), "refused this client's certificate")

	// The server's certificate from another CA than the client trusts.
	distrust := files(dir, "client")
	distrust.RootCertificatePath = filepath.Join(other, "root", "root.crt")
	_, err = grpcapp.Connect(ctx, addr, append(once, grpcapp.WithTLS(distrust))...)
	require.ErrorIs(t, err, grpcapp.ErrUnavailable)
	t.Log(err)
	assert.Contains(t, err.Error(), "TLS handshake with "+addr+" failed")
	assert.Contains(t, err.Error(), "certificate signed by unknown authority")

	// Plaintext against TLS.
	_, err = grpcapp.Connect(ctx, addr, append(once, grpcapp.WithTLS(grpcapp.TLS{Insecure: true}))...)
	require.ErrorIs(t, err, grpcapp.ErrUnavailable)
	t.Log(err)
	assert.Contains(t, err.Error(), "may require TLS")

	// TLS against plaintext.
	plain := startServer(t, newOrders(t))
	_, err = grpcapp.Connect(ctx, plain.Addr(), append(once, grpcapp.WithTLS(files(dir, "client")))...)
	require.ErrorIs(t, err, grpcapp.ErrUnavailable)
	t.Log(err)
	assert.Contains(t, err.Error(), "answered in plaintext")

	// The server logged the refusals (handshakes end on the server's own
	// goroutines, so after the client has its answer).
	require.Eventually(t, func() bool {
		return strings.Count(logs.String(), "refused a TLS handshake") >= 2
	}, 10*time.Second, 10*time.Millisecond, logs.String())

	// And serves a client with the right certificate.
	c := connect(t, addr, grpcapp.WithTLS(files(dir, "client")))
	require.NoError(t, c.Ping(ctx))
}

func rootSubject(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "root", "root.crt"))
	require.NoError(t, err)
	block, _ := pem.Decode(data)
	require.NotNil(t, block)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return cert.Subject.CommonName
}

// A leader's outage does not flood the follower's log: one line per retry
// for the first five, then one in ten, over gRPC.
func TestLeaderOutageLogsSparsely(t *testing.T) {
	ctx := context.Background()
	leader := newOrders(t)
	s, err := grpcapp.NewServer(leader, grpcapp.WithAddress("localhost:0"), grpcapp.WithServerLogger(discard()))
	require.NoError(t, err)
	require.NoError(t, s.Start(ctx))
	_, err = leader.CreateNewOrder(ctx)
	require.NoError(t, err)
	c, err := grpcapp.NewClient(s.Addr(), grpcapp.WithTypes(orders.Types()), grpcapp.WithMaxAttempts(1), grpcapp.WithClientLogger(discard()))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })

	tracking, err := eventsourcing.NewApplication(ctx, eventsourcing.Options{Name: "Follower", Process: true, Lookup: eventsourcing.NoEnvironment})
	require.NoError(t, err)
	t.Cleanup(func() { tracking.Close() })
	tracker, _ := tracking.ProcessRecorder()
	var logs syncBuffer
	var handled atomic.Int32
	f, err := follow.New(follow.Config{
		Name: "Follower", Upstream: "Orders", Source: grpcapp.NewRemoteSource(c), Mapper: leader.Mapper(), Tracker: tracker,
		Handler: follow.HandlerFunc(func(context.Context, eventsourcing.Event, recorder.Tracking) (bool, error) {
			handled.Add(1)
			return false, nil
		}),
		Retryable: grpcapp.Retryable, BackoffMin: time.Millisecond, BackoffMax: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx) }()
	require.Eventually(t, func() bool { return handled.Load() == 1 }, 30*time.Second, 5*time.Millisecond)

	// The leader goes away; the follower retries every millisecond or so.
	require.NoError(t, s.Stop(ctx))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "attempt=60 ") }, 60*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)

	var attempts []int
	warns := 0
	for line := range strings.Lines(logs.String()) {
		warns++
		if _, rest, ok := strings.Cut(line, "attempt="); ok {
			n, err := strconv.Atoi(strings.Fields(rest)[0])
			require.NoError(t, err)
			attempts = append(attempts, n)
		}
	}
	require.GreaterOrEqual(t, len(attempts), 11)
	for i, n := range attempts {
		if i < 5 {
			assert.Equal(t, i+1, n)
		} else {
			assert.Equal(t, (i-4)*10, n, "after five, one line in ten")
		}
	}
	// Besides the retries, at most the line that says the subscription dropped.
	assert.LessOrEqual(t, warns, len(attempts)+1, logs.String())
}

// Health answers under the served application's name as well as for the
// whole server and the service, and the start is logged with the
// application's persistence module.
func TestHealthByNameAndStartLog(t *testing.T) {
	ctx := context.Background()
	var logs syncBuffer
	s := startServer(t, newOrders(t), grpcapp.WithServerLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	c := connect(t, s.Addr())
	for _, service := range []string{"", "eventsourcing_grpc.Application", "Orders"} {
		h, err := healthpb.NewHealthClient(c.Conn()).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		require.NoError(t, err, service)
		assert.Equal(t, healthpb.HealthCheckResponse_SERVING, h.GetStatus(), service)
	}
	_, err := healthpb.NewHealthClient(c.Conn()).Check(ctx, &healthpb.HealthCheckRequest{Service: "Payments"})
	assert.Equal(t, codes.NotFound, status.Code(err))
	assert.Contains(t, logs.String(), "grpc server started")
	assert.Contains(t, logs.String(), "persistence=memory")
}
