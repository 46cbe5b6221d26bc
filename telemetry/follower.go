package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// Outcome is what processing one upstream event came to.
type Outcome int

// The outcomes of processing, the values of the outcome attribute.
const (
	// Applied: the handler recorded the event's effects.
	Applied Outcome = iota
	// Ignored: the handler recorded nothing (the follower records the position).
	Ignored
	// Failed: decoding or the handler failed; the follower stops, or
	// retries when the error is retryable.
	Failed
	// Skipped: it failed and was recorded as a dead letter (SkipFailed).
	Skipped
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"applied", "ignored", "failed", "skipped"}

func (o Outcome) String() string {
	if o >= 0 && o < numOutcomes {
		return outcomeNames[o]
	}
	return "unknown"
}

// Lag units, the values of the unit attribute.
const (
	UnitEvents    = "events"
	UnitPositions = "positions"
)

// Follower is the telemetry of one follower or projection of one upstream.
// Its methods are safe on a nil *Follower (telemetry not configured) and,
// except Observe, are called with the follower's processing serialised.
type Follower struct {
	t         *Telemetry
	spanName  string
	spanOpts  []trace.SpanStartOption
	counted   [numOutcomes][]metric.AddOption
	timed     [numOutcomes][]metric.RecordOption
	lag       [2][]metric.ObserveOption // events, positions
	base      []metric.ObserveOption
	states    [][]metric.ObserveOption
	outcome   [numOutcomes]attribute.KeyValue
	pending   [numOutcomes]int64
	anyPended bool
}

// Follower returns the telemetry of the named follower of upstream; states
// names the follower's states, in the order Observation.State counts them.
func (t *Telemetry) Follower(name, upstream string, states []string) *Follower {
	base := []attribute.KeyValue{KeyFollower.String(name), KeyUpstream.String(upstream)}
	with := func(kv ...attribute.KeyValue) attribute.Set {
		return attribute.NewSet(append(base[:len(base):len(base)], kv...)...)
	}
	f := &Follower{
		t:        t,
		spanName: "process " + upstream,
		spanOpts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(base...)},
		base:     []metric.ObserveOption{metric.WithAttributeSet(with())},
	}
	for o := range numOutcomes {
		kv := KeyOutcome.String(o.String())
		set := with(kv)
		f.outcome[o] = kv
		f.counted[o] = []metric.AddOption{metric.WithAttributeSet(set)}
		f.timed[o] = []metric.RecordOption{metric.WithAttributeSet(set)}
	}
	for i, unit := range []string{UnitEvents, UnitPositions} {
		f.lag[i] = []metric.ObserveOption{metric.WithAttributeSet(with(KeyUnit.String(unit)))}
	}
	f.states = make([][]metric.ObserveOption, len(states))
	for i, s := range states {
		f.states[i] = []metric.ObserveOption{metric.WithAttributeSet(with(KeyState.String(s)))}
	}
	return f
}

// StartProcessing starts processing an upstream notification: a span that
// is the child of the span that recorded the event when the event carries
// its trace context (else of the span in ctx, or a new trace), when a tracer
// provider is configured; and the clock of the processing duration.
func (f *Follower) StartProcessing(ctx context.Context, n recorder.Notification) (context.Context, trace.Span, Timer) {
	if f == nil {
		return ctx, nil, Timer{}
	}
	var span trace.Span
	if f.t.tracing {
		if sc := SpanContextOf(n.TraceParent); sc.IsValid() {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		}
		ctx, span = f.t.tracer.Start(ctx, f.spanName, f.spanOpts...)
		span.SetAttributes(KeyNotificationID.Int64(n.ID), KeyTopic.String(n.Topic),
			KeyOriginatorID.String(n.OriginatorID), KeyOriginatorVersion.Int64(n.OriginatorVersion))
	}
	var start Timer
	if f.t.inst.processingDuration.Enabled(ctx) {
		start = StartTimer()
	}
	return ctx, span, start
}

// Processed ends what StartProcessing started with the event's outcome.
// With deferred (the event is processed inside a batch that may yet be
// rolled back), the outcome is counted by Commit, or forgotten by Discard.
func (f *Follower) Processed(ctx context.Context, span trace.Span, start Timer, o Outcome, err error, deferred bool) {
	if f == nil {
		return
	}
	if start.on {
		f.t.inst.processingDuration.Record(ctx, start.Seconds(), f.timed[o]...)
	}
	if deferred {
		f.pending[o]++
		f.anyPended = true
	} else if f.t.inst.eventsProcessed.Enabled(ctx) {
		f.t.inst.eventsProcessed.Add(ctx, 1, f.counted[o]...)
	}
	if span != nil {
		span.SetAttributes(f.outcome[o])
		if o == Skipped && err == nil {
			span.SetStatus(codes.Error, "skipped as a dead letter")
		}
	}
	End(span, err)
}

// Commit counts the outcomes deferred since the last Commit or Discard.
func (f *Follower) Commit(ctx context.Context) {
	if f == nil || !f.anyPended {
		return
	}
	enabled := f.t.inst.eventsProcessed.Enabled(ctx)
	for o, n := range f.pending {
		if n > 0 && enabled {
			f.t.inst.eventsProcessed.Add(ctx, n, f.counted[o]...)
		}
	}
	f.Discard()
}

// Discard forgets the outcomes deferred since the last Commit or Discard:
// their batch was rolled back and will be processed again.
func (f *Follower) Discard() {
	if f == nil {
		return
	}
	f.pending, f.anyPended = [numOutcomes]int64{}, false
}

// Observation is a follower's progress, read by the meter's collection.
type Observation struct {
	// State counts in the states given to Telemetry.Follower.
	State int
	// Position is the upstream notification id recorded as processed.
	Position    int64
	HasPosition bool
	// Lag is how far the position is behind the upstream's head, in
	// positions when LagInPositions (ids are positions, not counts).
	Lag            int64
	LagInPositions bool
	// Subscriptions counts the live subscriptions opened since the start.
	Subscriptions int64
}

// Observe registers observe with the meter: every collection reports the
// lag, position, resubscribes and state it returns (nothing when it returns
// false). It returns the function that unregisters it; it does nothing when
// no meter provider is configured.
func (f *Follower) Observe(observe func(context.Context) (Observation, bool)) (unregister func(), err error) {
	if f == nil || !f.t.metering {
		return func() {}, nil
	}
	in := &f.t.inst
	reg, err := f.t.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		obs, ok := observe(ctx)
		if !ok {
			return nil
		}
		unit := 0
		if obs.LagInPositions {
			unit = 1
		}
		o.ObserveInt64(in.lag, obs.Lag, f.lag[unit]...)
		if obs.HasPosition {
			o.ObserveInt64(in.position, obs.Position, f.base...)
		}
		o.ObserveInt64(in.resubscribes, max(obs.Subscriptions-1, 0), f.base...)
		for i, opts := range f.states {
			v := int64(0)
			if i == obs.State {
				v = 1
			}
			o.ObserveInt64(in.state, v, opts...)
		}
		return nil
	}, in.lag, in.position, in.resubscribes, in.state)
	if err != nil {
		return func() {}, err
	}
	return func() { _ = reg.Unregister() }, nil
}
