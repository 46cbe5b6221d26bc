package recorder

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
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
func ResolveModule(env Env) (string, bool) {
	open, name, _ := lookupModule(ModuleName(env))
	return name, open != nil
}

// Open opens the persistence module selected by env's PERSISTENCE_MODULE. A
// name written in another case than registered ("SQLite") opens the module
// with a warning; a setting whose key looks like a misspelling of
// PERSISTENCE_MODULE ("PERSISTANCE_MODULE") is warned about too, because it
// is otherwise silently ignored.
func Open(ctx context.Context, env Env) (Factory, error) {
	warnMisspelledKeys(env, moduleKeys[:1])
	name := ModuleName(env)
	open, canonical, exact := lookupModule(name)
	if open == nil {
		return nil, fmt.Errorf("%w: persistence module %q is not registered (registered: %v)%s",
			ErrInfrastructureFactory, name, Modules(), moduleHint(name))
	}
	if !exact {
		slog.Warn("persistence module name matched regardless of case; write it as registered",
			"app", env.Name(), "key", env.Prefixed(moduleKeys[0]), "given", name, "module", canonical)
	}
	f, err := open(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("%w: opening persistence module %q for %q: %w", ErrInfrastructureFactory, canonical, env.Name(), err)
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
		if d := editDistance(lower, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	if best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return "; import the module's package (for example _ \"github.com/eventsourcing-go/eventsourcing/recorder/sqlite\") to link it into the binary"
}

// WarnMisspelledKeys logs a warning for each setting visible to env (its
// overrides and the process environment) whose key looks like a
// misspelling of one of keys, with or without env's prefix: within two edits
// of it, or equal to it in another case. Such a setting would otherwise be
// ignored without a word.
func WarnMisspelledKeys(env Env, keys ...string) { warnMisspelledKeys(env, keys) }

func warnMisspelledKeys(env Env, keys []string) {
	candidates := map[string]string{}
	for k, v := range env.overrides {
		candidates[k] = v
	}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if got, ok := env.lookup(k); ok && got == v {
			candidates[k] = v
		}
	}
	prefix := ""
	if env.name != "" {
		prefix = strings.ToUpper(env.name) + "_"
	}
	for k := range candidates {
		bare := k
		if prefix != "" && strings.HasPrefix(strings.ToUpper(k), prefix) {
			bare = k[len(prefix):]
		}
		if slices.Contains(keys, bare) {
			continue
		}
		for _, want := range keys {
			if strings.HasSuffix(bare, "_"+want) || editDistance(strings.ToUpper(bare), want) > 2 {
				// Another component's setting (B_PERSISTENCE_MODULE), or
				// not alike.
				continue
			}
			slog.Warn("setting ignored: its key looks like a misspelling", "key", k, "did_you_mean", strings.TrimSuffix(k, bare)+want, "app", env.name)
		}
	}
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
