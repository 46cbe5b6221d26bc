package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/persistence"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

type fakeFactory struct {
	recorder.Factory
	env config.Env
}

func TestModuleName(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"default", nil, persistence.DefaultModule},
		{"PERSISTENCE_MODULE", map[string]string{"PERSISTENCE_MODULE": "sqlite"}, "sqlite"},
		{"prefixed", map[string]string{"APP_PERSISTENCE_MODULE": "postgres", "PERSISTENCE_MODULE": "sqlite"}, "postgres"},
		{"legacy INFRASTRUCTURE_FACTORY", map[string]string{"INFRASTRUCTURE_FACTORY": "eventsourcing.sqlite:Factory"}, "eventsourcing.sqlite:Factory"},
		{"legacy FACTORY_TOPIC", map[string]string{"FACTORY_TOPIC": "popo"}, "popo"},
		{"PERSISTENCE_MODULE before the legacy names", map[string]string{"PERSISTENCE_MODULE": "a", "INFRASTRUCTURE_FACTORY": "b", "FACTORY_TOPIC": "c"}, "a"},
		{"empty means unset", map[string]string{"PERSISTENCE_MODULE": "", "FACTORY_TOPIC": "popo"}, "popo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, persistence.ModuleName(config.NewEnvFrom("app", tt.env, nil)))
		})
	}
}

func TestRegisterAndOpen(t *testing.T) {
	p := registryPrefix()
	broken := errors.New("cannot reach the database")
	persistence.Register(p+"ok", func(_ context.Context, env config.Env) (recorder.Factory, error) {
		return fakeFactory{env: env}, nil
	}, p+"alias")
	persistence.Register(p+"broken", func(context.Context, config.Env) (recorder.Factory, error) {
		return nil, broken
	})
	assert.Subset(t, persistence.Modules(), []string{p + "ok", p + "alias", p + "broken"})
	assert.IsIncreasing(t, persistence.Modules())

	for _, name := range []string{p + "ok", p + "alias"} {
		f, err := persistence.Open(t.Context(), config.NewEnvFrom("app", map[string]string{"PERSISTENCE_MODULE": name}, nil))
		require.NoError(t, err)
		assert.Equal(t, "app", f.(fakeFactory).env.Name(), "the module sees the application's env")
	}

	_, err := persistence.Open(t.Context(), config.NewEnvFrom("app", map[string]string{"PERSISTENCE_MODULE": p + "broken"}, nil))
	require.ErrorIs(t, err, recorder.ErrInfrastructureFactory)
	require.ErrorIs(t, err, broken, "the module's error is kept")
	assert.Contains(t, err.Error(), `"`+p+`broken"`)

	_, err = persistence.Open(t.Context(), config.NewEnvFrom("app", map[string]string{"PERSISTENCE_MODULE": p + "missing"}, nil))
	require.ErrorIs(t, err, recorder.ErrInfrastructureFactory)
	assert.Contains(t, err.Error(), `"`+p+`missing" is not registered`)
	assert.Contains(t, err.Error(), "import the module's package", "the message says how to link a module in")
}

func TestRegisterTwicePanicsAndRegistersNothing(t *testing.T) {
	p := registryPrefix()
	open := func(context.Context, config.Env) (recorder.Factory, error) { return nil, nil }
	persistence.Register(p+"taken", open)
	assert.Panics(t, func() { persistence.Register(p+"taken", open) })
	assert.Panics(t, func() { persistence.Register(p+"fresh", open, p+"taken") })
	assert.NotContains(t, persistence.Modules(), p+"fresh", "a failed Register leaves the registry unchanged")
	assert.Panics(t, func() { persistence.Register(p+"self", open, p+"self") })
	assert.Panics(t, func() { persistence.Register(p+"nil", nil) })
	assert.NotContains(t, persistence.Modules(), p+"nil")
}

// registryPrefix gives each run of a test its own module names, because the
// registry is global and a name can be registered only once (go test -count).
func registryPrefix() string {
	return fmt.Sprintf("registry-test-%d-", registryRuns.Add(1))
}

var registryRuns atomic.Int64
