// Package telemetry is the framework's OpenTelemetry instrumentation:
// traces of saves, gets, recorder calls, commands and the processing of
// upstream events, with the trace context carried in stored events from one
// application to the next; and metrics of what is recorded, how long
// storage takes, what followers and projections process and how far behind
// they are.
//
// # Enabling
//
// Nothing is recorded unless OpenTelemetry is configured. Applications and
// followers use OpenTelemetry's global providers, as instrumented libraries
// do, so a program sets them once, before it builds its applications:
//
//	otel.SetTracerProvider(tracerProvider)
//	otel.SetMeterProvider(meterProvider)
//
// or passes providers explicitly, in eventsourcing.Options.Telemetry and
// follow.Config.Telemetry (system, projection and grpcapp reach the latter
// through their follow.Config options):
//
//	app, err := eventsourcing.NewApplication(ctx, eventsourcing.Options{
//		Name: "Orders", Types: types,
//		Telemetry: telemetry.Providers{TracerProvider: tp, MeterProvider: mp},
//	})
//
// Whether telemetry is live is decided once, when the application or
// follower is built: with the global providers not yet set, or
// OpenTelemetry's no-op providers, the recorders are not wrapped and a save
// costs one nil check. (A span started on an unset global tracer costs
// several allocations, which would be a quarter of a save on the memory
// backend.) Set the providers first; an application built before them stays
// uninstrumented.
//
// The cost when enabled is that of the SDK: a duration histogram is one
// measurement and two clock reads per recorder call. An SDK view that drops
// an instrument (sdkmetric.NewView with sdkmetric.AggregationDrop) turns its
// measurement and the clock reads off.
//
// # Traces
//
// Tracer and meter are named ScopeName. Saves and reads are traced inside a
// trace only (a gRPC server span, a follower's processing span, a span of
// the caller's own), never as traces of their own:
//
//   - "save <App>" (internal): Save, SaveWithTracking and SaveBatch. The
//     events saved carry the W3C traceparent of this span
//     (recorder.StoredEvent.TraceParent).
//   - "get <App>" (internal): eventsourcing.Get and Repository.Load.
//   - "<operation> <App>" (client): the recorder calls insert_events,
//     select_events, select_notifications, max_notification_id and
//     insert_tracking, with db.system.name, db.operation.name, application
//     and, where one is concerned, eventsourcing.originator_id.
//   - "<App>.<Method>" (internal), "Orders.CreateNewOrder": a command a
//     program runs (App.StartCommand), with application, eventsourcing.method
//     and eventsourcing.query; a new trace when there is none. grpcapp's
//     server span of a call of a command or query has the same name and
//     attributes (CommandSpan).
//   - "process <Upstream>" (consumer): a follower or projection processing
//     one upstream event, with follower, upstream, outcome,
//     eventsourcing.notification_id, eventsourcing.topic,
//     eventsourcing.originator_id and eventsourcing.originator_version. It
//     is the child of the span that saved the event when the event carries
//     its trace context, so one trace follows an event across applications
//     and processes; a process application's save in the handler continues
//     it. Events without a trace context start a new trace.
//
// Failed operations set the span's status to Error, record the error, and
// add error.type (integrity, operational, connection_unavailable, data,
// programming, not_supported, ..., or other).
//
// Which backends keep the trace context: memory keeps it beside its
// records; EventStoreDB keeps it in the event metadata under the members the
// official clients' instrumentation uses ("$traceId", "$spanId"), so traces
// continue across clients; SQLite and PostgreSQL keep it in a nullable
// column of the events table (added to older tables when tables are
// created). Over gRPC, notifications carry it.
//
// # Metrics
//
// Names use dots; the Prometheus exporter writes them with underscores,
// "_seconds" for durations and "_total" for counters
// (eventsourcing_events_recorded_total). The application, follower and
// upstream are attributes, never part of a name.
//
//	name                                     instrument                unit            attributes
//	eventsourcing.events.recorded            counter (observable)      {event}         application, db.system.name
//	eventsourcing.append.duration            histogram                 s               application, db.system.name, db.operation.name (insert_events, insert_tracking), error.type on failure
//	eventsourcing.read.duration              histogram                 s               application, db.system.name, db.operation.name (select_events, select_notifications, max_notification_id), error.type on failure
//	eventsourcing.processing.duration        histogram                 s               follower, upstream, outcome
//	eventsourcing.events.processed           counter                   {event}         follower, upstream, outcome
//	eventsourcing.subscription.lag           gauge (observable)        (see unit)      follower, upstream, unit
//	eventsourcing.subscription.position      gauge (observable)                        follower, upstream
//	eventsourcing.subscription.resubscribes  counter (observable)      {subscription}  follower, upstream
//	eventsourcing.follower.state             gauge (observable)                        follower, upstream, state
//
// outcome is applied (the handler recorded the event's effects), ignored
// (it recorded nothing), failed (decoding or the handler failed: the
// follower stops, or retries a retryable error) or skipped (failed and
// recorded as a dead letter). Outcomes of a batch that is rolled back are
// not counted; its events are counted when processed again.
//
// The lag is the upstream's head minus the follower's recorded position,
// in events where notification ids count events (unit="events": memory,
// SQLite, PostgreSQL) and in positions where they are positions
// (unit="positions": EventStoreDB's commit positions). Lag, position,
// resubscribes (live subscriptions opened after the first) and state are
// read from the follower's status at each collection, which reads the
// upstream's head (for at most a second). state has one series per state
// (idle, catching up, live, backing off, failed, stopped): 1 for the
// current state, 0 for the others. A follower's readings stop when it is
// garbage-collected.
//
// Durations use buckets from 10 µs to 10 s.
package telemetry
