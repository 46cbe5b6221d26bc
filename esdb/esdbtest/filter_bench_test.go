package esdbtest

import (
	"log/slog"
	"testing"
)

// BenchmarkFilterMatch measures one filter evaluation of a repeated event
// type: a .NET regex (the default system-event exclusion, and an
// alternation of topics as the esdb module sends), whose verdict is cached
// per name, beside prefixes; "uncached" is the regex match itself.
func BenchmarkFilterMatch(b *testing.B) {
	r := &record{Stream: "dogschool-0f8fad5b-d9cb-469f-a165-70867728950e", Type: "dogschool:Dog.TrickAdded"}
	topics := expr{regex: `^(?:dogschool:Dog\.Registered|dogschool:Dog\.TrickAdded)$`}
	for _, c := range []struct {
		name string
		e    expr
	}{
		{"exclusion", expr{regex: `^(?!(\$.+$|PersistentConfig\d+$))`}},
		{"topics", topics},
		{"prefix", expr{prefixes: []string{"dogschool:Dog.Registered", "dogschool:Dog.TrickAdded"}}},
		{"uncached", topics},
	} {
		b.Run(c.name, func(b *testing.B) {
			f, err := newFilter(slog.New(slog.DiscardHandler), false, c.e, 0, false, 1)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if c.name == "uncached" {
					f.seen.Clear()
					f.nSeen.Store(0)
				}
				if !f.match(r) {
					b.Fatal("no match")
				}
			}
		})
	}
}
