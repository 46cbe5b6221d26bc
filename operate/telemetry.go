package operate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/eventsourcing-go/eventsourcing/config"
)

// The settings Setup reads: OpenTelemetry's standard variables, and the
// address of the operations endpoints.
const (
	EnvSDKDisabled         = "OTEL_SDK_DISABLED"
	EnvServiceName         = "OTEL_SERVICE_NAME"
	EnvTracesExporter      = "OTEL_TRACES_EXPORTER"
	EnvEndpoint            = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint      = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol            = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol      = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvMetricsAddress      = "METRICS_ADDRESS"
	ProtocolGRPC           = "grpc"
	ProtocolHTTPProtobuf   = "http/protobuf"
	defaultShutdownTimeout = 3 * time.Second
)

// Config is what Setup installs, as read from the environment by
// ConfigFromEnv.
type Config struct {
	// Disabled is OTEL_SDK_DISABLED: no traces, no metrics, no
	// propagator; the operations endpoints still answer /healthz and
	// /readyz.
	Disabled bool
	// ServiceName is the service.name of every span and metric.
	ServiceName string
	// TracesEndpoint is the OTLP endpoint of traces (a URL), empty for no
	// traces; TracesProtocol is ProtocolGRPC or ProtocolHTTPProtobuf.
	TracesEndpoint string
	TracesProtocol string
	// MetricsAddress is where the operations endpoints listen (METRICS_ADDRESS),
	// empty for none; metrics are collected only then.
	MetricsAddress string
}

// ConfigFromEnv reads the configuration of one process from env, whose
// name (the served application, if any) prefixes each key first as
// everywhere in the framework (ORDERS_OTEL_SERVICE_NAME before
// OTEL_SERVICE_NAME):
//
//   - OTEL_SDK_DISABLED=true turns everything off;
//   - OTEL_SERVICE_NAME names the service (default: defaultService);
//   - traces are exported over OTLP when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
//     or OTEL_EXPORTER_OTLP_ENDPOINT is set (the first wins, used as is;
//     the second gets /v1/traces over HTTP), or when OTEL_TRACES_EXPORTER=otlp
//     (the default endpoint of the protocol); OTEL_TRACES_EXPORTER=none
//     turns them off;
//   - OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL is
//     grpc (the default) or http/protobuf;
//   - METRICS_ADDRESS (host:port, ":9464") serves /metrics, /healthz and
//     /readyz.
//
// The SDK reads the rest itself: OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*, and the
// exporter's OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _CERTIFICATE and
// _COMPRESSION.
func ConfigFromEnv(env config.Env, defaultService string) (Config, error) {
	var c Config
	var err error
	if c.Disabled, err = env.Bool(EnvSDKDisabled, false); err != nil {
		return Config{}, fmt.Errorf("operate: %w", err)
	}
	c.ServiceName = env.String(EnvServiceName, "")
	if c.ServiceName == "" {
		c.ServiceName = defaultService
	}
	c.MetricsAddress = env.String(EnvMetricsAddress, "")
	c.TracesProtocol = env.String(EnvTracesProtocol, "")
	if c.TracesProtocol == "" {
		c.TracesProtocol = env.String(EnvProtocol, ProtocolGRPC)
	}
	switch c.TracesProtocol {
	case ProtocolGRPC, ProtocolHTTPProtobuf:
	default:
		return Config{}, fmt.Errorf("operate: %w: %s=%q: the OTLP protocols here are %q and %q", config.ErrConfiguration, EnvProtocol, c.TracesProtocol, ProtocolGRPC, ProtocolHTTPProtobuf)
	}
	exporter := strings.ToLower(strings.TrimSpace(env.String(EnvTracesExporter, "")))
	switch exporter {
	case "", "otlp", "none":
	default:
		return Config{}, fmt.Errorf("operate: %w: %s=%q: only otlp and none are built in", config.ErrConfiguration, EnvTracesExporter, exporter)
	}
	if exporter != "none" {
		if v := env.String(EnvTracesEndpoint, ""); v != "" {
			c.TracesEndpoint = v
		} else if v := env.String(EnvEndpoint, ""); v != "" {
			c.TracesEndpoint = v
			if c.TracesProtocol == ProtocolHTTPProtobuf {
				c.TracesEndpoint = strings.TrimSuffix(v, "/") + "/v1/traces"
			}
		} else if exporter == "otlp" {
			c.TracesEndpoint = defaultEndpoint(c.TracesProtocol)
		}
	}
	if c.TracesEndpoint != "" {
		u, err := url.Parse(c.TracesEndpoint)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return Config{}, fmt.Errorf("operate: %w: the OTLP endpoint %q is not a URL such as http://127.0.0.1:4317", config.ErrConfiguration, c.TracesEndpoint)
		}
	}
	if c.Disabled {
		c.TracesEndpoint = ""
	}
	return c, nil
}

// defaultEndpoint is OpenTelemetry's default OTLP endpoint of a protocol.
func defaultEndpoint(protocol string) string {
	if protocol == ProtocolHTTPProtobuf {
		return "http://localhost:4318/v1/traces"
	}
	return "http://localhost:4317"
}

// Telemetry is what Setup installed: the global providers and the
// Prometheus registry behind /metrics.
type Telemetry struct {
	config   Config
	tracer   *sdktrace.TracerProvider // nil without traces
	meter    *sdkmetric.MeterProvider // nil without metrics
	registry *prometheus.Registry     // nil without metrics

	once    sync.Once
	stopErr error
}

// Setup installs OpenTelemetry as c says, before any application,
// server or client is built: the global tracer provider (batching spans to
// the OTLP exporter; sampling as OTEL_TRACES_SAMPLER says), the global
// meter provider (read by the Prometheus exporter when c.MetricsAddress is
// set), and the W3C trace-context and baggage propagator. Nothing
// connects here: a collector that is down or unreachable costs dropped
// spans and a rate-limited warning in the log, never a failed or blocked
// command. Shutdown flushes what is pending.
func Setup(ctx context.Context, c Config, logger *slog.Logger) (*Telemetry, error) {
	t := &Telemetry{config: c}
	if c.Disabled {
		return t, nil
	}
	if logger == nil {
		logger = slog.Default()
	}
	otel.SetErrorHandler(newErrorLog(logger, time.Minute))
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", c.ServiceName)))
	if err != nil && res == nil {
		return nil, fmt.Errorf("operate: resource: %w", err)
	}
	if c.TracesEndpoint != "" {
		exp, err := newTraceExporter(c)
		if err != nil {
			return nil, err
		}
		t.tracer = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		otel.SetTracerProvider(t.tracer)
	}
	if c.MetricsAddress != "" {
		t.registry = prometheus.NewRegistry()
		t.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		exp, err := otelprom.New(otelprom.WithRegisterer(t.registry))
		if err != nil {
			return nil, errors.Join(fmt.Errorf("operate: prometheus exporter: %w", err), t.Shutdown(ctx))
		}
		t.meter = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
		otel.SetMeterProvider(t.meter)
	}
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if c.TracesEndpoint == "" && c.MetricsAddress == "" {
		return t, nil // nothing to say
	}
	logger.Info("telemetry", "service", c.ServiceName, "traces", orNone(c.TracesEndpoint), "protocol", c.TracesProtocol, "metrics", orNone(c.MetricsAddress))
	return t, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// newTraceExporter returns the OTLP exporter of c's protocol, which
// connects lazily.
func newTraceExporter(c Config) (*otlptrace.Exporter, error) {
	var client otlptrace.Client
	if c.TracesProtocol == ProtocolHTTPProtobuf {
		client = otlptracehttp.NewClient(otlptracehttp.WithEndpointURL(c.TracesEndpoint))
	} else {
		client = otlptracegrpc.NewClient(otlptracegrpc.WithEndpointURL(c.TracesEndpoint))
	}
	// New starts the client; the gRPC one dials without waiting, the HTTP
	// one has nothing to start.
	exp, err := otlptrace.New(context.Background(), client)
	if err != nil {
		return nil, fmt.Errorf("operate: OTLP trace exporter for %s: %w", c.TracesEndpoint, err)
	}
	return exp, nil
}

// Config returns what was installed.
func (t *Telemetry) Config() Config { return t.config }

// MetricsHandler serves the metrics in Prometheus's text format, or 404
// when metrics are not collected (no METRICS_ADDRESS, or the SDK
// disabled).
func (t *Telemetry) MetricsHandler() http.Handler {
	if t == nil || t.registry == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "metrics are not collected (OTEL_SDK_DISABLED is set)", http.StatusNotFound)
		})
	}
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Shutdown flushes pending spans and stops the providers, waiting at most
// until ctx ends, and three seconds when ctx has no deadline: a collector
// that does not answer delays an exit by no more. It is idempotent.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	t.once.Do(func() { t.stopErr = t.shutdown(ctx) })
	return t.stopErr
}

func (t *Telemetry) shutdown(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultShutdownTimeout)
		defer cancel()
	}
	var errs []error
	if t.tracer != nil {
		// Later servers and clients of this process install nothing.
		otel.SetTracerProvider(tracenoop.NewTracerProvider())
		if err := t.tracer.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("operate: flush traces: %w", err))
		}
	}
	if t.meter != nil {
		otel.SetMeterProvider(metricnoop.NewMeterProvider())
		if err := t.meter.Shutdown(ctx); err != nil && !errors.Is(err, sdkmetric.ErrReaderShutdown) {
			errs = append(errs, fmt.Errorf("operate: stop metrics: %w", err))
		}
	}
	return errors.Join(errs...)
}

// errorLog reports OpenTelemetry's own errors (an export that failed: the
// collector is down) as warnings, the first at once and then at most one
// per interval with the number left out.
type errorLog struct {
	logger   *slog.Logger
	interval time.Duration

	mu      sync.Mutex
	last    time.Time
	dropped int
}

func newErrorLog(l *slog.Logger, interval time.Duration) *errorLog {
	return &errorLog{logger: l, interval: interval}
}

// Handle implements otel.ErrorHandler.
func (e *errorLog) Handle(err error) {
	e.mu.Lock()
	now := time.Now()
	if !e.last.IsZero() && now.Sub(e.last) < e.interval {
		e.dropped++
		e.mu.Unlock()
		return
	}
	dropped := e.dropped
	e.last, e.dropped = now, 0
	e.mu.Unlock()
	attrs := []any{"error", err}
	if dropped > 0 {
		attrs = append(attrs, "more", dropped, "since", e.interval.String())
	}
	e.logger.Warn("telemetry: export failed", attrs...)
}
