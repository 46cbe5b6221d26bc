package dogschool_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/example/dogschool"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/system"
)

// The tutorial's system: DogSchool records dogs and tricks, Counters counts
// the tricks. With the single-threaded runner, Counters has processed a
// trick by the time AddTrick returns.
func Example_system() {
	ctx := context.Background()
	runner := system.NewSingleThreadedRunner(dogschool.System(), nil)
	if err := runner.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer runner.Stop()

	school := system.MustGet[*dogschool.DogSchool](runner)
	counters := system.MustGet[*dogschool.Counters](runner)

	billy, _ := school.RegisterDog(ctx, "Billy")
	milly, _ := school.RegisterDog(ctx, "Milly")
	_ = school.AddTrick(ctx, billy, "roll over")
	_ = school.AddTrick(ctx, milly, "roll over")
	_ = school.AddTrick(ctx, billy, "fetch ball")

	for _, trick := range []string{"roll over", "fetch ball", "play dead"} {
		n, _ := counters.GetCount(ctx, trick)
		fmt.Printf("%s: %d\n", trick, n)
	}
	// Output:
	// roll over: 2
	// fetch ball: 1
	// play dead: 0
}

// The materialised view of the TrainingSchool: a projection counts dogs and
// tricks into a view, catching up with the events recorded before it
// started, then following new ones.
func Example_materialisedView() {
	ctx := context.Background()
	school, err := dogschool.NewTrainingSchool(ctx, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer school.Close()
	_, _ = school.Register(ctx, "Fido")
	_, _ = school.AddTrick(ctx, "Fido", "roll over")
	_, _ = school.AddTrick(ctx, "Fido", "play dead")

	view := dogschool.NewMemoryCountView()
	showCounts(ctx, school, view)
	// Output:
	// dogs 1, tricks 2
	// dogs 1, tricks 3
	// dogs 1, tricks 4
}

// The same projection into a view in an SQLite database.
func Example_materialisedViewSQLite() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "countview-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	school, err := dogschool.NewTrainingSchool(ctx, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer school.Close()
	_, _ = school.Register(ctx, "Fido")
	_, _ = school.AddTrick(ctx, "Fido", "roll over")
	_, _ = school.AddTrick(ctx, "Fido", "play dead")

	env := config.NewEnv("CountProjection", map[string]string{"SQLITE_DBNAME": filepath.Join(dir, "view.db")})
	view, err := dogschool.OpenSQLiteCountView(ctx, env)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer view.Close()
	showCounts(ctx, school, view)
	// Output:
	// dogs 1, tricks 2
	// dogs 1, tricks 3
	// dogs 1, tricks 4
}

// showCounts runs the projection as the seed document does: wait for the
// existing events, query, add a trick, wait for it, query again.
func showCounts(ctx context.Context, school *dogschool.TrainingSchool, view dogschool.CountView) {
	runner := projection.NewRunnerFor(school, dogschool.CountProjection{View: view}, view)
	if err := runner.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer runner.Stop()

	print := func() {
		dogs, _ := view.DogCounter(ctx)
		tricks, _ := view.TrickCounter(ctx)
		fmt.Printf("dogs %d, tricks %d\n", dogs, tricks)
	}
	last, _, _ := school.Recorder().MaxNotificationID(ctx)
	if err := runner.Wait(ctx, last, 5*time.Second); err != nil {
		fmt.Println(err)
		return
	}
	print()
	for _, trick := range []string{"sit and stay", "jump hoop"} {
		id, _ := school.AddTrick(ctx, "Fido", trick)
		if err := runner.Wait(ctx, id, 5*time.Second); err != nil {
			fmt.Println(err)
			return
		}
		print()
	}
}
