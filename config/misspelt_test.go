package config_test

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/eventsourcing-go/eventsourcing/config"
)

// Settings whose keys look like misspellings of known keys are warned
// about; keys spelt right, and other components' settings, are not.
func TestWarnMisspelledKeys(t *testing.T) {
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	t.Setenv("WARNTEST_PERSISTENCE_MODUL", "sqlite")
	env := config.NewEnv("WarnTest", map[string]string{
		"persistence_module":            "sqlite",
		"PERSISTENCE_MODULE":            "memory",
		"B_PERSISTENCE_MODULE":          "sqlite",
		"OTHERAPP_PERSISTENCE_MODULE":   "sqlite",
		"WARNTEST_PERSISTENCE_MODULE":   "memory",
		"WARNTEST_PERSISTENCE_MODULESS": "x",
	})
	config.WarnMisspelledKeys(env, "PERSISTENCE_MODULE")
	out := logs.String()
	for _, k := range []string{"persistence_module", "WARNTEST_PERSISTENCE_MODUL", "WARNTEST_PERSISTENCE_MODULESS"} {
		assert.Equal(t, 1, bytes.Count([]byte(out), []byte("key="+k+" ")), k)
	}
	assert.Contains(t, out, "did_you_mean=WARNTEST_PERSISTENCE_MODULE ")
	for _, k := range []string{"key=PERSISTENCE_MODULE ", "key=B_PERSISTENCE_MODULE", "key=OTHERAPP_", "key=WARNTEST_PERSISTENCE_MODULE "} {
		assert.NotContains(t, out, k)
	}
}
