package grpcapp

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/rpcconv"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"

	"github.com/eventsourcing-go/eventsourcing/grpcapp/pb"
	"github.com/eventsourcing-go/eventsourcing/telemetry"
)

// Servers and clients are instrumented with OpenTelemetry, following its
// RPC semantic conventions: a span per RPC on each side
// ("eventsourcing_grpc.Application/Call", kind server or client, with
// rpc.system.name, rpc.method and rpc.response.status_code, and on the
// client server.address and server.port), one duration per RPC
// (rpc.server.call.duration, rpc.client.call.duration, in seconds, with the
// same attributes and error.type on failure). The server span of a call of
// an application's command or query is that method's span: named by the
// application and method ("Orders.CreateNewOrder", as telemetry.CommandSpan
// names it), with the attributes application, eventsourcing.method and
// eventsourcing.query beside the RPC's, and status Error whenever the
// method failed. They use the global
// tracer and meter providers and the global propagator (the
// eventsourcing-grpc command sets them from the OTEL_* variables), or those
// of WithServerTelemetry and WithClientTelemetry; the trace context travels
// in the calls' metadata. A server that starts, or a client that is made,
// while neither provider records (the globals before a program sets them,
// or no-op providers) installs no instrumentation at all, so set the
// globals first.
//
// The calls that are polled rather than made (Ping, Status, the health and
// reflection services) get no span and no duration: a follower reads its
// leader's head every few seconds, and a trace per read would bury the ones
// that matter.

// scopeName is the instrumentation scope of the RPC and command spans and
// of the RPC durations.
const scopeName = "github.com/eventsourcing-go/eventsourcing/grpcapp"

// Telemetry is where a server or client sends its spans and durations,
// and how it carries trace context in the calls' metadata. A nil field is
// the global one (otel.GetTracerProvider, otel.GetMeterProvider,
// otel.GetTextMapPropagator).
type Telemetry struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Propagator     propagation.TextMapPropagator
}

// instrumentation is a server's or client's choice of providers.
type instrumentation struct {
	Telemetry
	off bool // no instrumentation at all
}

// WithServerTelemetry sets the providers of the server's RPC and command
// spans and RPC durations, and its propagator (default: the global ones,
// which do nothing until the program sets them).
func WithServerTelemetry(t Telemetry) ServerOption {
	return func(o *serverOptions) { o.telemetry = instrumentation{Telemetry: t} }
}

// WithClientTelemetry sets the providers of the client's RPC spans and
// durations, and its propagator (default: the global ones).
func WithClientTelemetry(t Telemetry) ClientOption {
	return func(o *clientOptions) { o.telemetry = instrumentation{Telemetry: t} }
}

// rpcHandler instruments the RPCs of a server or a client, through its
// interceptors: it sees each RPC begin and end, and nothing of its messages.
type rpcHandler struct {
	server bool
	kind   trace.SpanKind
	tracer trace.Tracer // nil: no spans, no propagation
	prop   propagation.TextMapPropagator
	hist   metric.Float64Histogram // nil: no durations
	// peer are a client's server.address and server.port.
	peer []attribute.KeyValue

	// A server knows its methods once its services are registered
	// (register); gRPC answers an RPC of another before any interceptor,
	// and should one get through it is "_OTHER", so that a caller cannot
	// make a series per name it sends.
	known map[string]*rpcMethod
	other *rpcMethod
	// commands are a server's Call RPCs by the method called.
	commands map[string]*rpcMethod
	// A client learns the methods it calls (the program names them).
	mu      sync.RWMutex
	learned map[string]*rpcMethod
}

// rpcMethod is what one method's RPCs share, computed once: the span's
// name and start options, and for each status code the duration's
// attributes.
type rpcMethod struct {
	polled bool
	// command is set on the server span of a call of an application's
	// command or query, which fails whenever the method does.
	command bool
	name    string
	start   []trace.SpanStartOption
	record  [numCodes][]metric.RecordOption
}

// numCodes is the number of gRPC status codes (OK to Unauthenticated).
const numCodes = int(codes.Unauthenticated) + 1

// statusAttrs are the rpc.response.status_code attributes by code.
var statusAttrs = func() (a [numCodes]attribute.KeyValue) {
	for c := range a {
		a[c] = semconv.RPCResponseStatusCode(codeName(codes.Code(c)))
	}
	return a
}()

// codeName is a status code's canonical name, as the conventions spell
// it (codes.Code's String spells them otherwise: "Canceled", "NotFound").
func codeName(c codes.Code) string { return codeNames[c] }

var codeNames = [numCodes]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
	"PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
	"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
}

// failed reports whether an RPC that ended with c failed on this side: on
// a client every status but OK, on a server only those that are the
// server's fault (a client's NotFound or InvalidArgument is the server
// working).
func (h *rpcHandler) failed(c codes.Code) bool {
	if !h.server {
		return c != codes.OK
	}
	switch c {
	case codes.Unknown, codes.DeadlineExceeded, codes.Unimplemented, codes.Internal, codes.Unavailable, codes.DataLoss:
		return true
	}
	return false
}

// polledServices are the services whose RPCs are polled, and polledMethods
// the polled RPCs of the application service.
var (
	polledServices = map[string]bool{
		healthpb.Health_ServiceDesc.ServiceName:                    true,
		reflectionv1.ServerReflection_ServiceDesc.ServiceName:      true,
		reflectionv1alpha.ServerReflection_ServiceDesc.ServiceName: true,
	}
	polledMethods = map[string]bool{
		pb.Application_Ping_FullMethodName:   true,
		pb.Application_Status_FullMethodName: true,
	}
)

// polledRPC is the method of the polled RPCs: they are not instrumented.
var polledRPC = &rpcMethod{polled: true}

// newHandler returns the instrumentation of a server (server true) or of
// a client of target, or nil when instrumentation is off or no provider
// records.
func (t instrumentation) newHandler(server bool, target string) *rpcHandler {
	if t.off {
		return nil
	}
	tp, mp := t.TracerProvider, t.MeterProvider
	tracing, metering := telemetry.TracerConfigured(tp), telemetry.MeterConfigured(mp)
	if !tracing && !metering {
		// A program that configures no telemetry gets no interceptors,
		// and pays nothing.
		return nil
	}
	h := &rpcHandler{server: server, kind: trace.SpanKindClient, prop: t.Propagator}
	if server {
		h.kind = trace.SpanKindServer
	} else {
		h.peer = peerAttrs(target)
		h.learned = map[string]*rpcMethod{}
	}
	if tracing {
		if tp == nil {
			tp = otel.GetTracerProvider()
		}
		h.tracer = tp.Tracer(scopeName)
		if h.prop == nil {
			h.prop = otel.GetTextMapPropagator()
		}
	}
	if metering {
		if mp == nil {
			mp = otel.GetMeterProvider()
		}
		meter := mp.Meter(scopeName, metric.WithSchemaURL(semconv.SchemaURL))
		var err error
		if server {
			var d rpcconv.ServerCallDuration
			d, err = rpcconv.NewServerCallDuration(meter)
			h.hist = d.Inst()
		} else {
			var d rpcconv.ClientCallDuration
			d, err = rpcconv.NewClientCallDuration(meter)
			h.hist = d.Inst()
		}
		if err != nil {
			otel.Handle(err) // the SDK's error handler: a duplicate instrument, say
		}
	}
	h.other = h.newMethod("_OTHER")
	return h
}

// peerAttrs are the server.address and server.port of a client's target.
func peerAttrs(target string) []attribute.KeyValue {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return []attribute.KeyValue{semconv.ServerAddress(target)}
	}
	attrs := []attribute.KeyValue{semconv.ServerAddress(host)}
	if p, err := strconv.Atoi(port); err == nil {
		attrs = append(attrs, semconv.ServerPort(p))
	}
	return attrs
}

// newMethod computes what the RPCs of one method share; fullMethod is
// "/service/method", or "_OTHER".
func (h *rpcHandler) newMethod(fullMethod string) *rpcMethod {
	name := strings.TrimPrefix(fullMethod, "/")
	attrs := append([]attribute.KeyValue{semconv.RPCSystemNameGRPC, semconv.RPCMethod(name)}, h.peer...)
	m := &rpcMethod{name: name, start: []trace.SpanStartOption{trace.WithSpanKind(h.kind), trace.WithAttributes(attrs...)}}
	if h.hist != nil {
		for c := range numCodes {
			a := append(attrs[:len(attrs):len(attrs)], statusAttrs[c])
			if h.failed(codes.Code(c)) {
				a = append(a, semconv.ErrorTypeKey.String(codeName(codes.Code(c))))
			}
			m.record[c] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(a...))}
		}
	}
	return m
}

// commandMethod is the Call RPC of one command or query of app, whose
// server span is the command's span: named and attributed as
// telemetry.CommandSpan has it, with the RPC's attributes too.
func (h *rpcHandler) commandMethod(app string, m *method) *rpcMethod {
	call := h.newMethod(pb.Application_Call_FullMethodName)
	name, opts := telemetry.CommandSpan(app, m.name, m.query)
	// CommandSpan's kind is internal; the server span's comes last and wins.
	call.name, call.command = name, true
	call.start = append(opts, call.start...)
	return call
}

// register tells a server's handler the methods it serves (before it
// serves them).
func (h *rpcHandler) register(services map[string]grpc.ServiceInfo) {
	h.known = map[string]*rpcMethod{}
	for service, info := range services {
		for _, mi := range info.Methods {
			full := "/" + service + "/" + mi.Name
			if polledServices[service] || polledMethods[full] {
				h.known[full] = polledRPC
			} else {
				h.known[full] = h.newMethod(full)
			}
		}
	}
}

// method returns the method of an RPC.
func (h *rpcHandler) method(fullMethod string) *rpcMethod {
	if h.server {
		if m, ok := h.known[fullMethod]; ok {
			return m
		}
		return h.other
	}
	h.mu.RLock()
	m, ok := h.learned[fullMethod]
	h.mu.RUnlock()
	if ok {
		return m
	}
	service, _, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	m = polledRPC
	if !polledServices[service] && !polledMethods[fullMethod] {
		m = h.newMethod(fullMethod)
	}
	h.mu.Lock()
	h.learned[fullMethod] = m
	h.mu.Unlock()
	return m
}

// incoming reads a server's incoming metadata for the propagator.
type incoming struct{ ctx context.Context }

func (c incoming) Get(key string) string {
	if v := metadata.ValueFromIncomingContext(c.ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c incoming) Set(string, string) {}

func (c incoming) Keys() []string {
	md, _ := metadata.FromIncomingContext(c.ctx)
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	return keys
}

// outgoing keeps what a client's propagator injects (key, value, ...).
type outgoing struct {
	kv [6]string
	n  int
}

func (c *outgoing) Get(string) string { return "" }

func (c *outgoing) Set(key, value string) {
	if c.n+2 <= len(c.kv) {
		c.kv[c.n], c.kv[c.n+1] = key, value
		c.n += 2
	}
}

func (c *outgoing) Keys() []string { return nil }

// begin starts an RPC's span: on a server as the child of the trace
// context the client sent, on a client as the child of ctx's span, with
// its trace context put in the outgoing metadata. It returns ctx as it is
// when there are no spans.
func (h *rpcHandler) begin(ctx context.Context, m *rpcMethod) context.Context {
	if h.tracer == nil {
		return ctx
	}
	if h.server {
		ctx, _ = h.tracer.Start(h.prop.Extract(ctx, incoming{ctx}), m.name, m.start...)
		return ctx
	}
	ctx, _ = h.tracer.Start(ctx, m.name, m.start...)
	var out outgoing
	h.prop.Inject(ctx, &out)
	if out.n > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, out.kv[:out.n]...)
	}
	return ctx
}

// end ends an RPC's span (in ctx, as begin returned it) and records its
// duration.
func (h *rpcHandler) end(ctx context.Context, m *rpcMethod, timer telemetry.Timer, err error) {
	code := status.Code(err)
	if int(code) >= numCodes {
		code = codes.Unknown
	}
	if h.tracer != nil {
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			if h.failed(code) || m.command && code != codes.OK {
				span.SetStatus(otelcodes.Error, status.Convert(err).Message())
				span.SetAttributes(semconv.ErrorTypeKey.String(codeName(code)))
			}
			span.SetAttributes(statusAttrs[code])
			span.End()
		}
	}
	if h.hist != nil {
		h.hist.Record(ctx, timer.Seconds(), m.record[code]...)
	}
}

// The interceptors instrument every RPC but the polled ones. Interceptors
// rather than a stats handler: a stats handler makes gRPC report each
// header, message and trailer of every call on both sides, which costs a
// local call a tenth of its time even when the handler does nothing.

func (h *rpcHandler) unaryServer(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	m := h.method(info.FullMethod)
	if m.polled {
		return handler(ctx, req)
	}
	if r, ok := req.(*pb.CallRequest); ok {
		if cm := h.commands[r.GetMethod()]; cm != nil {
			m = cm
		}
	}
	timer := telemetry.StartTimer()
	ctx = h.begin(ctx, m)
	resp, err := handler(ctx, req)
	h.end(ctx, m, timer, err)
	return resp, err
}

func (h *rpcHandler) streamServer(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	m := h.method(info.FullMethod)
	if m.polled {
		return handler(srv, ss)
	}
	timer := telemetry.StartTimer()
	ctx := h.begin(ss.Context(), m)
	err := handler(srv, serverStream{ss, ctx})
	h.end(ctx, m, timer, err)
	return err
}

// serverStream is a server stream whose context holds the RPC's span.
type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s serverStream) Context() context.Context { return s.ctx }

func (h *rpcHandler) unaryClient(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	m := h.method(method)
	if m.polled {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	timer := telemetry.StartTimer()
	ctx = h.begin(ctx, m)
	err := invoker(ctx, method, req, reply, cc, opts...)
	h.end(ctx, m, timer, err)
	return err
}

func (h *rpcHandler) streamClient(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	m := h.method(method)
	if m.polled {
		return streamer(ctx, desc, cc, method, opts...)
	}
	timer := telemetry.StartTimer()
	ctx = h.begin(ctx, m)
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		h.end(ctx, m, timer, err)
		return nil, err
	}
	return &clientStream{ClientStream: cs, h: h, m: m, ctx: ctx, timer: timer, single: !desc.ServerStreams}, nil
}

// clientStream ends its RPC's span when the stream ends: when RecvMsg
// fails (io.EOF: the server finished), or after the one reply of a stream
// whose server sends one.
type clientStream struct {
	grpc.ClientStream
	h      *rpcHandler
	m      *rpcMethod
	ctx    context.Context
	timer  telemetry.Timer
	single bool
	once   sync.Once
}

func (s *clientStream) RecvMsg(msg any) error {
	err := s.ClientStream.RecvMsg(msg)
	switch {
	case errors.Is(err, io.EOF):
		s.finish(nil)
	case err != nil:
		s.finish(err)
	case s.single:
		s.finish(nil)
	}
	return err
}

func (s *clientStream) finish(err error) {
	s.once.Do(func() { s.h.end(s.ctx, s.m, s.timer, err) })
}

// serverTelemetry is a server's instrumentation.
type serverTelemetry struct {
	handler *rpcHandler // nil: none
}

// server returns the instrumentation of the server of the application
// named app with these methods.
func (t instrumentation) server(app string, methods map[string]*method) serverTelemetry {
	h := t.newHandler(true, "")
	if h != nil && h.tracer != nil {
		h.commands = make(map[string]*rpcMethod, len(methods))
		for name, m := range methods {
			h.commands[name] = h.commandMethod(app, m)
		}
	}
	return serverTelemetry{handler: h}
}

// serverOptions returns the server's interceptors, none when off.
func (st serverTelemetry) serverOptions() []grpc.ServerOption {
	if st.handler == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(st.handler.unaryServer), grpc.ChainStreamInterceptor(st.handler.streamServer)}
}

// register tells the handler the services the server serves.
func (st serverTelemetry) register(s *grpc.Server) {
	if st.handler != nil {
		st.handler.register(s.GetServiceInfo())
	}
}

// dialOptions returns the interceptors of a client of target, none when
// off.
func (t instrumentation) dialOptions(target string) []grpc.DialOption {
	h := t.newHandler(false, target)
	if h == nil {
		return nil
	}
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(h.unaryClient), grpc.WithChainStreamInterceptor(h.streamClient)}
}
