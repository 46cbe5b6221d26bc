// Package config is how every component of eventsourcing-go reads its settings:
// an Env is the name of an application, projection or view and the settings it
// sees, looked up as NAME_KEY before KEY, overrides given in code before the
// process environment. Persistence modules (package persistence), backends and
// applications all take an Env, so one process environment configures every
// component of a system.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventsourcing-go/eventsourcing/internal/spell"
)

// ErrConfiguration reports a malformed or missing setting.
var ErrConfiguration = errors.New("configuration error")

// Env is the configuration of one application, projection or view: a name and the
// settings it sees. A key K is looked up as NAME_K (name upper-cased) first, then
// as K, so that one process environment can configure every application of a
// system differently (COUNTERS_PERSISTENCE_MODULE=sqlite). Overrides given in code
// win over the process environment; an empty value counts as set.
type Env struct {
	name      string
	overrides map[string]string
	lookup    func(string) (string, bool)
}

// NewEnv returns the configuration of the named component, reading the process
// environment under the given overrides.
func NewEnv(name string, overrides map[string]string) Env {
	return Env{name: name, overrides: overrides, lookup: os.LookupEnv}
}

// NewEnvFrom is NewEnv with another source than the process environment, for
// tests and embedding (lookup may be nil for overrides only).
func NewEnvFrom(name string, overrides map[string]string, lookup func(string) (string, bool)) Env {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	return Env{name: name, overrides: overrides, lookup: lookup}
}

// Name returns the name the keys are prefixed with.
func (e Env) Name() string { return e.name }

// WithName returns the same settings seen under another name, as a follower sees
// its leader's settings (for example the cipher key) when decoding its events.
func (e Env) WithName(name string) Env { e.name = name; return e }

// Prefixed returns NAME_key for this Env's name, as used in error messages.
func (e Env) Prefixed(key string) string {
	if e.name == "" {
		return key
	}
	return strings.ToUpper(e.name) + "_" + key
}

// Lookup returns the value of key, trying NAME_key before key, overrides before
// the process environment at each step.
func (e Env) Lookup(key string) (string, bool) {
	keys := []string{key}
	if e.name != "" {
		keys = []string{e.Prefixed(key), key}
	}
	for _, k := range keys {
		if v, ok := e.overrides[k]; ok {
			return v, true
		}
		if e.lookup != nil {
			if v, ok := e.lookup(k); ok {
				return v, true
			}
		}
	}
	return "", false
}

// String returns the value of key, or def when it is not set.
func (e Env) String(key, def string) string {
	if v, ok := e.Lookup(key); ok {
		return v
	}
	return def
}

// Bool parses key as a boolean: y yes t true on 1 / n no f false off 0, in any case.
func (e Env) Bool(key string, def bool) (bool, error) {
	v, ok := e.Lookup(key)
	if !ok {
		return def, nil
	}
	b, err := ParseBool(v)
	if err != nil {
		return def, fmt.Errorf("%s: %w", e.Prefixed(key), err)
	}
	return b, nil
}

// Int parses key as an integer.
func (e Env) Int(key string, def int) (int, error) {
	v, ok := e.Lookup(key)
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return def, fmt.Errorf("%s=%q is not an integer: %w", e.Prefixed(key), v, ErrConfiguration)
	}
	return n, nil
}

// Seconds parses key as a number of seconds (a float, as in the reference's
// settings) or, for convenience, a Go duration such as "250ms".
func (e Env) Seconds(key string, def time.Duration) (time.Duration, error) {
	v, ok := e.Lookup(key)
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	v = strings.TrimSpace(v)
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		// ParseFloat accepts "inf" and "nan", and a huge number overflows a
		// Duration; converting those gives an arbitrary value, so refuse them.
		ns := f * float64(time.Second)
		if math.IsNaN(ns) || ns >= math.MaxInt64 || ns <= math.MinInt64 {
			return def, fmt.Errorf("%s=%q is out of range as a number of seconds: %w", e.Prefixed(key), v, ErrConfiguration)
		}
		return time.Duration(ns), nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d, nil
	}
	return def, fmt.Errorf("%s=%q is not a number of seconds: %w", e.Prefixed(key), v, ErrConfiguration)
}

// ParseBool parses the reference's boolean spellings.
func ParseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "y", "yes", "t", "true", "on", "1":
		return true, nil
	case "n", "no", "f", "false", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (use y/n, yes/no, true/false, on/off, 1/0): %w", v, ErrConfiguration)
}

// WarnMisspelledKeys logs a warning for each setting visible to env (its
// overrides and the process environment) whose key looks like a
// misspelling of one of keys, with or without env's prefix: within two edits
// of it, or equal to it in another case. Such a setting would otherwise be
// ignored without a word.
func WarnMisspelledKeys(env Env, keys ...string) {
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
			if strings.HasSuffix(bare, "_"+want) || spell.Distance(strings.ToUpper(bare), want) > 2 {
				// Another component's setting (B_PERSISTENCE_MODULE), or
				// not alike.
				continue
			}
			slog.Warn("setting ignored: its key looks like a misspelling", "key", k, "did_you_mean", strings.TrimSuffix(k, bare)+want, "app", env.name)
		}
	}
}
