package grpcapp

import (
	"testing"

	"github.com/stretchr/testify/assert"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// A server or client whose providers record nothing (the globals before a
// program sets them, the no-op providers, or none at all) installs no
// interceptors; one provider that records is enough to install them.
func TestTelemetryInstalledOnlyWhenRecording(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	mp := sdkmetric.NewMeterProvider()
	for _, c := range []struct {
		name      string
		t         instrumentation
		installed bool
	}{
		{"globals, not set", instrumentation{}, false},
		{"no-op providers", instrumentation{Telemetry: Telemetry{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()}}, false},
		{"off", instrumentation{Telemetry: Telemetry{TracerProvider: tp, MeterProvider: mp}, off: true}, false},
		{"tracer", instrumentation{Telemetry: Telemetry{TracerProvider: tp}}, true},
		{"meter", instrumentation{Telemetry: Telemetry{MeterProvider: mp}}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := c.t.server("Orders", nil)
			assert.Equal(t, c.installed, st.serverOptions() != nil)
			assert.Equal(t, c.installed, c.t.dialOptions("localhost:50051") != nil)
		})
	}
}

// The status codes' names are the conventions' (CANCELLED, not Canceled).
func TestCodeNames(t *testing.T) {
	assert.Equal(t, "OK", codeName(0))
	assert.Equal(t, "CANCELLED", codeName(1))
	assert.Equal(t, "NOT_FOUND", codeName(5))
	assert.Equal(t, "UNAUTHENTICATED", codeName(16))
}
