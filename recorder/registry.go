package recorder

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
)

// OpenFunc opens a persistence module for one application's configuration.
type OpenFunc func(ctx context.Context, env Env) (Factory, error)

var (
	modulesMu sync.RWMutex
	modules   = map[string]OpenFunc{}
)

// DefaultModule is the persistence module used when PERSISTENCE_MODULE is not set.
const DefaultModule = "memory"

// Register makes a persistence module available under a name (and aliases), as
// database/sql drivers do. Backends call it from init; registering a name twice
// panics, because it is a programming error in the binary's composition.
func Register(name string, open OpenFunc, aliases ...string) {
	names := append([]string{name}, aliases...)
	if open == nil {
		panic("recorder: Register of module " + name + " with a nil OpenFunc")
	}
	modulesMu.Lock()
	defer modulesMu.Unlock()
	// Check every name before registering any, so that a recovered panic
	// leaves the registry as it was.
	for i, n := range names {
		if _, dup := modules[n]; dup || slices.Contains(names[:i], n) {
			panic("recorder: Register called twice for module " + n)
		}
	}
	for _, n := range names {
		modules[n] = open
	}
}

// Modules returns the names of the registered persistence modules, sorted.
func Modules() []string {
	modulesMu.RLock()
	defer modulesMu.RUnlock()
	names := make([]string, 0, len(modules))
	for n := range modules {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// moduleKeys are read in order; the later two are the reference library's legacy names.
var moduleKeys = []string{"PERSISTENCE_MODULE", "INFRASTRUCTURE_FACTORY", "FACTORY_TOPIC"}

// ModuleName returns the persistence module env selects (DefaultModule if none).
func ModuleName(env Env) string {
	for _, k := range moduleKeys {
		if v, ok := env.Lookup(k); ok && v != "" {
			return v
		}
	}
	return DefaultModule
}

// Open opens the persistence module selected by env's PERSISTENCE_MODULE.
func Open(ctx context.Context, env Env) (Factory, error) {
	name := ModuleName(env)
	modulesMu.RLock()
	open, ok := modules[name]
	modulesMu.RUnlock()
	if !ok {
		known := Modules()
		hint := "import the module's package (for example _ \"github.com/eventsourcing-go/eventsourcing/recorder/sqlite\") to link it into the binary"
		if slices.Contains(known, name) {
			hint = ""
		}
		return nil, fmt.Errorf("%w: persistence module %q is not registered (registered: %v); %s",
			ErrInfrastructureFactory, name, known, hint)
	}
	f, err := open(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("%w: opening persistence module %q for %q: %w", ErrInfrastructureFactory, name, env.Name(), err)
	}
	return f, nil
}
