package telemetry

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric names. The Prometheus exporter shows them with underscores, a unit
// suffix for seconds and _total on counters (eventsourcing_events_recorded_total).
const (
	MetricEventsRecorded     = "eventsourcing.events.recorded"
	MetricAppendDuration     = "eventsourcing.append.duration"
	MetricReadDuration       = "eventsourcing.read.duration"
	MetricProcessingDuration = "eventsourcing.processing.duration"
	MetricEventsProcessed    = "eventsourcing.events.processed"
	MetricLag                = "eventsourcing.subscription.lag"
	MetricPosition           = "eventsourcing.subscription.position"
	MetricResubscribes       = "eventsourcing.subscription.resubscribes"
	MetricState              = "eventsourcing.follower.state"
)

// Attribute keys, on spans and metrics alike.
const (
	// KeyApplication names the application that records or reads.
	KeyApplication = attribute.Key("application")
	// KeyFollower names a follower or projection; KeyUpstream the
	// application it follows.
	KeyFollower = attribute.Key("follower")
	KeyUpstream = attribute.Key("upstream")
	// KeyOutcome is what processing an upstream event came to (Outcome).
	KeyOutcome = attribute.Key("outcome")
	// KeyUnit is what a lag is counted in: "events" or "positions".
	KeyUnit = attribute.Key("unit")
	// KeyState is a follower state's name ("live", "failed", ...).
	KeyState = attribute.Key("state")
	// KeyDBSystem and KeyDBOperation are OpenTelemetry's database
	// conventions: the backend ("memory", "sqlite", "postgresql",
	// "eventstoredb") and the recorder operation ("insert_events", ...).
	KeyDBSystem    = attribute.Key("db.system.name")
	KeyDBOperation = attribute.Key("db.operation.name")
	// Span attributes of the events concerned.
	KeyOriginatorID      = attribute.Key("eventsourcing.originator_id")
	KeyOriginatorVersion = attribute.Key("eventsourcing.originator_version")
	KeyTopic             = attribute.Key("eventsourcing.topic")
	KeyNotificationID    = attribute.Key("eventsourcing.notification_id")
	KeyEventCount        = attribute.Key("eventsourcing.events")
	// KeyMethod names the command or query a span is of; KeyQuery says
	// whether it is a query.
	KeyMethod = attribute.Key("eventsourcing.method")
	KeyQuery  = attribute.Key("eventsourcing.query")
	errorType = attribute.Key("error.type")
)

// durationBuckets suit operations from microseconds (memory) to seconds (a
// remote store under load), in seconds.
var durationBuckets = []float64{
	0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

type instruments struct {
	eventsRecorded     metric.Int64ObservableCounter
	appendDuration     metric.Float64Histogram
	readDuration       metric.Float64Histogram
	processingDuration metric.Float64Histogram
	eventsProcessed    metric.Int64Counter
	lag                metric.Int64ObservableGauge
	position           metric.Int64ObservableGauge
	resubscribes       metric.Int64ObservableCounter
	state              metric.Int64ObservableGauge
}

// newInstruments creates the instruments; one that fails to be created is
// reported to otel.Handle and records nothing (the API returns a no-op one).
func newInstruments(m metric.Meter) instruments {
	var in instruments
	var err error
	note := func(e error) {
		if e != nil && err == nil {
			err = e
		}
	}
	var e error
	in.eventsRecorded, e = m.Int64ObservableCounter(MetricEventsRecorded, metric.WithUnit("{event}"),
		metric.WithDescription("Events recorded by an application."))
	note(e)
	in.appendDuration, e = m.Float64Histogram(MetricAppendDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of a recorder write (events, tracking)."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	note(e)
	in.readDuration, e = m.Float64Histogram(MetricReadDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of a recorder read (an aggregate's events, a page of notifications)."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	note(e)
	in.processingDuration, e = m.Float64Histogram(MetricProcessingDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of processing one upstream event by a follower or projection."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	note(e)
	in.eventsProcessed, e = m.Int64Counter(MetricEventsProcessed, metric.WithUnit("{event}"),
		metric.WithDescription("Upstream events processed by a follower or projection, by outcome."))
	note(e)
	in.lag, e = m.Int64ObservableGauge(MetricLag,
		metric.WithDescription("How far a follower is behind its upstream's head, in events or positions (the unit attribute)."))
	note(e)
	in.position, e = m.Int64ObservableGauge(MetricPosition,
		metric.WithDescription("The upstream notification id a follower has recorded as processed."))
	note(e)
	in.resubscribes, e = m.Int64ObservableCounter(MetricResubscribes, metric.WithUnit("{subscription}"),
		metric.WithDescription("Live subscriptions a follower opened again after the first (drops, restarts)."))
	note(e)
	in.state, e = m.Int64ObservableGauge(MetricState,
		metric.WithDescription("1 for a follower's current state, 0 for its other states."))
	note(e)
	if err != nil {
		otel.Handle(err)
	}
	return in
}
