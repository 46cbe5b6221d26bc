package eventsourcing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/internal/codec"
	"github.com/eventsourcing-go/eventsourcing/persistence"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/telemetry"
)

// Settings read by NewApplication (besides the mapper's and the persistence
// module's).
const (
	EnvIsSnapshottingEnabled  = "IS_SNAPSHOTTING_ENABLED"
	EnvAggregateCacheMaxSize  = "AGGREGATE_CACHE_MAXSIZE"
	EnvAggregateCacheFastFwd  = "AGGREGATE_CACHE_FASTFORWARD"
	EnvAggregateCacheSkipping = "AGGREGATE_CACHE_FASTFORWARD_SKIPPING"
	EnvDeepcopyFromCache      = "DEEPCOPY_FROM_AGGREGATE_CACHE"
)

// DefaultSectionSize is the notification log's section size unless
// Options.SectionSize says otherwise.
const DefaultSectionSize = 10

// Options configure NewApplication. Everything except Name and Types has a
// usable zero value.
type Options struct {
	// Name names the application: settings are looked up as NAME_KEY before
	// KEY, and followers track it under this name. Use the Go type's name
	// ("DogSchool"), as the reference library does.
	Name string
	// Types is the registry of the application's aggregate and event types;
	// nil means an empty registry.
	Types *Types
	// Env overrides settings of the process environment.
	Env map[string]string
	// Lookup replaces the process environment (os.LookupEnv) as the source of
	// settings, for tests and embedding. Set it to NoEnvironment to use Env only.
	Lookup func(key string) (string, bool)
	// Factory, when set, is used instead of opening the persistence module named
	// by PERSISTENCE_MODULE. The application owns it and closes it on Close.
	Factory recorder.Factory
	// Process makes the application record through a process recorder, so that
	// it can save events with a tracking record (SaveWithTracking), as process
	// applications and event-sourced projections do.
	Process bool
	// Snapshotting enables snapshots by default (IS_SNAPSHOTTING_ENABLED still wins).
	Snapshotting bool
	// SnapshotIntervals maps aggregate types (reflect.TypeFor[Dog]()) to N: after
	// each save, every event of that type whose version is a multiple of N
	// triggers a snapshot at that version. Intervals enable snapshotting.
	SnapshotIntervals map[reflect.Type]int64
	// SectionSize is the notification log's section size (default 10).
	SectionSize int
	// Logger receives the application's diagnostics; nil means slog.Default().
	Logger *slog.Logger
	// Telemetry chooses the OpenTelemetry providers of the application's
	// traces and metrics (package telemetry); nil fields mean the global
	// providers as they are when NewApplication runs.
	Telemetry telemetry.Providers
}

// NoEnvironment is a Lookup that finds nothing, so that only Options.Env counts.
func NoEnvironment(string) (string, bool) { return "", false }

// Recording is an event as recorded: the event and its position in the
// application's notification log (0 when the backend does not report one).
type Recording struct {
	Event          Event
	NotificationID int64
}

// SaveHook is called after events are recorded, with their recordings, on the
// goroutine that saved them. The system package uses it to prompt followers.
type SaveHook func(ctx context.Context, recordings []Recording) error

// Application records the events of aggregates and reads them back. User
// application types embed *Application and add command and query methods:
//
//	type DogSchool struct{ *eventsourcing.Application }
//
// An Application is safe for concurrent use.
type Application struct {
	name      string
	env       config.Env
	types     *Types
	factory   recorder.Factory
	module    string
	mapper    *Mapper
	recorder  recorder.ApplicationRecorder
	process   recorder.ProcessRecorder // nil unless Options.Process
	repo      *Repository
	log       *NotificationLog
	intervals map[reflect.Type]int64
	logger    *slog.Logger
	tel       *telemetry.App // nil unless telemetry is configured

	hooksMu sync.RWMutex
	hooks   []SaveHook

	closeOnce sync.Once
	closeErr  error
}

// NewApplication builds an application: its settings, its persistence module,
// mapper, recorder, snapshot store (if enabled), repository and notification log.
func NewApplication(ctx context.Context, opts Options) (*Application, error) {
	a := &Application{
		name:   opts.Name,
		types:  opts.Types,
		logger: opts.Logger,
	}
	if a.types == nil {
		a.types = NewTypes()
	}
	if a.logger == nil {
		a.logger = slog.Default()
	}
	if opts.Lookup != nil {
		a.env = config.NewEnvFrom(opts.Name, opts.Env, opts.Lookup)
	} else {
		a.env = config.NewEnv(opts.Name, opts.Env)
	}
	a.intervals = map[reflect.Type]int64{}
	for t, n := range opts.SnapshotIntervals {
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if n <= 0 {
			return nil, fmt.Errorf("application %q: %w: snapshot interval %d for %s", a.name, ErrArgument, n, t)
		}
		a.intervals[t] = n
	}
	if err := a.build(ctx, opts); err != nil {
		if a.factory != nil {
			err = errors.Join(err, a.factory.Close())
		}
		return nil, fmt.Errorf("application %q: %w", a.name, err)
	}
	return a, nil
}

// settingKeys are the keys NewApplication reads besides the persistence
// module's (persistence.Open warns about those); settings that look like
// misspellings of them are warned about.
var settingKeys = []string{
	EnvIsSnapshottingEnabled, EnvAggregateCacheMaxSize, EnvAggregateCacheFastFwd,
	EnvAggregateCacheSkipping, EnvDeepcopyFromCache, EnvCompressorTopic, EnvCipherTopic, EnvCipherKey,
}

func (a *Application) build(ctx context.Context, opts Options) error {
	config.WarnMisspelledKeys(a.env, settingKeys...)
	var err error
	if a.mapper, err = NewMapperFromEnv(a.types, a.env); err != nil {
		return err
	}
	a.factory = opts.Factory
	if a.factory == nil {
		if a.factory, err = persistence.Open(ctx, a.env); err != nil {
			return err
		}
		a.module, _ = persistence.ResolveModule(a.env)
	} else {
		a.module = fmt.Sprintf("%T (Options.Factory)", a.factory)
	}
	if opts.Process {
		if a.process, err = a.factory.ProcessRecorder(ctx); err != nil {
			return fmt.Errorf("process recorder: %w", err)
		}
		a.recorder = a.process
	} else if a.recorder, err = a.factory.ApplicationRecorder(ctx); err != nil {
		return fmt.Errorf("application recorder: %w", err)
	}
	a.instrument(opts.Telemetry)
	snapshotting, err := a.env.Bool(EnvIsSnapshottingEnabled, opts.Snapshotting || len(a.intervals) > 0)
	if err != nil {
		return err
	}
	var snapshots recorder.AggregateRecorder
	if snapshotting {
		if snapshots, err = a.factory.AggregateRecorder(ctx, recorder.PurposeSnapshots); err != nil {
			return fmt.Errorf("snapshot recorder: %w", err)
		}
	} else if len(a.intervals) > 0 {
		return fmt.Errorf("%w: snapshot intervals are given but %s is false", ErrConfiguration, a.env.Prefixed(EnvIsSnapshottingEnabled))
	}
	cache, err := newCacheFromEnv(a.env)
	if err != nil {
		return err
	}
	a.repo = &Repository{events: a.recorder, snapshots: snapshots, mapper: a.mapper, cache: cache, tel: a.tel}
	size := opts.SectionSize
	if size <= 0 {
		size = DefaultSectionSize
	}
	a.log = &NotificationLog{recorder: a.recorder, sectionSize: size}
	return nil
}

// ErrNotConstructed reports a call on an application that NewApplication
// did not return (it returned an error instead): check that error first.
var ErrNotConstructed = errors.New("application not constructed: NewApplication failed (check the error it returned)")

// The methods below are safe on a nil *Application, which is what a failed
// NewApplication returns: accessors give zero values (Log gives a log whose
// reads fail with ErrNotConstructed), Close does nothing, and saves fail with
// ErrNotConstructed.

// Name returns the application's name.
func (a *Application) Name() string {
	if a == nil {
		return ""
	}
	return a.name
}

// Env returns the application's settings.
func (a *Application) Env() config.Env {
	if a == nil {
		return config.NewEnvFrom("", nil, NoEnvironment)
	}
	return a.env
}

// Types returns the application's type registry.
func (a *Application) Types() *Types {
	if a == nil {
		return NewTypes()
	}
	return a.types
}

// Mapper returns the mapper that encodes and decodes the application's events.
func (a *Application) Mapper() *Mapper {
	if a == nil {
		return nil
	}
	return a.mapper
}

// Recorder returns the application recorder (the process recorder when the
// application was built with Options.Process).
func (a *Application) Recorder() recorder.ApplicationRecorder {
	if a == nil {
		return nil
	}
	return a.recorder
}

// ProcessRecorder returns the process recorder, and false when the application
// was built without Options.Process.
func (a *Application) ProcessRecorder() (recorder.ProcessRecorder, bool) {
	if a == nil {
		return nil, false
	}
	return a.process, a.process != nil
}

// Factory returns the persistence module's factory the application uses.
func (a *Application) Factory() recorder.Factory {
	if a == nil {
		return nil
	}
	return a.factory
}

// PersistenceModule returns the name of the persistence module the
// application records with ("memory", "sqlite", ...), or the factory's type
// when Options.Factory gave one.
func (a *Application) PersistenceModule() string {
	if a == nil {
		return ""
	}
	return a.module
}

// Repository returns the repository of the application's aggregates.
func (a *Application) Repository() *Repository {
	if a == nil {
		return nil
	}
	return a.repo
}

// Log returns the application's notification log.
func (a *Application) Log() *NotificationLog {
	if a == nil {
		return &NotificationLog{recorder: notConstructed{}, sectionSize: DefaultSectionSize}
	}
	return a.log
}

// Logger returns the application's logger.
func (a *Application) Logger() *slog.Logger {
	if a == nil {
		return slog.Default()
	}
	return a.logger
}

// OnSave registers a hook called after every save that recorded events.
func (a *Application) OnSave(h SaveHook) {
	if a == nil {
		return
	}
	a.hooksMu.Lock()
	defer a.hooksMu.Unlock()
	a.hooks = append(a.hooks[:len(a.hooks):len(a.hooks)], h)
}

// Close releases the persistence module. It is idempotent, and does nothing
// on an application that was not constructed.
func (a *Application) Close() error {
	if a == nil {
		return nil
	}
	a.closeOnce.Do(func() {
		if a.factory != nil {
			a.closeErr = a.factory.Close()
		}
	})
	return a.closeErr
}

// notConstructed is the recorder behind the log of a nil *Application.
type notConstructed struct{}

func (notConstructed) SelectNotifications(context.Context, recorder.NotificationQuery) ([]recorder.Notification, error) {
	return nil, ErrNotConstructed
}

// Batch is what one atomic write holds: the pending events of aggregates, bare
// events, and optionally the tracking position of the upstream event that
// caused them (process applications).
type Batch struct {
	Roots    []Root
	Events   []Event
	Tracking *recorder.Tracking
}

// Save records the pending events of the given aggregates in one atomic write
// and returns their recordings in order. Nil aggregates are ignored; nothing to
// save gives no recordings. A conflict (another writer got there first) is an
// error satisfying errors.Is(err, ErrIntegrity); Save does not retry (see Update).
//
// When a save hook fails, the events are recorded nevertheless: Save returns
// the recordings together with the hook's error.
func (a *Application) Save(ctx context.Context, roots ...Root) ([]Recording, error) {
	return a.SaveBatch(ctx, Batch{Roots: roots})
}

// SaveWithTracking is Save with the tracking record of the upstream
// notification that caused the changes, written atomically with them (also
// when there are no events). It needs Options.Process.
func (a *Application) SaveWithTracking(ctx context.Context, t recorder.Tracking, roots ...Root) ([]Recording, error) {
	return a.SaveBatch(ctx, Batch{Roots: roots, Tracking: &t})
}

// SaveBatch records a batch atomically; Save and SaveWithTracking are shorthands.
func (a *Application) SaveBatch(ctx context.Context, b Batch) ([]Recording, error) {
	if a == nil {
		return nil, fmt.Errorf("save: %w", ErrNotConstructed)
	}
	n := len(b.Events)
	for _, r := range b.Roots {
		if !isNilRoot(r) {
			n += len(r.aggregate().pending)
		}
	}
	if n == 0 && b.Tracking == nil {
		return nil, nil
	}
	if a.tel != nil {
		return a.saveTraced(ctx, b, n)
	}
	return a.save(ctx, b, n, "")
}

// save is SaveBatch of n events; the stored events carry traceParent.
func (a *Application) save(ctx context.Context, b Batch, n int, traceParent string) ([]Recording, error) {
	var (
		recs   []Recording
		stored []recorder.StoredEvent
		buf    []byte // the batch's states, one after another
	)
	if n == 1 {
		one := new(saveOne)
		recs, stored, buf = one.rec[:0:1], one.stored[:], one.buf[:0]
	} else {
		recs = make([]Recording, 0, n)
		stored = make([]recorder.StoredEvent, n)
		buf = make([]byte, 0, n*(codec.IDTextSize+codec.StateSizeGuess))
	}
	recs, err := a.collect(recs, b)
	if err != nil {
		return nil, err
	}
	var oid string // the text of the originator id, made once per run of its events
	for i := range recs {
		if e := &recs[i].Event; i == 0 || e.OriginatorID != recs[i-1].Event.OriginatorID {
			buf, oid = codec.AppendIDText(buf, e.OriginatorID)
		}
		if stored[i], buf, err = a.mapper.fromEvent(buf, recs[i].Event, oid); err != nil {
			return nil, fmt.Errorf("save: %w", err)
		}
	}
	if traceParent != "" {
		for i := range recs {
			stored[i].TraceParent = traceParent
		}
	}
	var opts []recorder.InsertOption
	if b.Tracking != nil {
		if a.process == nil {
			return nil, fmt.Errorf("save with tracking: %w", ErrProcessRecorder)
		}
		opts = append(opts, recorder.WithTracking(*b.Tracking))
	}
	ids, err := a.recorder.InsertEvents(ctx, stored, opts...)
	if err != nil {
		return nil, fmt.Errorf("save: %w", err)
	}
	if len(ids) == len(recs) {
		for i := range recs {
			recs[i].NotificationID = ids[i]
		}
	}
	due := a.snapshotsDue(b.Roots)
	for _, r := range b.Roots {
		if !isNilRoot(r) {
			r.aggregate().pending = nil
		}
	}
	a.repo.saved(b.Roots)
	var errs []error
	if err := a.takeSnapshots(ctx, due); err != nil {
		errs = append(errs, err)
	}
	if len(recs) > 0 {
		a.hooksMu.RLock()
		hooks := a.hooks
		a.hooksMu.RUnlock()
		for _, h := range hooks {
			if err := h(ctx, recs); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return recs, errors.Join(errs...)
}

// saveOne is what a save of one event needs, in one allocation instead of
// four: the recording returned, the stored event, and room for its state and
// the text of its originator id.
type saveOne struct {
	rec    [1]Recording
	stored [1]recorder.StoredEvent
	buf    [codec.IDTextSize + codec.StateSizeGuess]byte
}

// collect gathers the batch's events into events (empty, with room for
// them all), giving creation events their aggregate type's topic, as
// recordings still without notification ids.
func (a *Application) collect(events []Recording, b Batch) ([]Recording, error) {
	for _, r := range b.Roots {
		if isNilRoot(r) {
			continue
		}
		for _, e := range r.aggregate().pending {
			if e.creation && e.OriginatorTopic == "" {
				ti, err := a.types.codec.TypeOf(reflect.TypeOf(r))
				if err != nil {
					return nil, fmt.Errorf("save: aggregate type: %w", err)
				}
				// The topic now marks the creation event, so the recorded event
				// equals the one decoded from storage.
				e.OriginatorTopic, e.creation = ti.Topic(), false
			}
			events = append(events, Recording{Event: e})
		}
	}
	for _, e := range b.Events {
		events = append(events, Recording{Event: e})
	}
	for _, r := range events {
		if r.Event.OriginatorID == uuid.Nil {
			return nil, fmt.Errorf("save: %w: event %T has no originator id (was the aggregate created?)", ErrOriginatorID, r.Event.Data)
		}
	}
	return events, nil
}

// snapshotsDue lists the snapshots an interval asks for after the roots'
// pending events are saved: one per event whose version is a multiple of N.
func (a *Application) snapshotsDue(roots []Root) []snapshotDue {
	if len(a.intervals) == 0 || a.repo.snapshots == nil {
		return nil
	}
	var due []snapshotDue
	for _, r := range roots {
		if isNilRoot(r) {
			continue
		}
		n, ok := a.intervals[reflect.TypeOf(r).Elem()]
		if !ok {
			continue
		}
		for _, e := range r.aggregate().pending {
			if e.OriginatorVersion%n == 0 {
				due = append(due, snapshotDue{root: r, version: e.OriginatorVersion})
			}
		}
	}
	return due
}

type snapshotDue struct {
	root    Root
	version int64
}

// takeSnapshots takes the snapshots due after a save.
func (a *Application) takeSnapshots(ctx context.Context, due []snapshotDue) error {
	var errs []error
	for _, d := range due {
		if err := a.repo.snapshotAt(ctx, d.root, d.version); err != nil {
			errs = append(errs, fmt.Errorf("snapshot %s v%d: %w", d.root.aggregate().id, d.version, err))
		}
	}
	return errors.Join(errs...)
}
