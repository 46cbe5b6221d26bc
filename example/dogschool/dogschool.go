package dogschool

import (
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing"
)

// Dog is the DogSchool's aggregate.
type Dog struct {
	eventsourcing.Aggregate
	Name   string
	Tricks []string
}

// Dog's events.
type (
	// Registered is the event that creates a Dog.
	Registered struct{ Name string }
	// TrickAdded records a trick a dog learnt.
	TrickAdded struct{ Trick string }
)

// Topics of the DogSchool's types.
const (
	TopicDog        = "dogschool:Dog"
	TopicRegistered = "dogschool:Dog.Registered"
	TopicTrickAdded = "dogschool:Dog.TrickAdded"
)

// NewDog registers a dog with a random id.
func NewDog(name string) *Dog { return NewDogWithID(eventsourcing.NewID(), name) }

// NewDogWithID registers a dog with the given id.
func NewDogWithID(id uuid.UUID, name string) *Dog {
	d := new(Dog)
	eventsourcing.Create(d, id, Registered{Name: name})
	return d
}

// AddTrick triggers TrickAdded.
func (d *Dog) AddTrick(trick string) { eventsourcing.Trigger(d, TrickAdded{Trick: trick}) }

// Apply applies the Dog's events, on trigger and on replay.
func (d *Dog) Apply(data any) {
	switch e := data.(type) {
	case Registered:
		d.Name = e.Name
	case TrickAdded:
		d.Tricks = append(d.Tricks, e.Trick)
	}
}

// DogTypes returns the registry of the Dog aggregate and its events.
func DogTypes() *eventsourcing.Types {
	types := eventsourcing.NewTypes()
	eventsourcing.MustRegister[Dog](types, TopicDog)
	eventsourcing.MustRegister[Registered](types, TopicRegistered)
	eventsourcing.MustRegister[TrickAdded](types, TopicTrickAdded)
	return types
}

// DogSchool is the tutorial's application: commands register dogs and add
// tricks, a query returns a dog's details.
type DogSchool struct{ *eventsourcing.Application }

// NewDogSchool builds the DogSchool with settings env (overrides of the
// process environment, read as DOGSCHOOL_KEY before KEY).
func NewDogSchool(ctx context.Context, env map[string]string) (*DogSchool, error) {
	app, err := eventsourcing.NewApplication(ctx, eventsourcing.Options{Name: "DogSchool", Types: DogTypes(), Env: env})
	if err != nil {
		return nil, err
	}
	return &DogSchool{app}, nil
}

// RegisterDog registers a dog and returns its id.
func (s *DogSchool) RegisterDog(ctx context.Context, name string) (uuid.UUID, error) {
	dog := NewDog(name)
	if _, err := s.Save(ctx, dog); err != nil {
		return uuid.Nil, err
	}
	return dog.ID(), nil
}

// AddTrick teaches a dog a trick.
func (s *DogSchool) AddTrick(ctx context.Context, dogID uuid.UUID, trick string) error {
	dog, err := eventsourcing.Get[Dog](ctx, s, dogID)
	if err != nil {
		return err
	}
	dog.AddTrick(trick)
	_, err = s.Save(ctx, dog)
	return err
}

// DogDetails is what GetDog returns.
type DogDetails struct {
	Name   string
	Tricks []string
}

// QueryMethods implements grpcapp.QueryDeclarer: served over gRPC, GetDog
// may be retried; RegisterDog and AddTrick are never re-sent.
func (*DogSchool) QueryMethods() []string { return []string{"GetDog"} }

// GetDog returns a dog's name and tricks.
func (s *DogSchool) GetDog(ctx context.Context, dogID uuid.UUID) (DogDetails, error) {
	dog, err := eventsourcing.Get[Dog](ctx, s, dogID)
	if err != nil {
		return DogDetails{}, err
	}
	return DogDetails{Name: dog.Name, Tricks: slices.Clone(dog.Tricks)}, nil
}
