package dogschool_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/example/dogschool"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/system"
)

// BenchmarkDogSchoolCounters: 100 dogs registered (untimed), then 1,000
// AddTrick commands timed until Counters has tracked the last one, per runner
// and persistence module (see benchModules; BenchmarkDogSchoolCountersSubstrate
// is what the module itself spends per command),
// without an aggregate cache (as the reference library's figures) and with
// one (AGGREGATE_CACHE_MAXSIZE=1000): Counters is the only writer of its
// counters, so a cache spares it replaying a counter's history per event.
func BenchmarkDogSchoolCounters(b *testing.B) {
	const dogs, commands = 100, 1000
	tricks := []string{"sit", "stay", "roll over", "fetch", "play dead", "beg", "spin", "shake", "crawl", "bow"}
	for _, rc := range runners {
		for _, module := range benchModules {
			for _, cache := range []string{"nocache", "cache"} {
				b.Run(rc.name+"/"+module.name+"/"+cache, func(b *testing.B) {
					ctx := context.Background()
					var elapsed, cpu time.Duration
					for range b.N {
						b.StopTimer()
						env := module.env(b)
						if cache == "cache" {
							env["AGGREGATE_CACHE_MAXSIZE"] = "1000"
						}
						r := rc.new(dogschool.System(), env)
						if err := r.Start(ctx); err != nil {
							b.Fatal(err)
						}
						school := system.MustGet[*dogschool.DogSchool](r)
						ids := make([]uuid.UUID, dogs)
						for i := range ids {
							var err error
							if ids[i], err = school.RegisterDog(ctx, fmt.Sprint("dog", i)); err != nil {
								b.Fatal(err)
							}
						}
						b.StartTimer()
						start, cpu0 := time.Now(), cpuTime()
						for i := range commands {
							if err := school.AddTrick(ctx, ids[i%dogs], tricks[i%len(tricks)]); err != nil {
								b.Fatal(err)
							}
						}
						last, _, err := school.Recorder().MaxNotificationID(ctx)
						if err != nil {
							b.Fatal(err)
						}
						if err := system.Wait(ctx, r, "Counters", "DogSchool", last, time.Minute); err != nil {
							b.Fatal(err)
						}
						elapsed += time.Since(start)
						cpu += cpuTime() - cpu0
						b.StopTimer()
						if err := r.Stop(); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(commands*b.N)/elapsed.Seconds(), "cmds/s")
					// The process's CPU per command while timed, all threads:
					// steadier than the rate on a shared machine.
					b.ReportMetric(float64(cpu.Nanoseconds())/float64(commands*b.N), "cpu-ns/cmd")
					b.ReportMetric(0, "ns/op")
				})
			}
		}
	}
}

// BenchmarkProjectionCatchUp: a TrainingSchool with 10,000 recorded events
// (untimed), then a projection runner timed from Start until its view has
// tracked the last one.
func BenchmarkProjectionCatchUp(b *testing.B) {
	const events = 10_000
	ctx := context.Background()
	school, err := dogschool.NewTrainingSchool(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer school.Close()
	batch := make([]eventsourcing.Root, 0, 100)
	for i := range events {
		batch = append(batch, dogschool.NewDogWithID(dogschool.DogID(fmt.Sprint("dog", i)), fmt.Sprint("dog", i)))
		if len(batch) == cap(batch) {
			if _, err := school.Save(ctx, batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	last, _, err := school.Recorder().MaxNotificationID(ctx)
	if err != nil {
		b.Fatal(err)
	}
	views := []struct {
		name string
		open func(b *testing.B) dogschool.CountView
	}{
		{"Memory", func(*testing.B) dogschool.CountView { return dogschool.NewMemoryCountView() }},
		{"SQLite", func(b *testing.B) dogschool.CountView {
			v, err := dogschool.OpenSQLiteCountView(ctx, config.NewEnvFrom("CountProjection",
				map[string]string{"SQLITE_DBNAME": filepath.Join(b.TempDir(), "view.db")}, nil))
			if err != nil {
				b.Fatal(err)
			}
			return v
		}},
	}
	for _, vc := range views {
		b.Run(vc.name, func(b *testing.B) {
			var elapsed time.Duration
			for range b.N {
				b.StopTimer()
				view := vc.open(b)
				runner := projection.NewRunnerFor(school, dogschool.CountProjection{View: view}, view)
				b.StartTimer()
				start := time.Now()
				if err := runner.Start(ctx); err != nil {
					b.Fatal(err)
				}
				if err := runner.Wait(ctx, last, time.Minute); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
				b.StopTimer()
				if err := runner.Stop(); err != nil {
					b.Fatal(err)
				}
				if c, ok := view.(interface{ Close() error }); ok {
					_ = c.Close()
				}
			}
			b.ReportMetric(float64(events*b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
