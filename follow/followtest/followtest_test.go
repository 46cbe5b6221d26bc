package followtest_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/follow/followtest"
)

// memory is the memory module as a source: its recorder's signal wakes the
// one live subscription.
var memory = followtest.Harness{
	Name: "memory",
	Open: func(tb testing.TB, opts eventsourcing.Options) followtest.Upstream {
		opts.Env, opts.Lookup = map[string]string{"PERSISTENCE_MODULE": "memory"}, eventsourcing.NoEnvironment
		app, err := eventsourcing.NewApplication(tb.Context(), opts)
		require.NoError(tb, err)
		tb.Cleanup(func() { _ = app.Close() })
		return followtest.Upstream{App: app}
	},
}

func TestMemory(t *testing.T) { followtest.Run(t, memory) }

func BenchmarkMemory(b *testing.B) { followtest.Bench(b, memory) }
