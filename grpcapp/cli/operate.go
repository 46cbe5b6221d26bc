package cli

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/operate"
)

// operations is a process's telemetry and operations endpoints.
type operations struct {
	tel *operate.Telemetry
	cfg operate.Config
	env config.Env
	ops *operate.Server
}

// startTelemetry installs OpenTelemetry from the environment of name (the
// served member, or "" for the runner and the client subcommands), before
// anything is built, so that every server, client and follower uses it.
func startTelemetry(ctx context.Context, name, defaultService string) (*operations, error) {
	env := config.NewEnv(name, nil)
	cfg, err := operate.ConfigFromEnv(env, defaultService)
	if err != nil {
		return nil, err
	}
	tel, err := operate.Setup(ctx, cfg, slog.Default())
	if err != nil {
		return nil, err
	}
	return &operations{tel: tel, cfg: cfg, env: env}, nil
}

// serve starts the operations endpoints when METRICS_ADDRESS is set,
// judging readiness from progress.
func (o *operations) serve(ctx context.Context, progress operate.Progress) error {
	if o.cfg.MetricsAddress == "" {
		return nil
	}
	rules, err := operate.ReadinessFromEnv(o.env)
	if err != nil {
		return err
	}
	o.ops = operate.NewServer(o.cfg.MetricsAddress, operate.WithMetrics(o.tel.MetricsHandler()),
		operate.WithProgress(progress), operate.WithReadiness(rules))
	return o.ops.Start(ctx)
}

// stopEndpoints makes /readyz answer 503 and closes the endpoints; the
// first thing a stopping process does, so that it leaves a load
// balancer before it stops serving.
func (o *operations) stopEndpoints() error {
	if o == nil || o.ops == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return o.ops.Stop(ctx)
}

// close stops the endpoints and flushes pending spans (for at most three
// seconds: a collector that is down does not hold the exit up).
func (o *operations) close() error {
	if o == nil {
		return nil
	}
	return errors.Join(o.stopEndpoints(), o.tel.Shutdown(context.Background()))
}
