package grpcapp

// WithoutServerTelemetry and WithoutClientTelemetry install no
// instrumentation at all: the baseline of the telemetry benchmarks.
var (
	WithoutServerTelemetry ServerOption = func(o *serverOptions) { o.telemetry.off = true }
	WithoutClientTelemetry ClientOption = func(o *clientOptions) { o.telemetry.off = true }
)
