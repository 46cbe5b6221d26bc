package grpcapp

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/system"
)

// The registry maps topics (names given on command lines and in
// APPLICATION_TOPIC and SYSTEM_TOPIC) to application and system definitions,
// as database/sql maps driver names. Packages register from init, and a
// binary links the packages it serves.
var (
	regMu   sync.RWMutex
	appsReg = map[string]*RegisteredApp{} // by topic and alias
	appsBy  = map[string]*RegisteredApp{} // by application name
	sysReg  = map[string]*registeredSystem{}
	demos   = map[string]Demo{}
	projReg = map[string]string{} // topic -> projection name
	projBy  = map[string]string{} // projection name -> topic
)

// RegisterProjection registers a projection's name under a topic (and
// aliases), so that APPLICATION_TOPIC may name it; the projection itself
// is found in the system of SYSTEM_TOPIC.
func RegisterProjection(topic, name string, aliases ...string) {
	regMu.Lock()
	defer regMu.Unlock()
	for _, t := range append([]string{topic}, aliases...) {
		if _, dup := projReg[t]; dup {
			panic("grpcapp: RegisterProjection called twice for " + t)
		}
		projReg[t] = name
	}
	projBy[name] = topic
}

// LookupMember returns the name of the system member (application or
// projection) registered under topic, or the topic itself when it names
// neither, for the system to resolve.
func LookupMember(topic string) string {
	regMu.RLock()
	defer regMu.RUnlock()
	if r, ok := appsReg[topic]; ok {
		return r.App.Name()
	}
	if n, ok := projReg[topic]; ok {
		return n
	}
	return topic
}

// memberTopic returns the topic a member is registered under, for subprocesses.
func memberTopic(name string) (string, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	if r, ok := appsBy[name]; ok {
		return r.Topic, true
	}
	t, ok := projBy[name]
	return t, ok
}

// Demo shows a running system at work: the runner command runs the demo
// registered for its system once the system is up (make run shows an order
// being paid this way).
type Demo func(ctx context.Context, r *Runner, w io.Writer) error

// RegisterDemo registers the demonstration of the system registered under topic.
func RegisterDemo(topic string, d Demo) {
	regMu.Lock()
	defer regMu.Unlock()
	demos[topic] = d
}

// LookupDemo returns the demonstration registered for a system's topic.
func LookupDemo(topic string) (Demo, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	d, ok := demos[topic]
	return d, ok
}

// RegisteredApp is an application definition known by topic.
type RegisteredApp struct {
	Topic string
	App   *system.App
	// Types returns the application's type registry without building the
	// application, so that followers in other processes decode its events
	// without touching its storage.
	Types func() *eventsourcing.Types
}

type registeredSystem struct {
	topic string
	new   func() *system.System
}

// RegisterApp registers an application definition under a topic (and
// aliases). types returns its type registry. Registering a topic twice
// panics: it is a mistake in the binary's composition.
func RegisterApp(topic string, app *system.App, types func() *eventsourcing.Types, aliases ...string) {
	regMu.Lock()
	defer regMu.Unlock()
	r := &RegisteredApp{Topic: topic, App: app, Types: types}
	for _, t := range append([]string{topic}, aliases...) {
		if _, dup := appsReg[t]; dup {
			panic("grpcapp: RegisterApp called twice for " + t)
		}
		appsReg[t] = r
	}
	appsBy[app.Name()] = r
}

// RegisterSystem registers a system under a topic (and aliases).
func RegisterSystem(topic string, newSystem func() *system.System, aliases ...string) {
	regMu.Lock()
	defer regMu.Unlock()
	r := &registeredSystem{topic: topic, new: newSystem}
	for _, t := range append([]string{topic}, aliases...) {
		if _, dup := sysReg[t]; dup {
			panic("grpcapp: RegisterSystem called twice for " + t)
		}
		sysReg[t] = r
	}
}

// LookupApp returns the application registered under topic (or with that
// application name).
func LookupApp(topic string) (*RegisteredApp, error) {
	regMu.RLock()
	defer regMu.RUnlock()
	if r, ok := appsReg[topic]; ok {
		return r, nil
	}
	if r, ok := appsBy[topic]; ok {
		return r, nil
	}
	return nil, fmt.Errorf("%w: no application registered as %q (registered: %v)", eventsourcing.ErrArgument, topic, keys(appsReg))
}

// appByName returns the registered definition of an application name.
func appByName(name string) (*RegisteredApp, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	r, ok := appsBy[name]
	return r, ok
}

// LookupSystem returns the system registered under topic and its canonical topic.
func LookupSystem(topic string) (*system.System, string, error) {
	regMu.RLock()
	r, ok := sysReg[topic]
	regMu.RUnlock()
	if !ok {
		return nil, "", fmt.Errorf("%w: no system registered as %q (registered: %v)", eventsourcing.ErrArgument, topic, keys(sysReg))
	}
	return r.new(), r.topic, nil
}

// Topics returns the registered application (and projection) and system
// topics, sorted.
func Topics() (apps, systems []string) {
	regMu.RLock()
	defer regMu.RUnlock()
	return slices.Sorted(slices.Values(append(keys(appsReg), keys(projReg)...))), keys(sysReg)
}

func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return slices.Clip(ks)
}
