package esdb_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
	"github.com/eventsourcing-go/eventsourcing/example/dogschool"
	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/grpcapp"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/system"
)

// dogCounting counts the TrainingSchool's dogs and tricks into an SQLite
// view (dogschool.SQLiteCountView); other events are left to the runtime.
type dogCounting struct{ view *dogschool.SQLiteCountView }

func (dogCounting) Name() string     { return "CountProjection" }
func (dogCounting) Topics() []string { return []string{topicRegistered, topicTrickAdded} }
func (p dogCounting) Process(ctx context.Context, e eventsourcing.Event, t recorder.Tracking) (bool, error) {
	switch e.Data.(type) {
	case Registered:
		return true, p.view.IncrDogCounter(ctx, t)
	case TrickAdded:
		return true, p.view.IncrTrickCounter(ctx, t)
	}
	return false, nil
}

// The design card's flow: the TrainingSchool on EventStoreDB (here the
// in-process esdbtest server), a counting projection into an SQLite view
// following it through a catch-up subscription, both served by the gRPC
// runner and queried over gRPC.
func Example_trainingSchoolSystem() {
	srv, err := esdbtest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	dir, _ := os.MkdirTemp("", "trainingschool")
	defer os.RemoveAll(dir)

	school := system.NewApp("TrainingSchool", func(ctx context.Context, env map[string]string) (*TrainingSchool, error) {
		app, err := eventsourcing.NewApplication(ctx, eventsourcing.Options{Name: "TrainingSchool", Types: dogTypes(), Env: env, Lookup: eventsourcing.NoEnvironment})
		if err != nil {
			return nil, err
		}
		return &TrainingSchool{app}, nil
	}, system.WithTypes(dogTypes))
	counting := system.NewProjection("CountProjection", school, func(ctx context.Context, env map[string]string) (projection.Projection, projection.View, error) {
		view, err := dogschool.OpenSQLiteCountView(ctx, config.NewEnvFrom("CountProjection", env, nil))
		if err != nil {
			return nil, nil, err
		}
		return dogCounting{view}, view, nil
	})
	sys, err := system.New(system.Pipe(school))
	if err == nil {
		sys, err = sys.WithProjections(counting)
	}
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	r := grpcapp.NewRunner(sys, map[string]string{
		"PERSISTENCE_MODULE":            "eventstoredb",
		"EVENTSTOREDB_URI":              srv.URI(),
		"COUNTPROJECTION_SQLITE_DBNAME": filepath.Join(dir, "counts.db"),
	}, grpcapp.WithRunnerLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err := r.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer r.Stop()

	app, _ := r.Get("TrainingSchool")
	var last int64
	for _, call := range [][]any{{"Register", "Fido"}, {"AddTrick", "Fido", "roll over"}, {"AddTrick", "Fido", "play dead"}} {
		if last, err = grpcapp.Call[int64](ctx, app, call[0].(string), call[1:]...); err != nil {
			log.Fatal(err)
		}
	}
	counts, _ := r.Client("CountProjection")
	if err := counts.Wait(ctx, "TrainingSchool", last, 10*time.Second); err != nil {
		log.Fatal(err)
	}
	dogs, _ := grpcapp.Call[int](ctx, counts.App(), "DogCounter")
	tricks, _ := grpcapp.Call[int](ctx, counts.App(), "TrickCounter")
	fmt.Println("dogs", dogs, "tricks", tricks)
	// Status: caught up, the projection keeps one subscription open.
	var st grpcapp.RemoteStatus
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if st, err = counts.Status(ctx); err == nil && st.Upstreams[0].State == follow.Live {
			break
		}
	}
	u := st.Upstreams[0]
	fmt.Println(st.Kind, st.Name, "follows", u.Upstream, "state", u.State, "lag", u.Lag, u.LagUnit)
	// Output:
	// dogs 1 tricks 2
	// projection CountProjection follows TrainingSchool state live lag 0 positions
}
