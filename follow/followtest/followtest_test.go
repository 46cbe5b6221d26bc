package followtest_test

import (
	"testing"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/follow/followtest"
)

// memory is the memory module as a source: its recorder's signal wakes the
// one live subscription.
var memory = followtest.Harness{
	Name: "memory",
	Open: func(tb testing.TB, opts eventsourcing.Options) followtest.Upstream {
		return followtest.Upstream{App: followtest.NewApplication(tb, opts, map[string]string{"PERSISTENCE_MODULE": "memory"})}
	},
}

func TestMemory(t *testing.T) { followtest.Run(t, memory) }

func BenchmarkMemory(b *testing.B) { followtest.Bench(b, memory) }
