package operate

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/eventsourcing-go/eventsourcing/config"
)

func envOf(name string, vars map[string]string) config.Env {
	return config.NewEnvFrom(name, nil, func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	})
}

func TestConfigFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		app  string
		vars map[string]string
		want Config
		err  string
	}{
		{name: "nothing set: no traces, no metrics, the default service", vars: nil,
			want: Config{ServiceName: "Orders", TracesProtocol: ProtocolGRPC}},
		{name: "the generic endpoint over gRPC", vars: map[string]string{EnvEndpoint: "http://127.0.0.1:4317"},
			want: Config{ServiceName: "Orders", TracesEndpoint: "http://127.0.0.1:4317", TracesProtocol: ProtocolGRPC}},
		{name: "the generic endpoint over HTTP gets the traces path", vars: map[string]string{EnvEndpoint: "http://collector:4318/", EnvProtocol: "http/protobuf"},
			want: Config{ServiceName: "Orders", TracesEndpoint: "http://collector:4318/v1/traces", TracesProtocol: ProtocolHTTPProtobuf}},
		{name: "the traces endpoint wins and is used as is", vars: map[string]string{EnvEndpoint: "http://a:4318", EnvTracesEndpoint: "https://b:443/custom", EnvProtocol: "http/protobuf"},
			want: Config{ServiceName: "Orders", TracesEndpoint: "https://b:443/custom", TracesProtocol: ProtocolHTTPProtobuf}},
		{name: "the traces protocol wins", vars: map[string]string{EnvEndpoint: "http://a:4317", EnvProtocol: "http/protobuf", EnvTracesProtocol: "grpc"},
			want: Config{ServiceName: "Orders", TracesEndpoint: "http://a:4317", TracesProtocol: ProtocolGRPC}},
		{name: "OTEL_TRACES_EXPORTER=otlp without endpoint: the protocol's default", vars: map[string]string{EnvTracesExporter: "otlp"},
			want: Config{ServiceName: "Orders", TracesEndpoint: "http://localhost:4317", TracesProtocol: ProtocolGRPC}},
		{name: "OTEL_TRACES_EXPORTER=none", vars: map[string]string{EnvTracesExporter: "none", EnvEndpoint: "http://a:4317"},
			want: Config{ServiceName: "Orders", TracesProtocol: ProtocolGRPC}},
		{name: "the service name", vars: map[string]string{EnvServiceName: "shop"},
			want: Config{ServiceName: "shop", TracesProtocol: ProtocolGRPC}},
		{name: "an empty service name is the default", vars: map[string]string{EnvServiceName: ""},
			want: Config{ServiceName: "Orders", TracesProtocol: ProtocolGRPC}},
		{name: "the application's own setting first", app: "Orders", vars: map[string]string{EnvServiceName: "shop", "ORDERS_" + EnvServiceName: "orders-eu", "ORDERS_" + EnvMetricsAddress: ":9465", EnvMetricsAddress: ":9464"},
			want: Config{ServiceName: "orders-eu", TracesProtocol: ProtocolGRPC, MetricsAddress: ":9465"}},
		{name: "metrics", vars: map[string]string{EnvMetricsAddress: ":9464"},
			want: Config{ServiceName: "Orders", TracesProtocol: ProtocolGRPC, MetricsAddress: ":9464"}},
		{name: "disabled: no traces, the endpoints still served", vars: map[string]string{EnvSDKDisabled: "true", EnvEndpoint: "http://a:4317", EnvMetricsAddress: ":9464"},
			want: Config{Disabled: true, ServiceName: "Orders", TracesProtocol: ProtocolGRPC, MetricsAddress: ":9464"}},
		{name: "a protocol that is not built in", vars: map[string]string{EnvProtocol: "http/json"}, err: `OTEL_EXPORTER_OTLP_PROTOCOL="http/json"`},
		{name: "an exporter that is not built in", vars: map[string]string{EnvTracesExporter: "zipkin"}, err: `OTEL_TRACES_EXPORTER="zipkin"`},
		{name: "an endpoint without scheme", vars: map[string]string{EnvEndpoint: "127.0.0.1:4317"}, err: "is not a URL"},
		{name: "a misspelt boolean", vars: map[string]string{EnvSDKDisabled: "maybe"}, err: "OTEL_SDK_DISABLED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ConfigFromEnv(envOf(tc.app, tc.vars), "Orders")
			if tc.err != "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, config.ErrConfiguration)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// A collector that is down (nothing listens) neither fails Setup nor
// blocks the process: spans are dropped, and Shutdown returns within its
// bound.
func TestCollectorDown(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	for _, protocol := range []string{ProtocolGRPC, ProtocolHTTPProtobuf} {
		t.Run(protocol, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			cfg, err := ConfigFromEnv(envOf("", map[string]string{EnvEndpoint: "http://" + addr, EnvProtocol: protocol}), "test")
			require.NoError(t, err)
			began := time.Now()
			tel, err := Setup(context.Background(), cfg, logger)
			require.NoError(t, err)
			assert.Less(t, time.Since(began), time.Second, "Setup does not wait for the collector")
			otel.Handle(errors.New("traces export: connection refused")) // as the exporter reports it
			assert.Contains(t, logs.String(), `level=WARN msg="telemetry: export failed" error="traces export: connection refused"`)
			for range 100 {
				_, span := otel.Tracer("test").Start(context.Background(), "work")
				span.End()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			began = time.Now()
			err = tel.Shutdown(ctx)
			assert.Less(t, time.Since(began), 3*time.Second, "Shutdown gives up with its context")
			if err != nil {
				assert.Contains(t, err.Error(), "flush traces")
			}
			began = time.Now()
			assert.Equal(t, err, tel.Shutdown(ctx), "idempotent")
			assert.Less(t, time.Since(began), 100*time.Millisecond)
		})
	}
}

// The SDK reads OTEL_TRACES_SAMPLER itself: always_off records nothing,
// the default records every root span.
func TestSamplerFromEnv(t *testing.T) {
	for sampler, recording := range map[string]bool{"": true, "always_off": false, "parentbased_always_on": true} {
		t.Setenv("OTEL_TRACES_SAMPLER", sampler)
		tel, err := Setup(context.Background(), Config{ServiceName: "test", TracesEndpoint: "http://127.0.0.1:1", TracesProtocol: ProtocolGRPC}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		require.NoError(t, err)
		_, span := otel.Tracer("test").Start(context.Background(), "work")
		assert.Equal(t, recording, span.IsRecording(), "OTEL_TRACES_SAMPLER=%q", sampler)
		span.End()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_ = tel.Shutdown(ctx)
		cancel()
	}
}

func TestErrorLogIsRateLimited(t *testing.T) {
	var logs bytes.Buffer
	e := newErrorLog(slog.New(slog.NewTextHandler(&logs, nil)), 50*time.Millisecond)
	for range 10 {
		e.Handle(errors.New("connection refused"))
	}
	assert.Equal(t, 1, strings.Count(logs.String(), "export failed"), logs.String())
	time.Sleep(60 * time.Millisecond)
	e.Handle(errors.New("connection refused"))
	assert.Equal(t, 2, strings.Count(logs.String(), "export failed"))
	assert.Contains(t, logs.String(), "more=9", "the second line counts what was left out")
}

// /metrics shows what the global meter records, in Prometheus's text
// format, with the names the exporter derives from OpenTelemetry's.
func TestMetricsHandler(t *testing.T) {
	tel, err := Setup(context.Background(), Config{ServiceName: "test", MetricsAddress: "127.0.0.1:0"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	defer tel.Shutdown(context.Background())
	c, err := otel.Meter("test").Int64Counter("eventsourcing.test.things", metric.WithUnit("{thing}"))
	require.NoError(t, err)
	c.Add(context.Background(), 3, metric.WithAttributes(attribute.String("application", "Orders")))

	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	assert.Regexp(t, `(?m)^eventsourcing_test_things_total\{application="Orders",.*\} 3$`, body)
	assert.Regexp(t, `(?m)^target_info\{.*service_name="test"`, body)
	assert.Contains(t, body, "go_goroutines", "the Go runtime's metrics")

	// Without metrics (the SDK disabled): 404, and no error.
	off, err := Setup(context.Background(), Config{Disabled: true, MetricsAddress: ":0"}, nil)
	require.NoError(t, err)
	rec = httptest.NewRecorder()
	off.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.Equal(t, http.StatusNotFound, rec.Code)
	assert.Contains(t, rec.Body.String(), "OTEL_SDK_DISABLED")
}
