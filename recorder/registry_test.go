package recorder_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

type fakeFactory struct {
	recorder.Factory
	env recorder.Env
}

func TestModuleName(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"default", nil, recorder.DefaultModule},
		{"PERSISTENCE_MODULE", map[string]string{"PERSISTENCE_MODULE": "sqlite"}, "sqlite"},
		{"prefixed", map[string]string{"APP_PERSISTENCE_MODULE": "postgres", "PERSISTENCE_MODULE": "sqlite"}, "postgres"},
		{"legacy INFRASTRUCTURE_FACTORY", map[string]string{"INFRASTRUCTURE_FACTORY": "eventsourcing.sqlite:Factory"}, "eventsourcing.sqlite:Factory"},
		{"legacy FACTORY_TOPIC", map[string]string{"FACTORY_TOPIC": "popo"}, "popo"},
		{"PERSISTENCE_MODULE before the legacy names", map[string]string{"PERSISTENCE_MODULE": "a", "INFRASTRUCTURE_FACTORY": "b", "FACTORY_TOPIC": "c"}, "a"},
		{"empty means unset", map[string]string{"PERSISTENCE_MODULE": "", "FACTORY_TOPIC": "popo"}, "popo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, recorder.ModuleName(recorder.NewEnvFrom("app", tt.env, nil)))
		})
	}
}

func TestRegisterAndOpen(t *testing.T) {
	broken := errors.New("cannot reach the database")
	recorder.Register("registry-test-ok", func(_ context.Context, env recorder.Env) (recorder.Factory, error) {
		return fakeFactory{env: env}, nil
	}, "registry-test-alias")
	recorder.Register("registry-test-broken", func(context.Context, recorder.Env) (recorder.Factory, error) {
		return nil, broken
	})
	assert.Subset(t, recorder.Modules(), []string{"registry-test-ok", "registry-test-alias", "registry-test-broken"})
	assert.IsIncreasing(t, recorder.Modules())

	for _, name := range []string{"registry-test-ok", "registry-test-alias"} {
		f, err := recorder.Open(t.Context(), recorder.NewEnvFrom("app", map[string]string{"PERSISTENCE_MODULE": name}, nil))
		require.NoError(t, err)
		assert.Equal(t, "app", f.(fakeFactory).env.Name(), "the module sees the application's env")
	}

	_, err := recorder.Open(t.Context(), recorder.NewEnvFrom("app", map[string]string{"PERSISTENCE_MODULE": "registry-test-broken"}, nil))
	require.ErrorIs(t, err, recorder.ErrInfrastructureFactory)
	require.ErrorIs(t, err, broken, "the module's error is kept")
	assert.Contains(t, err.Error(), `"registry-test-broken"`)

	_, err = recorder.Open(t.Context(), recorder.NewEnvFrom("app", map[string]string{"PERSISTENCE_MODULE": "registry-test-missing"}, nil))
	require.ErrorIs(t, err, recorder.ErrInfrastructureFactory)
	assert.Contains(t, err.Error(), `"registry-test-missing" is not registered`)
	assert.Contains(t, err.Error(), "import the module's package", "the message says how to link a module in")
}

func TestRegisterTwicePanicsAndRegistersNothing(t *testing.T) {
	open := func(context.Context, recorder.Env) (recorder.Factory, error) { return nil, nil }
	recorder.Register("registry-test-taken", open)
	assert.Panics(t, func() { recorder.Register("registry-test-taken", open) })
	assert.Panics(t, func() { recorder.Register("registry-test-fresh", open, "registry-test-taken") })
	assert.NotContains(t, recorder.Modules(), "registry-test-fresh", "a failed Register leaves the registry unchanged")
	assert.Panics(t, func() { recorder.Register("registry-test-self", open, "registry-test-self") })
	assert.Panics(t, func() { recorder.Register("registry-test-nil", nil) })
	assert.NotContains(t, recorder.Modules(), "registry-test-nil")
}
