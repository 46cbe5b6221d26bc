package dogschool

import (
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing"
)

// TrainingSchool is the application of the materialised-view example: dogs are
// known by name (their ids derive from it), and commands return the
// notification id of the event they recorded, to wait for it downstream.
type TrainingSchool struct{ *eventsourcing.Application }

// NewTrainingSchool builds the TrainingSchool with settings env
// (TRAININGSCHOOL_KEY before KEY).
func NewTrainingSchool(ctx context.Context, env map[string]string) (*TrainingSchool, error) {
	app, err := eventsourcing.NewApplication(ctx, eventsourcing.Options{Name: "TrainingSchool", Types: DogTypes(), Env: env})
	if err != nil {
		return nil, err
	}
	return &TrainingSchool{app}, nil
}

// DogID is the id of the dog with the given name.
func DogID(name string) uuid.UUID { return eventsourcing.NameID("/dogs/" + name) }

// Register registers a dog and returns the notification id of the event.
func (s *TrainingSchool) Register(ctx context.Context, name string) (int64, error) {
	recs, err := s.Save(ctx, NewDogWithID(DogID(name), name))
	if err != nil {
		return 0, err
	}
	return recs[len(recs)-1].NotificationID, nil
}

// AddTrick teaches the named dog a trick and returns the notification id.
func (s *TrainingSchool) AddTrick(ctx context.Context, name, trick string) (int64, error) {
	dog, err := eventsourcing.Get[Dog](ctx, s, DogID(name))
	if err != nil {
		return 0, err
	}
	dog.AddTrick(trick)
	recs, err := s.Save(ctx, dog)
	if err != nil {
		return 0, err
	}
	return recs[len(recs)-1].NotificationID, nil
}

// QueryMethods implements grpcapp.QueryDeclarer: served over gRPC,
// GetDogDetails may be retried.
func (*TrainingSchool) QueryMethods() []string { return []string{"GetDogDetails"} }

// GetDogDetails returns the named dog's details.
func (s *TrainingSchool) GetDogDetails(ctx context.Context, name string) (DogDetails, error) {
	dog, err := eventsourcing.Get[Dog](ctx, s, DogID(name))
	if err != nil {
		return DogDetails{}, err
	}
	return DogDetails{Name: dog.Name, Tricks: slices.Clone(dog.Tricks)}, nil
}
