package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/config"
)

func lookupFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestEnvLookupOrder(t *testing.T) {
	tests := []struct {
		name      string
		overrides map[string]string
		process   map[string]string
		want      string
		wantOK    bool
	}{
		{"unset", nil, nil, "", false},
		{"plain key from the process", nil, map[string]string{"K": "p"}, "p", true},
		{"plain key from overrides", map[string]string{"K": "o"}, nil, "o", true},
		{"overrides win over the process", map[string]string{"K": "o"}, map[string]string{"K": "p"}, "o", true},
		{"prefixed key wins over plain", nil, map[string]string{"K": "p", "APP_K": "ap"}, "ap", true},
		{"prefixed override wins over everything", map[string]string{"APP_K": "ao", "K": "o"}, map[string]string{"APP_K": "ap", "K": "p"}, "ao", true},
		{"a prefixed process key wins over a plain override", map[string]string{"K": "o"}, map[string]string{"APP_K": "ap"}, "ap", true},
		{"an empty value counts as set", map[string]string{"APP_K": ""}, map[string]string{"K": "p"}, "", true},
		{"another application's key is not seen", nil, map[string]string{"OTHER_K": "x"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := config.NewEnvFrom("app", tt.overrides, lookupFrom(tt.process))
			got, ok := env.Lookup("K")
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestEnvNames(t *testing.T) {
	env := config.NewEnvFrom("DogSchool", map[string]string{"DOGSCHOOL_X": "dog", "COUNTERS_X": "counter"}, nil)
	assert.Equal(t, "DogSchool", env.Name())
	assert.Equal(t, "DOGSCHOOL_X", env.Prefixed("X"))
	assert.Equal(t, "dog", env.String("X", "def"))
	other := env.WithName("Counters")
	assert.Equal(t, "counter", other.String("X", "def"))
	assert.Equal(t, "dog", env.String("X", "def"), "WithName leaves the original unchanged")

	unnamed := config.NewEnvFrom("", map[string]string{"X": "plain"}, nil)
	assert.Equal(t, "X", unnamed.Prefixed("X"))
	assert.Equal(t, "plain", unnamed.String("X", "def"))
	assert.Equal(t, "def", unnamed.String("Y", "def"))
}

func TestNewEnvReadsTheProcessEnvironment(t *testing.T) {
	t.Setenv("RECORDERTESTAPP_SOME_KEY", "from process")
	env := config.NewEnv("recordertestapp", nil)
	assert.Equal(t, "from process", env.String("SOME_KEY", ""))
	env = config.NewEnv("recordertestapp", map[string]string{"RECORDERTESTAPP_SOME_KEY": "override"})
	assert.Equal(t, "override", env.String("SOME_KEY", ""))
}

func TestEnvBool(t *testing.T) {
	for _, v := range []string{"y", "Yes", "t", "TRUE", "on", "1", " true "} {
		got, err := config.NewEnvFrom("", map[string]string{"B": v}, nil).Bool("B", false)
		require.NoError(t, err, v)
		assert.True(t, got, v)
	}
	for _, v := range []string{"n", "NO", "f", "False", "off", "0"} {
		got, err := config.NewEnvFrom("", map[string]string{"B": v}, nil).Bool("B", true)
		require.NoError(t, err, v)
		assert.False(t, got, v)
	}
	got, err := config.NewEnvFrom("", nil, nil).Bool("B", true)
	require.NoError(t, err)
	assert.True(t, got, "unset gives the default")

	for _, v := range []string{"maybe", "", "2"} {
		_, err := config.NewEnvFrom("app", map[string]string{"B": v}, nil).Bool("B", false)
		require.ErrorIs(t, err, config.ErrConfiguration, "%q", v)
		assert.Contains(t, err.Error(), "APP_B", "the message names the key as the user would set it")
	}
}

func TestEnvInt(t *testing.T) {
	env := config.NewEnvFrom("", map[string]string{"N": " 42 ", "EMPTY": " ", "BAD": "4x", "NEG": "-3"}, nil)
	n, err := env.Int("N", 7)
	require.NoError(t, err)
	assert.Equal(t, 42, n)
	n, err = env.Int("NEG", 7)
	require.NoError(t, err)
	assert.Equal(t, -3, n)
	n, err = env.Int("EMPTY", 7)
	require.NoError(t, err)
	assert.Equal(t, 7, n, "a blank value gives the default")
	n, err = env.Int("UNSET", 7)
	require.NoError(t, err)
	assert.Equal(t, 7, n)
	_, err = env.Int("BAD", 7)
	require.ErrorIs(t, err, config.ErrConfiguration)
	assert.Contains(t, err.Error(), `"4x"`)
}

func TestEnvSeconds(t *testing.T) {
	tests := []struct {
		value   string
		want    time.Duration
		wantErr bool
	}{
		{"1", time.Second, false},
		{"0.25", 250 * time.Millisecond, false},
		{" 5 ", 5 * time.Second, false},
		{"250ms", 250 * time.Millisecond, false},
		{"1m30s", 90 * time.Second, false},
		{"", 3 * time.Second, false}, // blank: the default
		{"soon", 3 * time.Second, true},
		{"inf", 3 * time.Second, true},
		{"NaN", 3 * time.Second, true},
		{"1e300", 3 * time.Second, true},
		{"-1e300", 3 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			got, err := config.NewEnvFrom("", map[string]string{"S": tt.value}, nil).Seconds("S", 3*time.Second)
			if tt.wantErr {
				require.ErrorIs(t, err, config.ErrConfiguration)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}
