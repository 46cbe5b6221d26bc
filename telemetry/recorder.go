package telemetry

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// System is implemented by recorders that name their database system, as
// OpenTelemetry's db.system.name: "memory", "sqlite", "postgresql",
// "eventstoredb".
type System interface {
	DBSystemName() string
}

// SystemOf returns the database system v names (System), or "other".
func SystemOf(v any) string {
	if s, ok := v.(System); ok {
		if name := s.DBSystemName(); name != "" {
			return name
		}
	}
	return "other"
}

// App is the telemetry of one application: the spans of its saves and gets,
// and the recorders it wraps.
type App struct {
	t        *Telemetry
	name     string
	saveSpan string
	getSpan  string
	saveOpts []trace.SpanStartOption
	getOpts  []trace.SpanStartOption
}

// Application returns the telemetry of the named application.
func (t *Telemetry) Application(name string) *App {
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(KeyApplication.String(name))}
	return &App{t: t, name: name, saveSpan: "save " + name, getSpan: "get " + name, saveOpts: opts, getOpts: opts}
}

// StartSave starts the span of a save of n events, inside the recording
// span of ctx only; it returns a nil span otherwise. End it with End.
func (a *App) StartSave(ctx context.Context, n int) (context.Context, trace.Span) {
	if !recording(ctx) {
		return ctx, nil
	}
	ctx, span := a.t.tracer.Start(ctx, a.saveSpan, a.saveOpts...)
	span.SetAttributes(KeyEventCount.Int(n))
	return ctx, span
}

// StartGet starts the span of getting an aggregate, inside the recording
// span of ctx only; it returns a nil span otherwise. End it with End.
func (a *App) StartGet(ctx context.Context, id uuid.UUID) (context.Context, trace.Span) {
	if !recording(ctx) {
		return ctx, nil
	}
	ctx, span := a.t.tracer.Start(ctx, a.getSpan, a.getOpts...)
	span.SetAttributes(KeyOriginatorID.String(id.String()))
	return ctx, span
}

// Recorder operations (db.operation.name).
const (
	opInsertEvents = iota
	opSelectEvents
	opSelectNotifications
	opMaxNotificationID
	opInsertTracking
	numOps
)

var opNames = [numOps]string{"insert_events", "select_events", "select_notifications", "max_notification_id", "insert_tracking"}

// op is one recorder operation of one application on one backend, with its
// attributes computed once.
type op struct {
	span     string
	spanOpts []trace.SpanStartOption
	hist     metric.Float64Histogram
	attrs    []attribute.KeyValue
	ok       []metric.RecordOption
}

// wrapped is what the recorder wrappers share.
type wrapped struct {
	t      *Telemetry
	system string
	ops    [numOps]op
	// recorded counts the events recorded, which the meter reads at each
	// collection: an atomic add per write instead of a measurement.
	recorded     *atomic.Int64
	recordedOpts []metric.ObserveOption
}

func (a *App) wrap(rec any) wrapped {
	system := SystemOf(rec)
	w := wrapped{t: a.t, system: system}
	for i := range numOps {
		attrs := []attribute.KeyValue{KeyApplication.String(a.name), KeyDBSystem.String(system), KeyDBOperation.String(opNames[i])}
		hist := a.t.inst.readDuration
		if i == opInsertEvents || i == opInsertTracking {
			hist = a.t.inst.appendDuration
		}
		w.ops[i] = op{
			span: opNames[i] + " " + a.name,
			spanOpts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient),
				trace.WithAttributes(attrs...)},
			hist:  hist,
			attrs: attrs,
			ok:    []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attrs...))},
		}
	}
	w.recorded = new(atomic.Int64)
	w.recordedOpts = []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(
		KeyApplication.String(a.name), KeyDBSystem.String(system)))}
	return w
}

// observe registers the count of events recorded through w with the meter,
// until wrapper (which holds w) is garbage-collected.
func observe[T any](wrapper *T, w *wrapped) *T {
	if !w.t.metering {
		return wrapper
	}
	count, opts, inst := w.recorded, w.recordedOpts, w.t.inst.eventsRecorded
	reg, err := w.t.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(inst, count.Load(), opts...)
		return nil
	}, inst)
	if err != nil {
		otel.Handle(err)
		return wrapper
	}
	runtime.AddCleanup(wrapper, func(reg metric.Registration) { _ = reg.Unregister() }, reg)
	return wrapper
}

// begin starts an operation: its span inside a recording span only, its
// clock when its histogram records.
func (w *wrapped) begin(ctx context.Context, o *op) (context.Context, trace.Span, Timer) {
	var span trace.Span
	if recording(ctx) {
		ctx, span = w.t.tracer.Start(ctx, o.span, o.spanOpts...)
	}
	var start Timer
	if o.hist.Enabled(ctx) {
		start = StartTimer()
	}
	return ctx, span, start
}

func (w *wrapped) finish(ctx context.Context, o *op, span trace.Span, start Timer, err error) {
	if start.on {
		d := start.Seconds()
		if err == nil {
			o.hist.Record(ctx, d, o.ok...)
		} else {
			attrs := append(o.attrs[:len(o.attrs):len(o.attrs)], errorType.String(errorClass(err)))
			o.hist.Record(ctx, d, metric.WithAttributes(attrs...))
		}
	}
	End(span, err)
}

func (w *wrapped) insert(ctx context.Context, events []recorder.StoredEvent, opts []recorder.InsertOption,
	insert func(context.Context, []recorder.StoredEvent, ...recorder.InsertOption) ([]int64, error)) ([]int64, error) {
	o := &w.ops[opInsertEvents]
	ctx, span, start := w.begin(ctx, o)
	if span != nil && len(events) > 0 {
		span.SetAttributes(KeyOriginatorID.String(events[0].OriginatorID), KeyEventCount.Int(len(events)))
	}
	ids, err := insert(ctx, events, opts...)
	w.finish(ctx, o, span, start, err)
	if err == nil {
		w.recorded.Add(int64(len(events)))
	}
	return ids, err
}

func (w *wrapped) selectEvents(ctx context.Context, rec recorder.AggregateRecorder, id string, q recorder.EventQuery) ([]recorder.StoredEvent, error) {
	o := &w.ops[opSelectEvents]
	ctx, span, start := w.begin(ctx, o)
	if span != nil {
		span.SetAttributes(KeyOriginatorID.String(id))
	}
	events, err := rec.SelectEvents(ctx, id, q)
	w.finish(ctx, o, span, start, err)
	return events, err
}

// DBSystemName returns the wrapped recorder's database system.
func (w *wrapped) DBSystemName() string { return w.system }

// ApplicationRecorder wraps rec so that its writes and reads are traced and
// measured as the application's. Optional methods that the framework looks
// for (SparseNotificationIDs) are passed on.
func (a *App) ApplicationRecorder(rec recorder.ApplicationRecorder) recorder.ApplicationRecorder {
	if r, ok := rec.(*applicationRecorder); ok {
		return r
	}
	r := &applicationRecorder{wrapped: a.wrap(rec), rec: rec}
	return observe(r, &r.wrapped)
}

// ProcessRecorder is ApplicationRecorder for process recorders; tracking
// writes are measured as appends (insert_tracking).
func (a *App) ProcessRecorder(rec recorder.ProcessRecorder) recorder.ProcessRecorder {
	if r, ok := rec.(*processRecorder); ok {
		return r
	}
	r := &processRecorder{applicationRecorder: applicationRecorder{wrapped: a.wrap(rec), rec: rec}}
	r.trackingCalls = trackingCalls{w: &r.wrapped, rec: rec}
	return observe(r, &r.wrapped)
}

// TrackingRecorder wraps a tracking recorder (a projection's view) so that
// its tracking writes are traced and measured.
func (a *App) TrackingRecorder(rec recorder.TrackingRecorder) recorder.TrackingRecorder {
	if r, ok := rec.(*trackingRecorder); ok {
		return r
	}
	r := &trackingRecorder{wrapped: a.wrap(rec)}
	r.trackingCalls = trackingCalls{w: &r.wrapped, rec: rec}
	return observe(r, &r.wrapped)
}

type applicationRecorder struct {
	wrapped
	rec recorder.ApplicationRecorder
}

// Unwrap returns the recorder that was wrapped.
func (r *applicationRecorder) Unwrap() recorder.ApplicationRecorder { return r.rec }

func (r *applicationRecorder) InsertEvents(ctx context.Context, events []recorder.StoredEvent, opts ...recorder.InsertOption) ([]int64, error) {
	return r.insert(ctx, events, opts, r.rec.InsertEvents)
}

func (r *applicationRecorder) SelectEvents(ctx context.Context, originatorID string, q recorder.EventQuery) ([]recorder.StoredEvent, error) {
	return r.selectEvents(ctx, r.rec, originatorID, q)
}

// eventViewer is implemented by recorders that hand out an originator's
// events as views of their own memory (the memory recorder), which the
// repository's replay uses to copy no state.
type eventViewer interface {
	AppendEventViews(ctx context.Context, dst []recorder.StoredEvent, originatorID string, q recorder.EventQuery) ([]recorder.StoredEvent, error)
}

// AppendEventViews is SelectEvents appending to dst, with the wrapped
// recorder's views of its memory when it has them (else copies, which are
// views too), so that replays keep the memory recorder's fast path.
func (r *applicationRecorder) AppendEventViews(ctx context.Context, dst []recorder.StoredEvent, originatorID string, q recorder.EventQuery) ([]recorder.StoredEvent, error) {
	o := &r.ops[opSelectEvents]
	ctx, span, start := r.begin(ctx, o)
	if span != nil {
		span.SetAttributes(KeyOriginatorID.String(originatorID))
	}
	var events []recorder.StoredEvent
	var err error
	if v, ok := r.rec.(eventViewer); ok {
		events, err = v.AppendEventViews(ctx, dst, originatorID, q)
	} else {
		var got []recorder.StoredEvent
		if got, err = r.rec.SelectEvents(ctx, originatorID, q); err == nil {
			events = append(dst, got...)
		}
	}
	r.finish(ctx, o, span, start, err)
	return events, err
}

func (r *applicationRecorder) SelectNotifications(ctx context.Context, q recorder.NotificationQuery) ([]recorder.Notification, error) {
	o := &r.ops[opSelectNotifications]
	ctx, span, start := r.begin(ctx, o)
	ns, err := r.rec.SelectNotifications(ctx, q)
	r.finish(ctx, o, span, start, err)
	return ns, err
}

func (r *applicationRecorder) MaxNotificationID(ctx context.Context) (int64, bool, error) {
	o := &r.ops[opMaxNotificationID]
	ctx, span, start := r.begin(ctx, o)
	id, ok, err := r.rec.MaxNotificationID(ctx)
	r.finish(ctx, o, span, start, err)
	return id, ok, err
}

func (r *applicationRecorder) Subscribe(ctx context.Context, after recorder.Position, topics []string) (recorder.Subscription, error) {
	return r.rec.Subscribe(ctx, after, topics)
}

// SparseNotificationIDs passes on the wrapped recorder's answer (false when
// it has none), so that lag is still counted in the right unit.
func (r *applicationRecorder) SparseNotificationIDs() bool {
	s, ok := r.rec.(interface{ SparseNotificationIDs() bool })
	return ok && s.SparseNotificationIDs()
}

type processRecorder struct {
	applicationRecorder
	trackingCalls
}

// Unwrap returns the process recorder that was wrapped.
func (r *processRecorder) Unwrap() recorder.ApplicationRecorder { return r.applicationRecorder.rec }

type trackingRecorder struct {
	wrapped
	trackingCalls
}

// Unwrap returns the tracking recorder that was wrapped.
func (r *trackingRecorder) Unwrap() recorder.TrackingRecorder { return r.trackingCalls.rec }

// trackingCalls are the tracking methods that process and tracking recorders
// share: writes are traced and measured through w, reads pass through.
type trackingCalls struct {
	w   *wrapped
	rec recorder.TrackingRecorder
}

func (c trackingCalls) InsertTracking(ctx context.Context, t recorder.Tracking) error {
	return insertTracking(ctx, c.w, c.rec, t)
}

func (c trackingCalls) MaxTrackingID(ctx context.Context, applicationName string) (int64, bool, error) {
	return c.rec.MaxTrackingID(ctx, applicationName)
}

func (c trackingCalls) HasTrackingID(ctx context.Context, applicationName string, notificationID int64) (bool, error) {
	return c.rec.HasTrackingID(ctx, applicationName, notificationID)
}

func (c trackingCalls) Wait(ctx context.Context, applicationName string, notificationID int64, timeout time.Duration) error {
	return c.rec.Wait(ctx, applicationName, notificationID, timeout)
}

func insertTracking(ctx context.Context, w *wrapped, rec recorder.TrackingRecorder, t recorder.Tracking) error {
	o := &w.ops[opInsertTracking]
	ctx, span, start := w.begin(ctx, o)
	if span != nil {
		span.SetAttributes(KeyUpstream.String(t.ApplicationName), KeyNotificationID.Int64(t.NotificationID))
	}
	err := rec.InsertTracking(ctx, t)
	w.finish(ctx, o, span, start, err)
	return err
}

var (
	_ recorder.ApplicationRecorder = (*applicationRecorder)(nil)
	_ recorder.ProcessRecorder     = (*processRecorder)(nil)
	_ recorder.TrackingRecorder    = (*trackingRecorder)(nil)
)

// StartCommand starts the span of a command (an application method a
// server calls by name), named as CommandSpan names it ("Orders.CreateOrder"),
// a new trace when ctx holds none and a tracer provider is configured. It is
// safe on a nil *App (telemetry not configured), returning ctx and a nil
// span. End it with End.
func (a *App) StartCommand(ctx context.Context, method string) (context.Context, trace.Span) {
	if a == nil || (!a.t.tracing && !recording(ctx)) {
		return ctx, nil
	}
	name, opts := CommandSpan(a.name, method, false)
	return a.t.tracer.Start(ctx, name, opts...)
}

// CommandSpan returns the name and start options of the span of one
// command or query of an application: "<App>.<Method>" (Orders.CreateOrder),
// internal, with the attributes application, eventsourcing.method and
// eventsourcing.query. A server computes them once per method.
func CommandSpan(app, method string, query bool) (string, []trace.SpanStartOption) {
	return app + "." + method, []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(KeyApplication.String(app), KeyMethod.String(method), KeyQuery.Bool(query))}
}
