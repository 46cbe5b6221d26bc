package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/internal/lifecycle"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// Errors of system definitions and runners. Test them with errors.Is.
var (
	// ErrSystem reports a malformed system definition: a follower that is not a
	// process application, two definitions under one name, an empty pipe.
	ErrSystem = errors.New("invalid system definition")
	// ErrRunnerAlreadyStarted is returned by a second Start.
	ErrRunnerAlreadyStarted = errors.New("runner already started")
	// ErrRunnerNotStarted is returned when a runner's applications are asked
	// for before Start (or after a failed Start).
	ErrRunnerNotStarted = errors.New("runner not started")
	// ErrRunnerStopped is returned by Start after Stop.
	ErrRunnerStopped = errors.New("runner stopped")
	// ErrAppNotFound reports that no application of a system has the name or
	// type asked for.
	ErrAppNotFound = errors.New("application not found in system")
	// ErrStopInPolicy is returned by a runner's Stop called from inside a
	// policy or a projection it runs: waiting there for processing to end
	// would wait for the caller. The runner stops once the policy returns.
	ErrStopInPolicy = lifecycle.ErrStopInWorker
	// ErrNotFollowing reports a pull from a leader the follower does not follow.
	ErrNotFollowing = errors.New("not following that leader")
)

// Application is what a system's runners need of an application: the
// upstream a follower or a projection reads (projection.Upstream: its name,
// notification log, mapper and Close), and what the runners use to build
// and wire its followers. *eventsourcing.Application satisfies it, and so
// does every application type that embeds it.
type Application interface {
	projection.Upstream
	// Env gives a follower's settings read under a leader's name (LeaderMapper).
	Env() config.Env
	// Types is the application's event type registry.
	Types() *eventsourcing.Types
	// ProcessRecorder reports the application's process recorder, if it
	// records through one (Wait reads its tracking positions).
	ProcessRecorder() (recorder.ProcessRecorder, bool)
	// OnSave lets a single-process runner prompt followers after a save.
	OnSave(h eventsourcing.SaveHook)
	// Logger receives the runner's reports about the application.
	Logger() *slog.Logger
}

// ProcessApplication is an application with a policy: a follower. Build it with
// eventsourcing.Options.Process so that it records through a process recorder.
//
// Policy is called once per upstream event the follower is interested in. It
// reads aggregates through the application's repository, changes them, and
// hands them to p.Collect; it must not save them itself, because the runner
// records them atomically with the upstream position. Returning an error
// records nothing and stops the follower at that event.
type ProcessApplication interface {
	Application
	// SaveBatch records what the policy collected atomically with the
	// upstream position.
	SaveBatch(ctx context.Context, b eventsourcing.Batch) ([]eventsourcing.Recording, error)
	Policy(ctx context.Context, event eventsourcing.Event, p *ProcessingEvent) error
}

// NewFunc builds an application from the settings a runner gives every
// application of a system (overrides of the process environment, read under
// the application's name first: COUNTERS_PERSISTENCE_MODULE before
// PERSISTENCE_MODULE).
type NewFunc[A Application] func(ctx context.Context, env map[string]string) (A, error)

// App defines an application of a system: its name and how to build it. Use
// the same *App value in every pipe that mentions the application.
type App struct {
	name      string
	typ       reflect.Type
	isProcess bool
	topics    []string
	types     func() *eventsourcing.Types
	build     func(ctx context.Context, env map[string]string) (Application, error)
}

// WithTypes gives the application's type registry without building it, so
// that followers and projections in other processes decode its events
// without touching its storage.
func WithTypes(types func() *eventsourcing.Types) AppOption {
	return func(a *App) { a.types = types }
}

// TypesFunc returns the registry function given by WithTypes, or nil.
func (a *App) TypesFunc() func() *eventsourcing.Types { return a.types }

// AppOption configures an App.
type AppOption func(*App)

// FollowTopics restricts the upstream notifications a follower pulls to these
// topics (the filter is pushed into the query and re-checked). Without it a
// follower pulls every notification of its leaders and its policy ignores what
// it does not handle.
func FollowTopics(topics ...string) AppOption {
	return func(a *App) { a.topics = slices.Clone(topics) }
}

// NewApp defines an application built by newApp. The name is the one the
// built application reports (its Options.Name); an empty name means the name
// of A's type (without the pointer), as the reference library names
// applications after their class.
//
//	var CountersApp = system.NewApp("Counters", NewCounters)
func NewApp[A Application](name string, newApp NewFunc[A], opts ...AppOption) *App {
	typ := reflect.TypeFor[A]()
	if name == "" {
		t := typ
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		name = t.Name()
	}
	a := &App{
		name:      name,
		typ:       typ,
		isProcess: typ.Implements(reflect.TypeFor[ProcessApplication]()),
		build: func(ctx context.Context, env map[string]string) (Application, error) {
			app, err := newApp(ctx, env)
			if err != nil {
				return nil, err
			}
			return app, nil
		},
	}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Name returns the application's name.
func (a *App) Name() string { return a.name }

// Type returns the Go type the application's constructor returns.
func (a *App) Type() reflect.Type { return a.typ }

// IsProcess reports whether the application has a policy (implements
// ProcessApplication), so that it can follow.
func (a *App) IsProcess() bool { return a.isProcess }

// Topics returns the follow-topic filter (nil: everything).
func (a *App) Topics() []string { return slices.Clone(a.topics) }

// Build constructs the application with the given settings and checks that it
// reports the defined name.
func (a *App) Build(ctx context.Context, env map[string]string) (Application, error) {
	app, err := a.build(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("build application %q: %w", a.name, err)
	}
	if app == nil || reflect.ValueOf(app).Kind() == reflect.Pointer && reflect.ValueOf(app).IsNil() {
		return nil, fmt.Errorf("build application %q: constructor returned nil", a.name)
	}
	if app.Name() != a.name {
		err := fmt.Errorf("%w: application defined as %q reports the name %q", ErrSystem, a.name, app.Name())
		return nil, errors.Join(err, app.Close())
	}
	return app, nil
}

// Pipe is a chain of applications, each following the one before it. A pipe
// may return to an application already in it, which makes a cycle:
// Pipe(Orders, Reservations, Orders, Payments, Orders).
func Pipe(apps ...*App) []*App { return apps }

// System is a validated set of pipes, with the leaders and followers of each
// application derived from them. It is immutable and safe for concurrent use.
type System struct {
	apps        []*App // in order of first appearance
	byName      map[string]*App
	leadersOf   map[string][]string // follower -> its leaders, in order of appearance
	followers   map[string][]string // leader -> its followers
	projections []*Projection
}

// New builds a system from pipes. Edges are the consecutive pairs of each
// pipe, without duplicates; an application may appear in several pipes and
// several times in one (cycles). Every application that follows another must
// be a process application (have a Policy).
func New(pipes ...[]*App) (*System, error) {
	s := &System{byName: map[string]*App{}, leadersOf: map[string][]string{}, followers: map[string][]string{}}
	if len(pipes) == 0 {
		return nil, fmt.Errorf("%w: no pipes", ErrSystem)
	}
	for i, pipe := range pipes {
		if len(pipe) == 0 {
			return nil, fmt.Errorf("%w: pipe %d is empty", ErrSystem, i)
		}
		for j, a := range pipe {
			if a == nil {
				return nil, fmt.Errorf("%w: pipe %d has a nil application at %d", ErrSystem, i, j)
			}
			if prev, ok := s.byName[a.name]; ok && prev != a {
				return nil, fmt.Errorf("%w: two definitions named %q (define each application once and reuse the *App)", ErrSystem, a.name)
			} else if !ok {
				s.byName[a.name] = a
				s.apps = append(s.apps, a)
			}
			if j == 0 {
				continue
			}
			leader, follower := pipe[j-1].name, a.name
			if leader == follower {
				return nil, fmt.Errorf("%w: %q cannot follow itself", ErrSystem, leader)
			}
			if !slices.Contains(s.leadersOf[follower], leader) {
				s.leadersOf[follower] = append(s.leadersOf[follower], leader)
				s.followers[leader] = append(s.followers[leader], follower)
			}
		}
	}
	for name := range s.leadersOf {
		if a := s.byName[name]; !a.isProcess {
			return nil, fmt.Errorf("%w: %q follows %v but %s has no Policy method (it must implement system.ProcessApplication)",
				ErrSystem, name, s.leadersOf[name], a.typ)
		}
	}
	return s, nil
}

// Apps returns the system's applications in order of first appearance.
func (s *System) Apps() []*App { return slices.Clone(s.apps) }

// App returns the definition with the given name.
func (s *System) App(name string) (*App, bool) { a, ok := s.byName[name]; return a, ok }

// LeadersOf returns the names of the applications that name follows.
func (s *System) LeadersOf(name string) []string { return slices.Clone(s.leadersOf[name]) }

// FollowersOf returns the names of the applications that follow name.
func (s *System) FollowersOf(name string) []string { return slices.Clone(s.followers[name]) }

// Leaders returns the names of the applications that have followers.
func (s *System) Leaders() []string {
	return s.filter(func(n string) bool { return len(s.followers[n]) > 0 })
}

// Followers returns the names of the applications that follow others.
func (s *System) Followers() []string {
	return s.filter(func(n string) bool { return len(s.leadersOf[n]) > 0 })
}

// Processors returns the names of the process applications (those with a Policy).
func (s *System) Processors() []string {
	return s.filter(func(n string) bool { return s.byName[n].isProcess })
}

// LeadersOnly returns the leaders that follow nobody.
func (s *System) LeadersOnly() []string {
	return s.filter(func(n string) bool { return len(s.followers[n]) > 0 && len(s.leadersOf[n]) == 0 })
}

// Singles returns the applications that neither lead nor follow.
func (s *System) Singles() []string {
	return s.filter(func(n string) bool { return len(s.followers[n]) == 0 && len(s.leadersOf[n]) == 0 })
}

func (s *System) filter(keep func(string) bool) []string {
	var out []string
	for _, a := range s.apps {
		if keep(a.name) {
			out = append(out, a.name)
		}
	}
	return out
}
