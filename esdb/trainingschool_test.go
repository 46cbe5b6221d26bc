package esdb_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/esdb"
	"github.com/eventsourcing-go/eventsourcing/example/dogschool"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// Dog is the seed's Dog, with INITIAL_VERSION = 0: EventStoreDB streams
// start at revision 0, and the module stores version = revision.
type Dog struct {
	eventsourcing.Aggregate
	Name   string
	Tricks []string
}

func (*Dog) InitialVersion() int64 { return 0 }

type (
	Registered struct{ Name string }
	TrickAdded struct{ Trick string }
)

const (
	topicRegistered = "trainingschool:Dog.Registered"
	topicTrickAdded = "trainingschool:Dog.TrickAdded"
)

func (d *Dog) Apply(data any) {
	switch e := data.(type) {
	case Registered:
		d.Name = e.Name
	case TrickAdded:
		d.Tricks = append(d.Tricks, e.Trick)
	}
}

func dogTypes() *eventsourcing.Types {
	types := eventsourcing.NewTypes()
	eventsourcing.MustRegister[Dog](types, "trainingschool:Dog")
	eventsourcing.MustRegister[Registered](types, topicRegistered)
	eventsourcing.MustRegister[TrickAdded](types, topicTrickAdded)
	return types
}

// TrainingSchool is the seed's application.
type TrainingSchool struct{ *eventsourcing.Application }

// newTrainingSchool configures the application as the seed does, with
// TRAININGSCHOOL_PERSISTENCE_MODULE and EVENTSTOREDB_URI.
func newTrainingSchool(ctx context.Context, uri string) (*TrainingSchool, error) {
	app, err := eventsourcing.NewApplication(ctx, eventsourcing.Options{
		Name:  "TrainingSchool",
		Types: dogTypes(),
		Env: map[string]string{
			"TRAININGSCHOOL_PERSISTENCE_MODULE": "eventsourcing_eventstoredb",
			"EVENTSTOREDB_URI":                  uri,
		},
		Lookup: eventsourcing.NoEnvironment,
	})
	if err != nil {
		return nil, err
	}
	return &TrainingSchool{app}, nil
}

func dogID(name string) uuid.UUID { return eventsourcing.NameID("/dogs/" + name) }

func (s *TrainingSchool) Register(ctx context.Context, name string) (int64, error) {
	d := new(Dog)
	eventsourcing.Create(d, dogID(name), Registered{Name: name})
	recs, err := s.Save(ctx, d)
	if err != nil {
		return 0, err
	}
	return recs[len(recs)-1].NotificationID, nil
}

func (s *TrainingSchool) AddTrick(ctx context.Context, name, trick string) (int64, error) {
	d, err := eventsourcing.Get[Dog](ctx, s, dogID(name))
	if err != nil {
		return 0, err
	}
	eventsourcing.Trigger(d, TrickAdded{Trick: trick})
	recs, err := s.Save(ctx, d)
	if err != nil {
		return 0, err
	}
	return recs[len(recs)-1].NotificationID, nil
}

// QueryMethods declares Details a query: served over gRPC, it may be retried.
func (*TrainingSchool) QueryMethods() []string { return []string{"Details"} }

func (s *TrainingSchool) Details(ctx context.Context, name string) (string, []string, error) {
	d, err := eventsourcing.Get[Dog](ctx, s, dogID(name))
	if err != nil {
		return "", nil, err
	}
	return d.Name, slices.Clone(d.Tricks), nil
}

// countView is the seed's in-memory materialised view.
type countView struct {
	*projection.MemoryView
	dogs, tricks int
}

func (v *countView) counts() (dogs, tricks int) {
	v.Read(func() { dogs, tricks = v.dogs, v.tricks })
	return dogs, tricks
}

// countProjection is the seed's CountProjection.
type countProjection struct{ view *countView }

func (countProjection) Name() string     { return "CountProjection" }
func (countProjection) Topics() []string { return []string{topicRegistered, topicTrickAdded} }
func (p countProjection) Process(ctx context.Context, e eventsourcing.Event, t recorder.Tracking) (bool, error) {
	switch e.Data.(type) {
	case Registered:
		return true, p.view.Update(ctx, t, func() error { p.view.dogs++; return nil })
	case TrickAdded:
		return true, p.view.Update(ctx, t, func() error { p.view.tricks++; return nil })
	}
	return false, nil
}

// The seed's flow: register, add tricks, reconstruct the application and
// read back; then the counting projection, waiting for each new event.
func TestTrainingSchool(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.name, func(t *testing.T) {
			uri := tg.uri(t)
			ctx := t.Context()
			// Names are unique per run: a real server keeps earlier runs.
			name := "Fido-" + eventsourcing.NewID().String()

			school, err := newTrainingSchool(ctx, uri)
			require.NoError(t, err)
			_, err = school.Register(ctx, name)
			require.NoError(t, err)
			_, err = school.AddTrick(ctx, name, "roll over")
			require.NoError(t, err)
			_, err = school.AddTrick(ctx, name, "play dead")
			require.NoError(t, err)
			got, tricks, err := school.Details(ctx, name)
			require.NoError(t, err)
			require.Equal(t, name, got)
			require.Equal(t, []string{"roll over", "play dead"}, tricks)
			require.NoError(t, school.Close())

			// Reconstruct the application: the events were saved.
			school, err = newTrainingSchool(ctx, uri)
			require.NoError(t, err)
			t.Cleanup(func() { _ = school.Close() })
			got, tricks, err = school.Details(ctx, name)
			require.NoError(t, err)
			require.Equal(t, name, got)
			require.Equal(t, []string{"roll over", "play dead"}, tricks)

			view := &countView{MemoryView: projection.NewMemoryView()}
			runner := projection.NewRunnerFor(school, countProjection{view}, view)
			require.NoError(t, runner.Start(ctx))
			t.Cleanup(func() { _ = runner.Stop() })

			last, ok, err := school.Recorder().MaxNotificationID(ctx)
			require.NoError(t, err)
			require.True(t, ok)
			require.NoError(t, runner.Wait(ctx, last, 30*time.Second))
			dogs, trickCount := view.counts()
			require.GreaterOrEqual(t, dogs, 1)
			require.GreaterOrEqual(t, trickCount, 2)

			id, err := school.AddTrick(ctx, name, "sit and stay")
			require.NoError(t, err)
			require.NoError(t, view.Wait(ctx, school.Name(), id, 30*time.Second))
			d, tr := view.counts()
			require.Equal(t, dogs, d)
			require.Equal(t, trickCount+1, tr)

			id, err = school.AddTrick(ctx, name, "jump hoop")
			require.NoError(t, err)
			require.NoError(t, view.Wait(ctx, school.Name(), id, 30*time.Second))
			d, tr = view.counts()
			require.Equal(t, dogs, d)
			require.Equal(t, trickCount+2, tr)
		})
	}
}

// An aggregate type that starts at version 1 (the framework's default) is
// refused at its first save with an error that names the fix.
func TestInitialVersionOneIsAClearError(t *testing.T) {
	ctx := t.Context()
	app, err := eventsourcing.NewApplication(ctx, eventsourcing.Options{
		Name: "DogSchool", Types: dogschool.DogTypes(), Lookup: eventsourcing.NoEnvironment,
		Env: map[string]string{"PERSISTENCE_MODULE": "eventstoredb", esdb.KeyURI: esdbtestURI(t)},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = app.Close() })
	_, err = app.Save(ctx, dogschool.NewDog("Fido"))
	require.Error(t, err)
	require.True(t, errors.Is(err, recorder.ErrIntegrity), "%v", err)
	require.ErrorContains(t, err, "InitialVersion() int64 { return 0 }")
}
