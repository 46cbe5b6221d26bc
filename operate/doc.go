// Package operate is what an operator of an event-sourced service sees:
// OpenTelemetry set up from the standard OTEL_* variables (Setup), and the
// HTTP operations endpoints /metrics, /healthz and /readyz (Server), with
// readiness judged from the progress of the process's followers and
// projections.
//
// Package grpcapp/cli (the eventsourcing-grpc command's library) uses both;
// a program that serves its own applications can too:
//
//	cfg, err := operate.ConfigFromEnv(config.NewEnv("Orders", nil), "Orders")
//	tel, err := operate.Setup(ctx, cfg, logger) // before building applications
//	defer tel.Shutdown(context.Background())
//	...
//	ops := operate.NewServer(cfg.MetricsAddress, operate.WithMetrics(tel.MetricsHandler()), operate.WithProgress(server))
//	err = ops.Start(ctx)
//	defer ops.Stop(context.Background())
package operate
