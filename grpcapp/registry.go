package grpcapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/system"
)

// Registry maps topics (the names given on command lines and in
// APPLICATION_TOPIC and SYSTEM_TOPIC) to the systems, applications and
// projections a command serves, and to the systems' demonstrations. A
// command builds one and hands it to the code that resolves topics
// (package grpcapp/cli, WithRegistry):
//
//	reg := grpcapp.NewRegistry()
//	reg.System("orders.System", orders.System)
//	reg.App("orders.Orders", orders.OrdersApp())
//
// Each registration returns its error (an empty or taken topic, a nil
// definition) and Err returns all of them, so that a command may check
// once. The zero Registry is not usable; a Registry is safe for concurrent
// use.
type Registry struct {
	mu      sync.RWMutex
	members map[string]string            // application or projection topic (and alias) -> member name
	apps    map[string]*system.App       // application name -> definition
	topics  map[string]string            // member name -> the topic it was registered under
	systems map[string]*registeredSystem // topic and alias -> system
	demos   map[string]Demo              // canonical system topic -> demonstration
	errs    []error
}

type registeredSystem struct {
	topic string
	new   func() *system.System
}

// Demo shows a running system at work: the runner command runs the demo
// registered for its system once the system is up (make run shows an order
// being paid this way).
type Demo func(ctx context.Context, r *Runner, w io.Writer) error

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		members: map[string]string{},
		apps:    map[string]*system.App{},
		topics:  map[string]string{},
		systems: map[string]*registeredSystem{},
		demos:   map[string]Demo{},
	}
}

// System registers a system under a topic (and aliases). newSystem is
// called on each lookup, so that every command gets its own definition.
func (r *Registry) System(topic string, newSystem func() *system.System, aliases ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if newSystem == nil {
		return r.fail(fmt.Errorf("grpcapp: registry: %w: system %q has no constructor", eventsourcing.ErrArgument, topic))
	}
	topics := append([]string{topic}, aliases...)
	if err := r.free(topics, func(t string) bool { _, taken := r.systems[t]; return taken }, "a system"); err != nil {
		return r.fail(err)
	}
	s := &registeredSystem{topic: topic, new: newSystem}
	for _, t := range topics {
		r.systems[t] = s
	}
	return nil
}

// App registers an application definition under a topic (and aliases).
// A follower in another process decodes the application's events with the
// registry the definition gives (system.WithTypes).
func (r *Registry) App(topic string, app *system.App, aliases ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if app == nil {
		return r.fail(fmt.Errorf("grpcapp: registry: %w: application %q is nil", eventsourcing.ErrArgument, topic))
	}
	if err := r.member(topic, app.Name(), aliases); err != nil {
		return r.fail(err)
	}
	r.apps[app.Name()] = app
	return nil
}

// Projection registers a projection under a topic (and aliases), so that
// APPLICATION_TOPIC may name it; its server finds the projection itself in
// the system of SYSTEM_TOPIC.
func (r *Registry) Projection(topic string, p *system.Projection, aliases ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p == nil {
		return r.fail(fmt.Errorf("grpcapp: registry: %w: projection %q is nil", eventsourcing.ErrArgument, topic))
	}
	return r.fail(r.member(topic, p.Name(), aliases))
}

// Demo registers the demonstration of the system registered under topic
// (or one of its aliases); register the system first.
func (r *Registry) Demo(topic string, d Demo) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.systems[topic]
	switch {
	case d == nil:
		return r.fail(fmt.Errorf("grpcapp: registry: %w: the demonstration of %q is nil", eventsourcing.ErrArgument, topic))
	case !ok:
		return r.fail(fmt.Errorf("grpcapp: registry: %w: demonstration of %q: no system registered as %q", eventsourcing.ErrArgument, topic, topic))
	}
	if _, dup := r.demos[s.topic]; dup {
		return r.fail(fmt.Errorf("grpcapp: registry: %w: system %q already has a demonstration", eventsourcing.ErrArgument, s.topic))
	}
	r.demos[s.topic] = d
	return nil
}

// Err returns the errors of every registration that failed, joined, or nil.
func (r *Registry) Err() error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return errors.Join(r.errs...)
}

// member registers a member name under its topics; r.mu is held.
func (r *Registry) member(topic, name string, aliases []string) error {
	topics := append([]string{topic}, aliases...)
	if err := r.free(topics, func(t string) bool { _, taken := r.members[t]; return taken }, "an application or projection"); err != nil {
		return err
	}
	if t, dup := r.topics[name]; dup {
		return fmt.Errorf("grpcapp: registry: %w: %s is already registered as %q", eventsourcing.ErrArgument, name, t)
	}
	for _, t := range topics {
		r.members[t] = name
	}
	r.topics[name] = topic
	return nil
}

// free checks that topics are non-empty, distinct and not taken.
func (r *Registry) free(topics []string, taken func(string) bool, what string) error {
	for i, t := range topics {
		if t == "" {
			return fmt.Errorf("grpcapp: registry: %w: empty topic for %s", eventsourcing.ErrArgument, what)
		}
		if taken(t) || slices.Contains(topics[:i], t) {
			return fmt.Errorf("grpcapp: registry: %w: %q is already registered as %s", eventsourcing.ErrArgument, t, what)
		}
	}
	return nil
}

// fail records err (when not nil) for Err and returns it; r.mu is held.
func (r *Registry) fail(err error) error {
	if err != nil {
		r.errs = append(r.errs, err)
	}
	return err
}

// LookupMember returns the name of the system member (application or
// projection) registered under topic, or the topic itself when it names
// neither, for the system to resolve (a member's own name works too).
func (r *Registry) LookupMember(topic string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if n, ok := r.members[topic]; ok {
		return n
	}
	return topic
}

// MemberTopic returns the topic a member (by its name) is registered under.
func (r *Registry) MemberTopic(name string) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.topics[name]
	return t, ok
}

// LookupApp returns the application registered under topic (or with that
// application name).
func (r *Registry) LookupApp(topic string) (*system.App, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if a, ok := r.apps[r.members[topic]]; ok {
		return a, nil
	}
	if a, ok := r.apps[topic]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("%w: no application registered as %q (registered: %v)", eventsourcing.ErrArgument, topic, r.appTopics())
}

// LookupSystem returns a new instance of the system registered under topic
// (or an alias), and the topic it was registered under.
func (r *Registry) LookupSystem(topic string) (*system.System, string, error) {
	r.mu.RLock()
	s, ok := r.systems[topic]
	r.mu.RUnlock()
	if !ok {
		return nil, "", fmt.Errorf("%w: no system registered as %q (registered: %v)", eventsourcing.ErrArgument, topic, r.systemTopics())
	}
	return s.new(), s.topic, nil
}

// LookupDemo returns the demonstration registered for a system's topic (or
// alias).
func (r *Registry) LookupDemo(topic string) (Demo, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if s, ok := r.systems[topic]; ok {
		topic = s.topic
	}
	d, ok := r.demos[topic]
	return d, ok
}

// Topics returns the registered application and projection topics, and the
// system topics, aliases included, sorted.
func (r *Registry) Topics() (members, systems []string) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.appTopics(), slices.Sorted(maps.Keys(r.systems))
}

// appTopics returns the member topics, sorted; r.mu is held (read).
func (r *Registry) appTopics() []string {
	return slices.Sorted(maps.Keys(r.members))
}

// systemTopics returns the system topics, sorted.
func (r *Registry) systemTopics() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.systems))
}
