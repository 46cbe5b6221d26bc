package follow

import (
	"context"
	"runtime"
	"weak"

	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/telemetry"
)

// instrument sets up the follower's traces and metrics when a tracer or
// meter provider is configured (Config.Telemetry, or OpenTelemetry's global
// providers as they are when New runs); otherwise f.tel stays nil and
// processing costs one nil check per event.
func (f *Follower) instrument() {
	t := telemetry.New(f.cfg.Telemetry)
	if t == nil {
		return
	}
	f.tel = t.Follower(f.cfg.Name, f.cfg.Upstream, stateNames[:])
	// The meter's callback holds the follower weakly, and is unregistered
	// when the follower is collected: a follower needs no Close.
	wp := weak.Make(f)
	unregister, err := f.tel.Observe(func(ctx context.Context) (telemetry.Observation, bool) {
		f := wp.Value()
		if f == nil {
			return telemetry.Observation{}, false
		}
		return f.observation(ctx), true
	})
	if err != nil {
		f.logger.Warn("follower metrics: observing progress", "error", err)
		return
	}
	runtime.AddCleanup(f, func(stop func()) { stop() }, unregister)
}

// observation is the follower's progress for the meter.
func (f *Follower) observation(ctx context.Context) telemetry.Observation {
	s := f.status(ctx, false)
	return telemetry.Observation{
		State: int(s.State), Position: s.Position, HasPosition: s.HasPosition,
		Lag: s.Lag, LagInPositions: s.LagUnit == Positions, Subscriptions: s.Subscriptions,
	}
}

// handleObserved is handle inside the event's processing span, with its
// duration and outcome measured. In a batch (batched), outcomes are counted
// when the batch commits.
func (f *Follower) handleObserved(ctx context.Context, n recorder.Notification, batched bool) (bool, error) {
	if f.tel == nil {
		return f.handle(ctx, n)
	}
	pctx, span, start := f.tel.StartProcessing(ctx, n)
	dead := f.deadLetterCount()
	recorded, err := f.handle(pctx, n)
	if err != nil && ctx.Err() != nil {
		telemetry.End(span, err) // stopped, not failed
		return recorded, err
	}
	outcome := telemetry.Applied
	switch {
	case err != nil:
		outcome = telemetry.Failed
	case f.deadLetterCount() > dead:
		outcome = telemetry.Skipped
	case !recorded:
		outcome = telemetry.Ignored
	}
	f.tel.Processed(pctx, span, start, outcome, err, batched)
	return recorded, err
}

func (f *Follower) deadLetterCount() int {
	f.smu.Lock()
	defer f.smu.Unlock()
	return f.deadTotal
}
