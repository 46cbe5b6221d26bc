package eventsourcing

import (
	"context"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/telemetry"
)

// instrument wraps the application's recorders in telemetry's decorators
// when a tracer or meter provider is configured (Options.Telemetry, or
// OpenTelemetry's global providers as they are now). Otherwise it leaves
// them alone, and saves and gets cost one nil check.
func (a *Application) instrument(p telemetry.Providers) {
	t := telemetry.New(p)
	if t == nil {
		return
	}
	a.tel = t.Application(a.name)
	if a.process != nil {
		a.process = a.tel.ProcessRecorder(a.process)
		a.recorder = a.process
	} else {
		a.recorder = a.tel.ApplicationRecorder(a.recorder)
	}
}

// saveTraced is save inside a span of its own when ctx holds a recording
// span; the stored events then carry that span's W3C trace context.
func (a *Application) saveTraced(ctx context.Context, b Batch, n int) ([]Recording, error) {
	ctx, span := a.tel.StartSave(ctx, n)
	if span == nil {
		return a.save(ctx, b, n, "")
	}
	recs, err := a.save(ctx, b, n, telemetry.TraceParent(ctx))
	telemetry.End(span, err)
	return recs, err
}

// getTraced is fetch inside a span of its own when ctx holds a recording span.
func (r *Repository) getTraced(ctx context.Context, fresh Root, id uuid.UUID, o getOptions) (Root, error) {
	ctx, span := r.tel.StartGet(ctx, id)
	if span == nil {
		return r.fetch(ctx, fresh, id, o)
	}
	root, err := r.fetch(ctx, fresh, id, o)
	telemetry.End(span, err)
	return root, err
}

// Telemetry returns the application's telemetry, nil when no tracer or
// meter provider was configured when it was built. Servers start command
// spans with it (telemetry.App.StartCommand is safe on nil).
func (a *Application) Telemetry() *telemetry.App {
	if a == nil {
		return nil
	}
	return a.tel
}
