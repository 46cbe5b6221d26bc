package grpcapp_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/example/orders"
	"github.com/eventsourcing-go/eventsourcing/grpcapp"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/system"
)

// binary is the console command, built once for the subprocess tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "grpcapp-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "eventsourcing-grpc")
	out, err := exec.Command("go", "build", "-o", binary, "github.com/eventsourcing-go/eventsourcing/example/cmd/eventsourcing-grpc").CombinedOutput()
	if err != nil {
		binary = ""
		os.Stderr.WriteString("building the console command failed; subprocess tests will fail: " + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newOrders(t testing.TB) *orders.Orders {
	t.Helper()
	app, err := orders.NewOrders(context.Background(), map[string]string{"PERSISTENCE_MODULE": "memory"})
	require.NoError(t, err)
	t.Cleanup(func() { app.Close() })
	return app
}

func startServer(t testing.TB, app grpcapp.Application, opts ...grpcapp.ServerOption) *grpcapp.Server {
	t.Helper()
	s, err := grpcapp.NewServer(app, append([]grpcapp.ServerOption{grpcapp.WithAddress("localhost:0")}, opts...)...)
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(func() { s.Stop(context.Background()) })
	return s
}

func connect(t testing.TB, addr string, opts ...grpcapp.ClientOption) *grpcapp.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := grpcapp.Connect(ctx, addr, append([]grpcapp.ClientOption{grpcapp.WithTypes(orders.Types())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// The first seed flow: start a server, connect, create and get an order,
// select its one notification.
func TestServerAndClient(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, newOrders(t))
	c := connect(t, s.Addr())
	app := c.App()
	assert.Equal(t, "Orders", c.Name())
	d, err := c.Describe(ctx)
	require.NoError(t, err)
	queries := map[string]bool{}
	for _, m := range d.GetMethods() {
		queries[m.GetName()] = m.GetQuery()
	}
	assert.Equal(t, map[string]bool{"CreateNewOrder": false, "GetOrder": true, "IsOrderReserved": true, "IsOrderPaid": true}, queries,
		"the queries Orders declares, and its one command")

	id, err := grpcapp.Call[uuid.UUID](ctx, app, "CreateNewOrder")
	require.NoError(t, err)
	order, err := grpcapp.Call[orders.OrderView](ctx, app, "GetOrder", id)
	require.NoError(t, err)
	assert.Equal(t, id, order.ID)
	assert.False(t, order.IsReserved)
	assert.False(t, order.IsPaid)
	assert.Nil(t, order.ReservationID)
	assert.False(t, order.CreatedOn.IsZero())

	ns, err := c.Log().Select(ctx, recorder.NotificationQuery{After: recorder.After(1), Inclusive: true, Limit: 10})
	require.NoError(t, err)
	require.Len(t, ns, 1)
	assert.Equal(t, int64(1), ns[0].ID)
	assert.Equal(t, id.String(), ns[0].OriginatorID)
	assert.Equal(t, int64(0), ns[0].OriginatorVersion)
	assert.Equal(t, "eventsourcing_grpc.example:Order.Created", ns[0].Topic)
}

func TestSelectNotifications(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, newOrders(t))
	c := connect(t, s.Addr())
	for range 2 {
		_, err := c.App().Call(ctx, "CreateNewOrder")
		require.NoError(t, err)
	}
	sel := func(q recorder.NotificationQuery) []int64 {
		ns, err := c.Log().Select(ctx, q)
		require.NoError(t, err)
		ids := []int64{}
		for _, n := range ns {
			ids = append(ids, n.ID)
		}
		return ids
	}
	assert.Equal(t, []int64{1, 2}, sel(recorder.NotificationQuery{After: recorder.After(1), Inclusive: true, Limit: 10}))
	assert.Equal(t, []int64{1}, sel(recorder.NotificationQuery{After: recorder.After(1), Inclusive: true, Limit: 1}))
	assert.Equal(t, []int64{2}, sel(recorder.NotificationQuery{After: recorder.After(2), Inclusive: true, Limit: 10}))
	assert.Equal(t, []int64{}, sel(recorder.NotificationQuery{After: recorder.After(3), Inclusive: true, Limit: 10}))
	assert.Equal(t, []int64{2}, sel(recorder.NotificationQuery{After: recorder.After(1), Limit: 10}))
	assert.Equal(t, []int64{1}, sel(recorder.NotificationQuery{After: recorder.After(1), Inclusive: true, Stop: recorder.Bounded(1), Limit: 10}))
	assert.Equal(t, []int64{}, sel(recorder.NotificationQuery{After: recorder.After(1), Inclusive: true, Limit: 10, Topics: []string{"wrong"}}))
	assert.Equal(t, []int64{1, 2}, sel(recorder.NotificationQuery{After: recorder.After(1), Inclusive: true, Limit: 10, Topics: []string{"eventsourcing_grpc.example:Order.Created"}}))

	_, err := c.Log().Select(ctx, recorder.NotificationQuery{Limit: grpcapp.DefaultMaxSelectLimit + 1})
	assert.ErrorIs(t, err, eventsourcing.ErrArgument)
	var e *grpcapp.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, codes.InvalidArgument, e.Code)
}

// Malformed and unknown calls get clear codes, and the server keeps serving
// and loses nothing.
func TestBadCalls(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, newOrders(t), grpcapp.WithMaxRequestSize(64<<10))
	c := connect(t, s.Addr())
	app := c.App()
	id, err := grpcapp.Call[uuid.UUID](ctx, app, "CreateNewOrder")
	require.NoError(t, err)

	code := func(err error) codes.Code {
		var e *grpcapp.Error
		require.ErrorAs(t, err, &e)
		return e.Code
	}
	// The framework's and the runner's methods are never callable.
	for _, m := range []string{"NoSuchMethod", "Save", "SaveBatch", "Close", "Repository", "Recorder", "Policy", "Log", "OnSave", "createNewOrder"} {
		_, err := app.Call(ctx, m)
		assert.ErrorIs(t, err, grpcapp.ErrUnknownMethod, m)
		assert.Equal(t, codes.Unimplemented, code(err), m)
	}
	_, err = app.Call(ctx, "GetOrder", 42)
	assert.ErrorIs(t, err, eventsourcing.ErrArgument)
	assert.Equal(t, codes.InvalidArgument, code(err))
	_, err = app.Call(ctx, "GetOrder")
	assert.ErrorIs(t, err, eventsourcing.ErrArgument)
	assert.Contains(t, err.Error(), "takes 1 argument")
	_, err = app.Call(ctx, "GetOrder", id, id)
	assert.ErrorIs(t, err, eventsourcing.ErrArgument)

	_, err = app.Call(ctx, "GetOrder", uuid.New())
	assert.ErrorIs(t, err, eventsourcing.ErrAggregateNotFound)
	assert.Equal(t, codes.NotFound, code(err))

	_, err = app.Call(ctx, "GetOrder", strings.Repeat("x", 100<<10))
	assert.ErrorIs(t, err, eventsourcing.ErrArgument)
	assert.Equal(t, codes.ResourceExhausted, code(err))

	// Still serving; a UUID as a plain string works too.
	order, err := grpcapp.Call[orders.OrderView](ctx, app, "GetOrder", id.String())
	require.NoError(t, err)
	assert.Equal(t, id, order.ID)
	ns, err := c.Log().Select(ctx, recorder.NotificationQuery{Limit: 10})
	require.NoError(t, err)
	assert.Len(t, ns, 1)
}

// slowApp counts its methods' runs, to show the client never re-sends a
// command, and retries only the queries the application declares.
type slowApp struct {
	*eventsourcing.Application
	runs     atomic.Int32
	queries  atomic.Int32
	declared []string
}

func (a *slowApp) QueryMethods() []string { return a.declared }

func (a *slowApp) Slow(ctx context.Context, d string) error {
	a.runs.Add(1)
	dur, _ := time.ParseDuration(d)
	time.Sleep(dur)
	return nil
}

func (a *slowApp) GetSlow(ctx context.Context, d string) (int, error) {
	n := a.queries.Add(1)
	dur, _ := time.ParseDuration(d)
	time.Sleep(dur)
	return int(n), nil
}

func (a *slowApp) Conflict(ctx context.Context) error {
	return eventsourcing.ErrIntegrity
}

func (a *slowApp) Panics(ctx context.Context) error { panic("boom") }

func newSlowApp(t *testing.T, declared ...string) *slowApp {
	t.Helper()
	base, err := eventsourcing.NewApplication(context.Background(), eventsourcing.Options{Name: "Slow", Lookup: eventsourcing.NoEnvironment})
	require.NoError(t, err)
	return &slowApp{Application: base, declared: declared}
}

func TestCommandsAreNotResent(t *testing.T) {
	ctx := context.Background()
	app := newSlowApp(t, "GetSlow")
	s := startServer(t, app)
	c := connect(t, s.Addr(), grpcapp.WithCallTimeout(100*time.Millisecond), grpcapp.WithMaxAttempts(3), grpcapp.WithBackoff(time.Millisecond, time.Millisecond))

	_, err := c.App().Call(ctx, "Slow", "300ms")
	assert.ErrorIs(t, err, grpcapp.ErrDeadlineExceeded)
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, int32(1), app.runs.Load(), "a command that may have run is not sent again")

	// A declared query is retried on a missed deadline, up to the attempts.
	_, err = c.App().Call(ctx, "GetSlow", "200ms")
	assert.ErrorIs(t, err, grpcapp.ErrDeadlineExceeded)
	assert.Equal(t, int32(3), app.queries.Load())

	_, err = c.App().Call(ctx, "Conflict")
	assert.ErrorIs(t, err, eventsourcing.ErrIntegrity)
	_, err = c.App().Call(ctx, "Panics")
	var e *grpcapp.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, codes.Internal, e.Code)
	require.NoError(t, c.Ping(ctx), "a panicking method does not take the server down")
}

// Only declared queries are retried: a method's name has no say.
func TestOnlyDeclaredQueriesAreRetried(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		declared []string
		opts     []grpcapp.ServerOption
		runs     int32
	}{
		{name: "undeclared GetSlow is a command", runs: 1},
		{name: "declared by the application", declared: []string{"GetSlow"}, runs: 3},
		{name: "declared by WithQueries", opts: []grpcapp.ServerOption{grpcapp.WithQueries("GetSlow")}, runs: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := newSlowApp(t, tc.declared...)
			s := startServer(t, app, tc.opts...)
			c := connect(t, s.Addr(), grpcapp.WithCallTimeout(100*time.Millisecond), grpcapp.WithMaxAttempts(3), grpcapp.WithBackoff(time.Millisecond, time.Millisecond))
			_, err := c.App().Call(ctx, "GetSlow", "200ms")
			assert.ErrorIs(t, err, grpcapp.ErrDeadlineExceeded)
			time.Sleep(200 * time.Millisecond)
			assert.Equal(t, tc.runs, app.queries.Load())
		})
	}
}

// A type that embeds an application serves none of its methods, and does
// not inherit its declaration of queries either.
func TestEmbeddedDeclarationIsNotInherited(t *testing.T) {
	type wrapped struct{ *slowApp }
	s := startServer(t, wrapped{newSlowApp(t, "GetSlow")})
	d, err := connect(t, s.Addr()).Describe(context.Background())
	require.NoError(t, err)
	assert.Empty(t, d.GetMethods())
}

// Declaring a query the application has no callable method for is a
// mistake NewServer names.
func TestUnknownDeclaredQuery(t *testing.T) {
	for _, tc := range []struct {
		name     string
		declared []string
		opts     []grpcapp.ServerOption
		want     string
	}{
		{name: "by the application", declared: []string{"GetSlow", "GetMissing"}, want: `"GetMissing"`},
		{name: "by WithQueries", opts: []grpcapp.ServerOption{grpcapp.WithQueries("Lookup")}, want: `"Lookup"`},
		{name: "a method without a context", declared: []string{"QueryMethods"}, want: `"QueryMethods"`},
		{name: "a framework method", declared: []string{"Save"}, want: `"Save"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := newSlowApp(t, tc.declared...)
			_, err := grpcapp.NewServer(app, append([]grpcapp.ServerOption{grpcapp.WithAddress("localhost:0")}, tc.opts...)...)
			require.ErrorIs(t, err, eventsourcing.ErrArgument)
			assert.ErrorContains(t, err, tc.want)
			assert.ErrorContains(t, err, "query")
		})
	}
}

func TestUnreachableServer(t *testing.T) {
	lis, err := grpcapp.FreeLocalhostAddress()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	_, err = grpcapp.Connect(ctx, lis, grpcapp.WithMaxAttempts(3), grpcapp.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
	assert.ErrorIs(t, err, grpcapp.ErrUnavailable)
	assert.Contains(t, err.Error(), lis)
	assert.Less(t, time.Since(began), 5*time.Second)
}

// A client survives its server's restart: the same client reaches the new
// server at the same address.
func TestReconnect(t *testing.T) {
	ctx := context.Background()
	app := newOrders(t)
	s1, err := grpcapp.NewServer(app, grpcapp.WithAddress("localhost:0"))
	require.NoError(t, err)
	require.NoError(t, s1.Start(ctx))
	addr := s1.Addr()
	c := connect(t, addr, grpcapp.WithBackoff(10*time.Millisecond, 100*time.Millisecond), grpcapp.WithMaxAttempts(2))
	require.NoError(t, c.Ping(ctx))
	_, err = c.App().Call(ctx, "CreateNewOrder")
	require.NoError(t, err)

	require.NoError(t, s1.Stop(ctx))
	require.NoError(t, s1.Stop(ctx), "stop is idempotent")
	assert.ErrorIs(t, s1.Start(ctx), grpcapp.ErrServerStarted)
	assert.ErrorIs(t, c.Ping(ctx), grpcapp.ErrUnavailable)

	s2, err := grpcapp.NewServer(app, grpcapp.WithAddress(addr))
	require.NoError(t, err)
	require.NoError(t, s2.Start(ctx))
	defer s2.Stop(ctx)
	require.Eventually(t, func() bool { return c.Ping(ctx) == nil }, 10*time.Second, 20*time.Millisecond)
	_, err = c.App().Call(ctx, "CreateNewOrder")
	require.NoError(t, err)
	ns, err := c.Log().Select(ctx, recorder.NotificationQuery{Limit: 10})
	require.NoError(t, err)
	assert.Len(t, ns, 2)

	require.NoError(t, c.Close())
	assert.ErrorIs(t, c.Ping(ctx), grpcapp.ErrClientClosed)
}

func TestHealthAndReflection(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, newOrders(t))
	c := connect(t, s.Addr())
	h, err := healthpb.NewHealthClient(c.Conn()).Check(ctx, &healthpb.HealthCheckRequest{Service: "eventsourcing_grpc.Application"})
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, h.GetStatus())

	stream, err := reflectionpb.NewServerReflectionClient(c.Conn()).ServerReflectionInfo(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}))
	resp, err := stream.Recv()
	require.NoError(t, err)
	var names []string
	for _, svc := range resp.GetListServicesResponse().GetService() {
		names = append(names, svc.GetName())
	}
	assert.Contains(t, names, "eventsourcing_grpc.Application")
	assert.Contains(t, names, "grpc.health.v1.Health")
}

func TestMutualTLS(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	require.NoError(t, grpcapp.GenerateCertificates(dir, []string{"orders", "client"}, grpcapp.CertificateOptions{RootBits: 2048, HostBits: 2048}))
	files := func(host string) grpcapp.TLS {
		return grpcapp.TLS{
			KeyPath:             filepath.Join(dir, host, host+".key"),
			CertificatePath:     filepath.Join(dir, host, host+".crt"),
			RootCertificatePath: filepath.Join(dir, host, "root.crt"),
		}
	}
	// Plaintext is refused on anything but loopback addresses.
	_, err := grpcapp.NewServer(newOrders(t), grpcapp.WithAddress("0.0.0.0:0"))
	assert.ErrorIs(t, err, grpcapp.ErrInsecureAddress)
	_, err = grpcapp.NewClient("192.0.2.1:1")
	assert.ErrorIs(t, err, grpcapp.ErrInsecureAddress)

	s := startServer(t, newOrders(t), grpcapp.WithAddress("127.0.0.1:0"), grpcapp.WithServerTLS(files("orders")))
	addr := s.Addr()
	c := connect(t, addr, grpcapp.WithTLS(files("client")))
	_, err = c.App().Call(ctx, "CreateNewOrder")
	require.NoError(t, err)
	// The same server by a host name that resolves to loopback.
	_, port, _ := strings.Cut(addr, ":")
	c2 := connect(t, "localhost:"+port, grpcapp.WithTLS(files("client")))
	require.NoError(t, c2.Ping(ctx))

	// No client certificate: refused.
	noCert := files("client")
	noCert.CertificatePath = filepath.Join(dir, "orders", "root.crt")
	_, err = grpcapp.Connect(ctx, addr, grpcapp.WithTLS(noCert), grpcapp.WithMaxAttempts(1))
	assert.Error(t, err)
	// Plaintext to a TLS server: refused.
	_, err = grpcapp.Connect(ctx, addr, grpcapp.WithTLS(grpcapp.TLS{Insecure: true}), grpcapp.WithMaxAttempts(1))
	assert.Error(t, err)
	// A certificate from another CA: refused.
	other := t.TempDir()
	require.NoError(t, grpcapp.GenerateCertificates(other, []string{"client"}, grpcapp.CertificateOptions{RootBits: 2048, HostBits: 2048}))
	foreign := grpcapp.TLS{
		KeyPath: filepath.Join(other, "client", "client.key"), CertificatePath: filepath.Join(other, "client", "client.crt"),
		RootCertificatePath: filepath.Join(dir, "client", "root.crt"),
	}
	_, err = grpcapp.Connect(ctx, addr, grpcapp.WithTLS(foreign), grpcapp.WithMaxAttempts(1))
	assert.Error(t, err)
}

func TestSubscribe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := startServer(t, newOrders(t))
	c := connect(t, s.Addr())
	for range 3 {
		_, err := c.App().Call(ctx, "CreateNewOrder")
		require.NoError(t, err)
	}
	sub, err := c.Log().Subscribe(ctx, recorder.After(1), nil)
	require.NoError(t, err)
	defer sub.Close()
	for want := int64(2); want <= 4; want++ {
		if want == 4 {
			_, err := c.App().Call(ctx, "CreateNewOrder")
			require.NoError(t, err)
		}
		n, err := sub.Next(ctx)
		require.NoError(t, err)
		assert.Equal(t, want, n.ID)
	}
	require.NoError(t, sub.Close())
	_, err = sub.Next(ctx)
	assert.ErrorIs(t, err, recorder.ErrSubscriptionClosed)
}

func waitPaid(t *testing.T, ctx context.Context, app *grpcapp.AppProxy, id uuid.UUID, errored <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		paid, err := grpcapp.Call[bool](ctx, app, "IsOrderPaid", id)
		require.NoError(t, err)
		if paid {
			return
		}
		select {
		case <-errored:
			t.Fatal("runner errored")
		default:
		}
		require.True(t, time.Now().Before(deadline), "order not paid within 10 s")
		time.Sleep(5 * time.Millisecond)
	}
}

func checkPaidLog(t *testing.T, ctx context.Context, c *grpcapp.Client, id uuid.UUID) {
	t.Helper()
	ns, err := c.Log().Select(ctx, recorder.NotificationQuery{After: recorder.After(1), Inclusive: true, Limit: 10})
	require.NoError(t, err)
	require.Len(t, ns, 3)
	for i, topic := range []string{"Order.Created", "Order.Reserved", "Order.Paid"} {
		assert.Equal(t, int64(i+1), ns[i].ID)
		assert.Equal(t, id.String(), ns[i].OriginatorID)
		assert.Equal(t, int64(i), ns[i].OriginatorVersion)
		assert.Equal(t, "eventsourcing_grpc.example:"+topic, ns[i].Topic)
	}
}

// The second seed flow, in process: run the system, see the order paid,
// select its three notifications.
func TestRunnerInProcess(t *testing.T) {
	ctx := context.Background()
	r := grpcapp.NewRunner(orders.System(), map[string]string{"MAX_PULL_INTERVAL": "1"})
	require.NoError(t, r.Start(ctx))
	defer func() { require.NoError(t, r.Stop()) }()
	assert.ErrorIs(t, r.Start(ctx), system.ErrRunnerAlreadyStarted)

	app, err := grpcapp.GetProxy[*orders.Orders](r)
	require.NoError(t, err)
	id, err := grpcapp.Call[uuid.UUID](ctx, app, "CreateNewOrder")
	require.NoError(t, err)
	waitPaid(t, ctx, app, id, r.Errored())
	c, err := r.Client("Orders")
	require.NoError(t, err)
	checkPaidLog(t, ctx, c, id)

	// In process, the runner also hands out the applications themselves.
	pay, err := system.Get[*orders.Payments](r)
	require.NoError(t, err)
	pr, _ := pay.ProcessRecorder()
	require.NoError(t, pr.Wait(ctx, "Orders", 2, 5*time.Second))
	require.NoError(t, r.Err())
}

// The second seed flow with subprocesses of the console command, named
// by their members' names (no registry given).
func TestRunnerSubprocesses(t *testing.T) {
	require.NotEmpty(t, binary)
	ctx := context.Background()
	r := grpcapp.NewRunner(orders.System(), nil, grpcapp.WithSubprocesses(binary), grpcapp.WithSystemTopic("orders.System"))
	began := time.Now()
	require.NoError(t, r.Start(ctx))
	stopped := false
	defer func() {
		if !stopped {
			r.Stop()
		}
	}()
	app, err := r.Get("Orders")
	require.NoError(t, err)
	id, err := grpcapp.Call[uuid.UUID](ctx, app, "CreateNewOrder")
	require.NoError(t, err)
	waitPaid(t, ctx, app, id, r.Errored())
	t.Logf("started and paid in %v", time.Since(began))
	c, err := r.Client("Orders")
	require.NoError(t, err)
	checkPaidLog(t, ctx, c, id)
	_, err = r.App("Orders")
	assert.ErrorIs(t, err, system.ErrAppNotFound)
	stopped = true
	require.NoError(t, r.Stop())
	require.NoError(t, r.Stop())
}

// A configured address is kept; a subprocess that dies is an error. The
// subprocesses are named by their registered topics.
func TestRunnerSubprocessDies(t *testing.T) {
	require.NotEmpty(t, binary)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addr, err := grpcapp.FreeLocalhostAddress()
	require.NoError(t, err)
	r := grpcapp.NewRunner(orders.System(), map[string]string{"PAYMENTS_GRPC_SERVER_ADDRESS": addr},
		grpcapp.WithSubprocesses(binary), grpcapp.WithSystemTopic("orders.System"), grpcapp.WithRegistry(orders.Registry()))
	require.NoError(t, r.Start(ctx))
	defer r.Stop()
	assert.Equal(t, addr, r.Addresses()["Payments"])
	out, err := exec.Command("pgrep", "-f", "server orders.Payments").Output()
	require.NoError(t, err)
	for _, pid := range strings.Fields(string(out)) {
		_ = exec.Command("kill", "-9", pid).Run()
	}
	select {
	case <-r.Errored():
	case <-ctx.Done():
		t.Fatal("the runner did not notice its subprocess died")
	}
	assert.Contains(t, r.Err().Error(), "Payments")
	assert.Error(t, r.Stop())
}

// A linear pipeline (the reference's wiring broke those): Reservations
// follows Orders, and nothing follows Reservations.
func TestPipeline(t *testing.T) {
	ctx := context.Background()
	sys, err := system.New(system.Pipe(orders.OrdersApp(), orders.ReservationsApp()))
	require.NoError(t, err)
	r := grpcapp.NewRunner(sys, nil)
	require.NoError(t, r.Start(ctx))
	defer r.Stop()
	app, err := r.Get("Orders")
	require.NoError(t, err)
	for range 5 {
		_, err := app.Call(ctx, "CreateNewOrder")
		require.NoError(t, err)
	}
	res, err := system.Get[*orders.Reservations](r)
	require.NoError(t, err)
	pr, _ := res.ProcessRecorder()
	require.NoError(t, pr.Wait(ctx, "Orders", 5, 10*time.Second))
	ns, err := res.Recorder().SelectNotifications(ctx, recorder.NotificationQuery{Limit: 100})
	require.NoError(t, err)
	assert.Len(t, ns, 5)
}

// The same system under the system package's single-threaded runner pays
// synchronously.
func TestSingleThreadedRunner(t *testing.T) {
	ctx := context.Background()
	r := system.NewSingleThreadedRunner(orders.System(), nil)
	require.NoError(t, r.Start(ctx))
	defer r.Stop()
	app := system.MustGet[*orders.Orders](r)
	id, err := app.CreateNewOrder(ctx)
	require.NoError(t, err)
	paid, err := app.IsOrderPaid(ctx, id)
	require.NoError(t, err)
	assert.True(t, paid)
	ns, err := app.Recorder().SelectNotifications(ctx, recorder.NotificationQuery{Limit: 10})
	require.NoError(t, err)
	assert.Len(t, ns, 3)
}
