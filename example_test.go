package eventsourcing_test

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing"
)

// Dog is an aggregate: it embeds eventsourcing.Aggregate and applies its events.
type Dog struct {
	eventsourcing.Aggregate
	Name   string
	Tricks []string
}

// Dog's events: plain structs, registered under stable topics.
type (
	Registered struct{ Name string }
	TrickAdded struct{ Trick string }
)

// NewDog registers a new dog.
func NewDog(name string) *Dog {
	d := new(Dog)
	eventsourcing.Create(d, eventsourcing.NewID(), Registered{Name: name})
	return d
}

// AddTrick is a command: it triggers an event, which Apply applies at once.
func (d *Dog) AddTrick(trick string) { eventsourcing.Trigger(d, TrickAdded{Trick: trick}) }

// Apply runs on trigger and on replay.
func (d *Dog) Apply(data any) {
	switch e := data.(type) {
	case Registered:
		d.Name = e.Name
	case TrickAdded:
		d.Tricks = append(d.Tricks, e.Trick)
	}
}

// dogTypes is the DogSchool's type registry.
func dogTypes() *eventsourcing.Types {
	types := eventsourcing.NewTypes()
	eventsourcing.MustRegister[Dog](types, "dogschool:Dog")
	eventsourcing.MustRegister[Registered](types, "dogschool:Dog.Registered")
	eventsourcing.MustRegister[TrickAdded](types, "dogschool:Dog.TrickAdded")
	return types
}

// DogSchool is an application: it embeds *eventsourcing.Application, and its
// exported methods are its commands and queries.
type DogSchool struct{ *eventsourcing.Application }

func NewDogSchool(ctx context.Context, env map[string]string) (DogSchool, error) {
	app, err := eventsourcing.NewApplication(ctx, eventsourcing.Options{
		Name:  "DogSchool",
		Types: dogTypes(),
		Env:   env,
	})
	return DogSchool{app}, err
}

func (s DogSchool) RegisterDog(ctx context.Context, name string) (uuid.UUID, error) {
	dog := NewDog(name)
	_, err := s.Save(ctx, dog)
	return dog.ID(), err
}

func (s DogSchool) AddTrick(ctx context.Context, id uuid.UUID, trick string) error {
	dog, err := eventsourcing.Get[Dog](ctx, s, id)
	if err != nil {
		return err
	}
	dog.AddTrick(trick)
	_, err = s.Save(ctx, dog)
	return err
}

func (s DogSchool) GetDog(ctx context.Context, id uuid.UUID) (name string, tricks []string, err error) {
	dog, err := eventsourcing.Get[Dog](ctx, s, id)
	if err != nil {
		return "", nil, err
	}
	return dog.Name, dog.Tricks, nil
}

// The DogSchool flow of the tutorial: register a dog, add tricks, read it back.
func Example() {
	ctx := context.Background()
	school, err := NewDogSchool(ctx, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer school.Close()

	id, _ := school.RegisterDog(ctx, "Fido")
	_ = school.AddTrick(ctx, id, "roll over")
	_ = school.AddTrick(ctx, id, "play dead")

	name, tricks, _ := school.GetDog(ctx, id)
	fmt.Println(name, tricks)
	fmt.Println(slices.Equal(tricks, []string{"roll over", "play dead"}))

	// Every event is in the notification log, in order.
	section, _ := school.Log().Section(ctx, "1,10")
	for _, n := range section.Items {
		fmt.Println(n.ID, n.Topic)
	}
	// Output:
	// Fido [roll over play dead]
	// true
	// 1 dogschool:Dog.Registered
	// 2 dogschool:Dog.TrickAdded
	// 3 dogschool:Dog.TrickAdded
}
