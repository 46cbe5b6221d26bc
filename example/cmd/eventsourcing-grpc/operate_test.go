package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/example/orders"
	"github.com/eventsourcing-go/eventsourcing/grpcapp"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// freeAddr returns 127.0.0.1:<a port that was free a moment ago>.
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer lis.Close()
	return lis.Addr().String()
}

// fetch GETs url and returns the status and body (0 when nothing answers).
func fetch(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor waits until url answers want, and returns the body.
func waitFor(t *testing.T, url string, want int) string {
	t.Helper()
	var code int
	var body string
	ok := assert.Eventually(t, func() bool {
		code, body = fetch(url)
		return code == want
	}, 30*time.Second, 50*time.Millisecond)
	require.True(t, ok, "%s answered %d %s", url, code, body)
	return body
}

// startCmd starts the binary with args and env (after the process's own).
func startCmd(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// lagSeries matches a lag series of /metrics: follower, upstream, value.
var lagSeries = regexp.MustCompile(`(?m)^eventsourcing_subscription_lag\{([^}]*)\} (\d+)$`)

// lags returns the lag of each follower/upstream pair in a /metrics body.
func lags(body string) map[string]string {
	out := map[string]string{}
	for _, m := range lagSeries.FindAllStringSubmatch(body, -1) {
		labels := m[1]
		f := regexp.MustCompile(`follower="([^"]*)"`).FindStringSubmatch(labels)
		u := regexp.MustCompile(`upstream="([^"]*)"`).FindStringSubmatch(labels)
		if f != nil && u != nil {
			out[f[1]+"<"+u[1]] = m[2]
		}
	}
	return out
}

// The runner of orders.System (one subprocess per member) serves the
// operations endpoints of the whole system on METRICS_ADDRESS: /metrics
// shows the lag of every follower and projection, /healthz and /readyz
// answer 200; SIGTERM stops it. Traces go to a collector that is not
// there, as in the documentation's example: nothing fails.
func TestRunnerOperations(t *testing.T) {
	t.Run("subprocesses", func(t *testing.T) { testRunnerOperations(t, false) })
	t.Run("in process", func(t *testing.T) { testRunnerOperations(t, true) })
}

func testRunnerOperations(t *testing.T, inProcess bool) {
	ops := freeAddr(t)
	env := []string{"METRICS_ADDRESS=" + ops, "PERSISTENCE_MODULE=memory", "OTEL_EXPORTER_OTLP_ENDPOINT=http://" + freeAddr(t)}
	for _, n := range []string{"ORDERS", "RESERVATIONS", "PAYMENTS", "ORDERSSUMMARY"} {
		a, err := grpcapp.FreeLocalhostAddress()
		require.NoError(t, err)
		env = append(env, n+"_GRPC_SERVER_ADDRESS="+a)
	}
	cmd := startCmd(t, env, "runner", fmt.Sprintf("-in-process=%t", inProcess), "orders.System")
	url := "http://" + ops
	waitFor(t, url+"/readyz", http.StatusOK)
	code, body := fetch(url + "/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)

	// In process, the members' own metrics are the runner's: Payments'
	// event is counted once the order reached it.
	paid := regexp.MustCompile(`(?m)^eventsourcing_events_recorded_total\{application="Payments",.*\} 1$`)
	var got map[string]string
	require.Eventually(t, func() bool {
		_, body = fetch(url + "/metrics")
		got = lags(body)
		return len(got) == 5 && (!inProcess || paid.MatchString(body))
	}, 20*time.Second, 100*time.Millisecond, "lag of every follower and projection: %v", got)
	for _, pair := range []string{"Reservations<Orders", "Payments<Orders", "Orders<Reservations", "Orders<Payments", "OrdersSummary<Orders"} {
		assert.Contains(t, got, pair)
	}
	for _, name := range []string{"eventsourcing_subscription_position", "eventsourcing_subscription_resubscribes_total", "eventsourcing_follower_state", "rpc_client_call_duration_seconds_bucket", "target_info"} {
		assert.Contains(t, body, name)
	}
	assert.Regexp(t, `eventsourcing_follower_state\{follower="OrdersSummary",.*state="live",upstream="Orders"\} 1`, body)
	assert.Contains(t, body, `service_name="orders.System"`, "the runner's service is its system")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait())
}

// switchable is an application recorder whose notification reads fail,
// and whose subscriptions hold what they receive, while off is set (its
// head still answers), as when a leader's log cannot be read.
type switchable struct {
	recorder.ApplicationRecorder
	off atomic.Bool
}

var errUnreadable = fmt.Errorf("%w: the log cannot be read", recorder.ErrOperational)

func (s *switchable) SelectNotifications(ctx context.Context, q recorder.NotificationQuery) ([]recorder.Notification, error) {
	if s.off.Load() {
		return nil, errUnreadable
	}
	return s.ApplicationRecorder.SelectNotifications(ctx, q)
}

func (s *switchable) Subscribe(ctx context.Context, after recorder.Position, topics []string) (recorder.Subscription, error) {
	if s.off.Load() {
		return nil, errUnreadable
	}
	sub, err := s.ApplicationRecorder.Subscribe(ctx, after, topics)
	if err != nil {
		return nil, err
	}
	return heldSubscription{sub, &s.off}, nil
}

// heldSubscription holds each notification while off is set.
type heldSubscription struct {
	recorder.Subscription
	off *atomic.Bool
}

func (h heldSubscription) Next(ctx context.Context) (recorder.Notification, error) {
	n, err := h.Subscription.Next(ctx)
	for h.off.Load() {
		select {
		case <-ctx.Done():
			return recorder.Notification{}, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return n, err
}

// servedOrders is Orders served through a switchable recorder.
type servedOrders struct {
	*orders.Orders
	rec *switchable
}

func (o servedOrders) Recorder() recorder.ApplicationRecorder { return o.rec }

// A member's server (`server`, Reservations following Orders) serves its
// own endpoints: /metrics with its follower's lag and the framework's
// metrics; /readyz 200 while it keeps up, and 503 naming the follower once
// it is stalled: its position stands still while Orders' head grows.
func TestServerReadiness(t *testing.T) {
	ctx := t.Context()
	app, err := orders.NewOrders(ctx, map[string]string{"PERSISTENCE_MODULE": "memory"})
	require.NoError(t, err)
	defer app.Close()
	rec := &switchable{ApplicationRecorder: app.Recorder()}
	s, err := grpcapp.NewServer(servedOrders{app, rec}, grpcapp.WithAddress("localhost:0"))
	require.NoError(t, err)
	require.NoError(t, s.Start(ctx))
	defer s.Stop(context.Background())

	ops := freeAddr(t)
	resAddr, err := grpcapp.FreeLocalhostAddress()
	require.NoError(t, err)
	member(t, "orders.Reservations", []string{
		"ORDERS_GRPC_SERVER_ADDRESS=" + s.Addr(), "RESERVATIONS_GRPC_SERVER_ADDRESS=" + resAddr,
		"PAYMENTS_GRPC_SERVER_ADDRESS=localhost:1", "PERSISTENCE_MODULE=memory",
		"METRICS_ADDRESS=" + ops, "READY_STALLED_AFTER=1",
	})
	url := "http://" + ops
	_, err = app.CreateNewOrder(ctx)
	require.NoError(t, err)
	waitFor(t, url+"/readyz", http.StatusOK)
	var body string
	require.Eventually(t, func() bool {
		_, body = fetch(url + "/metrics")
		return lags(body)["Reservations<Orders"] == "0" && strings.Contains(body, "eventsourcing_events_processed_total")
	}, 20*time.Second, 100*time.Millisecond, "Reservations caught up: %s", body)
	assert.Regexp(t, `(?m)^eventsourcing_events_recorded_total\{application="Reservations",.*\} 1$`, body)
	assert.Regexp(t, `(?m)^eventsourcing_events_processed_total\{follower="Reservations",.*outcome="applied",.*upstream="Orders"\} 1$`, body)
	assert.Contains(t, body, `service_name="Reservations"`)

	// Orders' log cannot be read any more, and it grows.
	rec.off.Store(true)
	for range 3 {
		_, err = app.CreateNewOrder(ctx)
		require.NoError(t, err)
	}
	body = waitFor(t, url+"/readyz", http.StatusServiceUnavailable)
	assert.Contains(t, body, "Reservations (upstream Orders) is stalled: position 1 has not moved")
	_, metrics := fetch(url + "/metrics")
	assert.Equal(t, "3", lags(metrics)["Reservations<Orders"])

	// Readable again: it catches up and is ready.
	rec.off.Store(false)
	waitFor(t, url+"/readyz", http.StatusOK)
}

// A collector that is down does not keep a server from serving or from
// stopping promptly.
func TestServerWithCollectorDown(t *testing.T) {
	addr, err := grpcapp.FreeLocalhostAddress()
	require.NoError(t, err)
	down := freeAddr(t) // nothing listens there
	cmd := startServer(t, addr, "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+down, "OTEL_BSP_SCHEDULE_DELAY=50")
	for range 5 {
		_, stderr, code := runCmd(t, "call", addr, "CreateNewOrder")
		require.Equal(t, 0, code, stderr)
	}
	time.Sleep(200 * time.Millisecond) // an export or two fail
	began := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "a graceful stop")
	assert.Less(t, time.Since(began), 8*time.Second, "pending spans are given up after a bounded flush")
}

// Settings that cannot work stop the command with a message that names
// them.
func TestOperationsSettingsErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"METRICS_ADDRESS=" + taken.Addr().String()}, "METRICS_ADDRESS=" + taken.Addr().String()},
		{[]string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/json"}, `OTEL_EXPORTER_OTLP_PROTOCOL="http/json"`},
		{[]string{"METRICS_ADDRESS=127.0.0.1:0", "READY_STALLED_AFTER=soon"}, "READY_STALLED_AFTER"},
	} {
		addr, err := grpcapp.FreeLocalhostAddress()
		require.NoError(t, err)
		cmd := exec.Command(binary, "server", "orders.Orders")
		cmd.Env = append(os.Environ(), append([]string{"ORDERS_GRPC_SERVER_ADDRESS=" + addr}, tc.env...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err = cmd.Run()
		var exit *exec.ExitError
		require.True(t, errors.As(err, &exit), "%v: %v", tc.env, err)
		assert.Equal(t, 1, exit.ExitCode(), tc.env)
		assert.Contains(t, stderr.String(), tc.want, tc.env)
	}
}
