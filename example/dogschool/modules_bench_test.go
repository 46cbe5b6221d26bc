package dogschool_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/example/dogschool"
	"github.com/eventsourcing-go/eventsourcing/persistence"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// benchModules are the persistence modules the system benchmarks run on,
// each with the settings that give DogSchool and Counters their own storage:
// memory, SQLite files with synchronous=FULL (the default) and NORMAL, and
// PostgreSQL in a schema of the benchmark's own (skipped when no server is
// reachable, see postgresEnv).
var benchModules = []struct {
	name string
	env  func(b *testing.B) map[string]string
}{
	{"memory", func(*testing.B) map[string]string { return map[string]string{} }},
	{"sqlite", func(b *testing.B) map[string]string { return sqliteEnv(b, "DogSchool", "Counters") }},
	{"sqlite-normal", func(b *testing.B) map[string]string {
		env := sqliteEnv(b, "DogSchool", "Counters")
		env["SQLITE_SYNCHRONOUS"] = "NORMAL"
		return env
	}},
	{"postgres", func(b *testing.B) map[string]string { return postgresEnv(b) }},
}

// BenchmarkDogSchoolCountersSubstrate is what the backend itself spends on
// one DogSchool → Counters command, the substrate of
// BenchmarkDogSchoolCounters on each module: DogSchool's application
// recorder records a dog's next event, then Counters' process recorder
// records a counter's next event with the tracking position of the dog's,
// through the recorder interfaces with states encoded beforehand, on 100 dogs
// and 10 counters as the system benchmark. It reports the commands' rate
// (cmds/s) beside the time per command (ns/op).
func BenchmarkDogSchoolCountersSubstrate(b *testing.B) {
	const dogs, counters = 100, 10
	for _, m := range benchModules {
		b.Run(m.name, func(b *testing.B) {
			ctx := context.Background()
			env := m.env(b)
			school := openRecorders(ctx, b, "DogSchool", env)
			app, err := school.ApplicationRecorder(ctx)
			if err != nil {
				b.Fatal(err)
			}
			proc, err := openRecorders(ctx, b, "Counters", env).ProcessRecorder(ctx)
			if err != nil {
				b.Fatal(err)
			}
			dogIDs, counterIDs := make([]string, dogs), make([]string, counters)
			for i := range dogIDs {
				dogIDs[i] = eventsourcing.NewID().String()
			}
			for i := range counterIDs {
				counterIDs[i] = dogschool.CounterID(fmt.Sprint("trick", i)).String()
			}
			trick, incremented := sampleStates(b)
			dogVersions, counterVersions := make([]int64, dogs), make([]int64, counters)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				d, c := i%dogs, i%counters
				dogVersions[d]++
				ids, err := app.InsertEvents(ctx, []recorder.StoredEvent{{OriginatorID: dogIDs[d],
					OriginatorVersion: dogVersions[d], Topic: dogschool.TopicTrickAdded, State: trick}})
				if err != nil || len(ids) != 1 {
					b.Fatal(ids, err)
				}
				counterVersions[c]++
				if _, err := proc.InsertEvents(ctx, []recorder.StoredEvent{{OriginatorID: counterIDs[c],
					OriginatorVersion: counterVersions[c], Topic: "counters:Counter.Incremented", State: incremented}},
					recorder.WithTracking(recorder.Tracking{ApplicationName: "DogSchool", NotificationID: ids[0]})); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
		})
	}
}

// openRecorders opens the persistence module env names for the application
// name, closed at the end of the benchmark.
func openRecorders(ctx context.Context, b *testing.B, name string, env map[string]string) recorder.Factory {
	f, err := persistence.Open(ctx, config.NewEnvFrom(name, env, eventsourcing.NoEnvironment))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.Close() })
	return f
}

// sampleStates returns the stored states of a TrickAdded and of an
// Incremented event, as the applications' mappers encode them.
func sampleStates(b *testing.B) (trick, incremented []byte) {
	at := time.Now()
	s, err := eventsourcing.NewMapper(dogschool.DogTypes()).FromEvent(eventsourcing.Event{
		OriginatorID: uuid.New(), OriginatorVersion: 2, Timestamp: at, Data: dogschool.TrickAdded{Trick: "roll over"}})
	if err != nil {
		b.Fatal(err)
	}
	c, err := eventsourcing.NewMapper(dogschool.CounterTypes()).FromEvent(eventsourcing.Event{
		OriginatorID: uuid.New(), OriginatorVersion: 2, Timestamp: at, Data: dogschool.Incremented{}})
	if err != nil {
		b.Fatal(err)
	}
	return s.State, c.State
}
