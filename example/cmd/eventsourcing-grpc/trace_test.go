package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"github.com/eventsourcing-go/eventsourcing/example/orders"
	"github.com/eventsourcing-go/eventsourcing/grpcapp"
)

// collector is an OTLP trace receiver over gRPC, in the test's process: what
// the command's OTLP exporter sends, kept in memory.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	addr string

	mu    sync.Mutex
	spans []span
}

// span is one received span with the service.name of its resource.
type span struct {
	service, name      string
	trace, id, parent  string
	kind               tracepb.Span_SpanKind
	startNano, endNano uint64
}

// startCollector serves a collector on a free loopback port until the test ends.
func startCollector(t *testing.T) *collector {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &collector{addr: lis.Addr().String()}
	s := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(s, c)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return c
}

func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, span{
					service: service, name: s.GetName(), kind: s.GetKind(),
					trace: hex.EncodeToString(s.GetTraceId()), id: hex.EncodeToString(s.GetSpanId()), parent: hex.EncodeToString(s.GetParentSpanId()),
					startNano: s.GetStartTimeUnixNano(), endNano: s.GetEndTimeUnixNano(),
				})
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// traces returns the spans received so far by trace id.
func (c *collector) traces() map[string][]span {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]span{}
	for _, s := range c.spans {
		out[s.trace] = append(out[s.trace], s)
	}
	return out
}

// orderTrace is the trace whose spans carry the order's creation (its
// root) and its payment.
func orderTrace(traces map[string][]span) []span {
	for _, spans := range traces {
		if slices.ContainsFunc(spans, func(s span) bool { return s.name == "Orders.CreateNewOrder" }) {
			return spans
		}
	}
	return nil
}

// tree checks that spans form one tree: one root, every other span's parent
// among them. It returns the root, or what is wrong.
func tree(spans []span) (span, error) {
	ids := map[string]bool{}
	for _, s := range spans {
		ids[s.id] = true
	}
	var roots []span
	for _, s := range spans {
		switch {
		case s.parent == "":
			roots = append(roots, s)
		case !ids[s.parent]:
			return span{}, fmt.Errorf("%s/%s has parent %s, which is not in the trace", s.service, s.name, s.parent)
		}
	}
	if len(roots) != 1 {
		return span{}, fmt.Errorf("%d roots: %v", len(roots), roots)
	}
	return roots[0], nil
}

// services returns the distinct services of spans, sorted.
func services(spans []span) []string {
	var out []string
	for _, s := range spans {
		if !slices.Contains(out, s.service) {
			out = append(out, s.service)
		}
	}
	slices.Sort(out)
	return out
}

// One order created and paid is one trace across the three servers of
// orders.System run by `runner` (one subprocess each, followers pulling
// over gRPC), exported over OTLP to a collector: the Orders server's
// CreateNewOrder is its root, and the processing of each event by
// Reservations, Payments and Orders hangs below the span that recorded it.
func TestTraceAcrossServers(t *testing.T) {
	col := startCollector(t)
	addrs := map[string]string{}
	env := append(os.Environ(),
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+col.addr,
		"OTEL_BSP_SCHEDULE_DELAY=100", // milliseconds: spans reach the collector soon
		"OTEL_SERVICE_NAME=",          // each member names its own service
		"PERSISTENCE_MODULE=memory",
	)
	for _, n := range []string{"ORDERS", "RESERVATIONS", "PAYMENTS", "ORDERSSUMMARY"} {
		a, err := grpcapp.FreeLocalhostAddress()
		require.NoError(t, err)
		addrs[n] = a
		env = append(env, n+"_GRPC_SERVER_ADDRESS="+a)
	}
	cmd := exec.Command(binary, "runner", "-demo=false", "orders.System")
	cmd.Env = env
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	c := connectTo(t, addrs["ORDERS"])
	ctx := t.Context()
	id, err := grpcapp.Call[uuid.UUID](ctx, c.App(), "CreateNewOrder")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		o, err := grpcapp.Call[orders.OrderView](ctx, c.App(), "GetOrder", id)
		return err == nil && o.IsPaid
	}, 30*time.Second, 50*time.Millisecond, "the order is paid")

	var spans []span
	var treeErr error
	ok := assert.Eventually(t, func() bool {
		spans = orderTrace(col.traces())
		_, treeErr = tree(spans)
		// Complete when the last hops have arrived: Orders has processed
		// the payment, and the projection has counted the order's three
		// events.
		summary := 0
		for _, s := range spans {
			if s.service == "OrdersSummary" && s.name == "process Orders" {
				summary++
			}
		}
		return treeErr == nil && summary == 3 && slices.ContainsFunc(spans, func(s span) bool {
			return s.service == "Orders" && s.name == "process Payments"
		})
	}, 30*time.Second, 100*time.Millisecond, "one connected trace from Orders through Reservations and Payments back to Orders")
	if !ok {
		for _, s := range spans {
			t.Logf("%s %s %s parent %s", s.service, s.name, s.id, s.parent)
		}
		t.Fatalf("tree: %v", treeErr)
	}
	assert.Equal(t, []string{"Orders", "OrdersSummary", "Payments", "Reservations"}, services(spans), "the projection's processing too")
	root, err := tree(spans)
	require.NoError(t, err)
	assert.Equal(t, "Orders", root.service)
	assert.Equal(t, tracepb.Span_SPAN_KIND_SERVER, root.kind, "the root is the Orders server's span of the call")
	// Every hop: each follower processes the event of the one before it.
	for _, hop := range [][2]string{{"Reservations", "process Orders"}, {"Payments", "process Orders"}, {"Orders", "process Reservations"}, {"Orders", "process Payments"}} {
		assert.True(t, slices.ContainsFunc(spans, func(s span) bool { return s.service == hop[0] && s.name == hop[1] }), "%s: %s", hop[0], hop[1])
	}
	byID := map[string]span{}
	for _, s := range spans {
		byID[s.id] = s
	}
	// Payments pays on the event Orders recorded while it processed
	// Reservations' reservation: a chain through all three servers.
	ancestors := func(s span) string {
		var chain []string
		for p := s; p.parent != ""; p = byID[p.parent] {
			chain = append(chain, byID[p.parent].service+"/"+byID[p.parent].name)
		}
		return strings.Join(chain, " < ")
	}
	assert.True(t, slices.ContainsFunc(spans, func(s span) bool {
		return s.service == "Payments" && s.name == "process Orders" &&
			strings.Contains(ancestors(s), "Orders/process Reservations < Reservations/save Reservations < Reservations/process Orders")
	}), "Payments' processing descends from Orders' processing of Reservations' event, which descends from Reservations' processing")
	if t.Failed() {
		for _, s := range spans {
			t.Logf("%-13s %-40s < %s", s.service, s.name, ancestors(s))
		}
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "a graceful stop")
}

// `call` with traces exported is the root of its call's trace: its client
// span reaches the collector under the service eventsourcing-grpc, and the
// server's spans (exported by the server) are its children.
func TestCallIsTraced(t *testing.T) {
	col := startCollector(t)
	addr, err := grpcapp.FreeLocalhostAddress()
	require.NoError(t, err)
	otlp := []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + col.addr, "OTEL_BSP_SCHEDULE_DELAY=100"}
	startServer(t, addr, otlp...)
	cmd := exec.Command(binary, "call", addr, "CreateNewOrder")
	cmd.Env = append(os.Environ(), otlp...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))

	var spans []span
	require.Eventually(t, func() bool {
		for _, ss := range col.traces() {
			if slices.ContainsFunc(ss, func(s span) bool { return s.name == "Orders.CreateNewOrder" }) {
				spans = ss
			}
		}
		_, err := tree(spans)
		return err == nil && len(services(spans)) == 2
	}, 20*time.Second, 50*time.Millisecond)
	root, err := tree(spans)
	require.NoError(t, err)
	assert.Equal(t, "eventsourcing-grpc", root.service)
	assert.Equal(t, tracepb.Span_SPAN_KIND_CLIENT, root.kind)
	assert.Equal(t, "eventsourcing_grpc.Application/Call", root.name)
}
