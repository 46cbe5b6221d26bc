package memory_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/persistence"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/memory"
	"github.com/eventsourcing-go/eventsourcing/recorder/recordertest"
)

var factory = recordertest.Factory{
	Name: "memory",
	Open: func(testing.TB) recorder.Factory { return memory.NewFactory() },
	Caps: recordertest.DefaultCapabilities(),
}

func TestConformance(t *testing.T) { recordertest.Run(t, factory) }

func BenchmarkRecorder(b *testing.B) { recordertest.Bench(b, factory) }

func TestRegisteredAsDefault(t *testing.T) {
	for _, name := range []string{"", "memory", "popo", "eventsourcing.popo"} {
		overrides := map[string]string{}
		if name != "" {
			overrides["PERSISTENCE_MODULE"] = name
		}
		f, err := persistence.Open(t.Context(), config.NewEnvFrom("app", overrides, nil))
		require.NoError(t, err, "module %q", name)
		require.IsType(t, &memory.Factory{}, f, "module %q", name)
		require.NoError(t, f.Close())
	}
}
