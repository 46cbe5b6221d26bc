// Package persistence is the registry of persistence modules: a backend
// registers itself under a name from init, as database/sql drivers do
// (persistence.Register), and an application opens the module its
// PERSISTENCE_MODULE setting names (persistence.Open). Linking a module into a
// binary is importing its package: recorder/memory, recorder/sqlite,
// recorder/postgres, esdb.
package persistence

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/internal/spell"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// OpenFunc opens a persistence module for one application's configuration.
type OpenFunc func(ctx context.Context, env config.Env) (recorder.Factory, error)

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
		panic("persistence: Register of module " + name + " with a nil OpenFunc")
	}
	modulesMu.Lock()
	defer modulesMu.Unlock()
	// Check every name before registering any, so that a recovered panic
	// leaves the registry as it was.
	for i, n := range names {
		if _, dup := modules[n]; dup || slices.Contains(names[:i], n) {
			panic("persistence: Register called twice for module " + n)
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
func ModuleName(env config.Env) string {
	for _, k := range moduleKeys {
		if v, ok := env.Lookup(k); ok && v != "" {
			return v
		}
	}
	return DefaultModule
}

// modulePackages are the packages that register the project's own modules,
// for the hint of an error about a module that is not linked.
var modulePackages = map[string]string{
	"sqlite":       "github.com/eventsourcing-go/eventsourcing/recorder/sqlite",
	"postgres":     "github.com/eventsourcing-go/eventsourcing/recorder/postgres",
	"eventstoredb": "github.com/eventsourcing-go/eventsourcing/esdb",
}

// lookupModule finds a registered module by its exact name, else by a name
// that differs only in case or surrounding space ("SQLite"), which it
// reports as not exact.
func lookupModule(name string) (open OpenFunc, canonical string, exact bool) {
	modulesMu.RLock()
	defer modulesMu.RUnlock()
	if open, ok := modules[name]; ok {
		return open, name, true
	}
	trimmed := strings.TrimSpace(name)
	names := make([]string, 0, len(modules))
	for n := range modules {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.EqualFold(n, trimmed) {
			return modules[n], n, false
		}
	}
	return nil, "", false
}

// ResolveModule returns the registered name of the persistence module env
// selects: as written, or as registered when it was written in another case
// ("SQLite" is "sqlite"). It reports false for a module that is not
// registered.
func ResolveModule(env config.Env) (string, bool) {
	open, name, _ := lookupModule(ModuleName(env))
	return name, open != nil
}

// Open opens the persistence module selected by env's PERSISTENCE_MODULE. A
// name written in another case than registered ("SQLite") opens the module
// with a warning; a setting whose key looks like a misspelling of
// PERSISTENCE_MODULE ("PERSISTANCE_MODULE") is warned about too, because it
// is otherwise silently ignored.
func Open(ctx context.Context, env config.Env) (recorder.Factory, error) {
	config.WarnMisspelledKeys(env, moduleKeys[0])
	name := ModuleName(env)
	open, canonical, exact := lookupModule(name)
	if open == nil {
		return nil, fmt.Errorf("%w: persistence module %q is not registered (registered: %v)%s",
			recorder.ErrInfrastructureFactory, name, Modules(), moduleHint(name))
	}
	if !exact {
		slog.Warn("persistence module name matched regardless of case; write it as registered",
			"app", env.Name(), "key", env.Prefixed(moduleKeys[0]), "given", name, "module", canonical)
	}
	f, err := open(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("%w: opening persistence module %q for %q: %w", recorder.ErrInfrastructureFactory, canonical, env.Name(), err)
	}
	return f, nil
}

// moduleHint says how to link a known module, or which registered name is
// closest to a misspelt one.
func moduleHint(name string) string {
	lower := strings.ToLower(strings.TrimSpace(name))
	if pkg, ok := modulePackages[lower]; ok {
		return fmt.Sprintf("; import its package to link it into the binary: import _ %q", pkg)
	}
	best, bestDist := "", 3
	for _, n := range append(Modules(), slices.Collect(maps.Keys(modulePackages))...) {
		if d := spell.Distance(lower, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	if best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return "; import the module's package (for example _ \"github.com/eventsourcing-go/eventsourcing/recorder/sqlite\") to link it into the binary"
}
