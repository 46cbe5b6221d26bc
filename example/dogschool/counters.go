package dogschool

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/system"
)

// Counter counts one trick.
type Counter struct {
	eventsourcing.Aggregate
	Name  string
	Count int
}

// Counter's events.
type (
	// CounterCreated creates a Counter.
	CounterCreated struct{ Name string }
	// Incremented adds one to the count.
	Incremented struct{}
)

// CounterID is the deterministic id of a trick's counter, so that every
// process finds the same counter for a trick without an index.
func CounterID(trick string) uuid.UUID { return eventsourcing.NameID("/counters/" + trick) }

// NewCounter creates the counter of a trick at zero.
func NewCounter(trick string) *Counter {
	c := new(Counter)
	eventsourcing.Create(c, CounterID(trick), CounterCreated{Name: trick})
	return c
}

// Increment triggers Incremented.
func (c *Counter) Increment() { eventsourcing.Trigger(c, Incremented{}) }

// Apply applies the Counter's events.
func (c *Counter) Apply(data any) {
	switch e := data.(type) {
	case CounterCreated:
		c.Name = e.Name
	case Incremented:
		c.Count++
	}
}

// CounterTypes returns the registry of the Counter aggregate and its events.
func CounterTypes() *eventsourcing.Types {
	types := eventsourcing.NewTypes()
	eventsourcing.MustRegister[Counter](types, "counters:Counter")
	eventsourcing.MustRegister[CounterCreated](types, "counters:Counter.Created")
	eventsourcing.MustRegister[Incremented](types, "counters:Counter.Incremented")
	return types
}

// Counters is a process application: its policy counts the tricks added in
// the DogSchool.
type Counters struct{ *eventsourcing.Application }

// NewCounters builds Counters with settings env (COUNTERS_KEY before KEY).
func NewCounters(ctx context.Context, env map[string]string) (*Counters, error) {
	app, err := eventsourcing.NewApplication(ctx, eventsourcing.Options{
		Name: "Counters", Types: CounterTypes(), Env: env, Process: true,
	})
	if err != nil {
		return nil, err
	}
	return &Counters{app}, nil
}

// Policy increments the counter of each trick added; it ignores other events.
func (c *Counters) Policy(ctx context.Context, e eventsourcing.Event, p *system.ProcessingEvent) error {
	switch d := e.Data.(type) {
	case TrickAdded:
		counter, err := eventsourcing.Get[Counter](ctx, c, CounterID(d.Trick))
		if errors.Is(err, eventsourcing.ErrAggregateNotFound) {
			counter = NewCounter(d.Trick)
		} else if err != nil {
			return err
		}
		counter.Increment()
		p.Collect(counter)
	}
	return nil
}

// QueryMethods implements grpcapp.QueryDeclarer: served over gRPC, GetCount
// may be retried.
func (*Counters) QueryMethods() []string { return []string{"GetCount"} }

// GetCount returns how often the trick was added (0 for an unknown trick).
func (c *Counters) GetCount(ctx context.Context, trick string) (int, error) {
	counter, err := eventsourcing.Get[Counter](ctx, c, CounterID(trick))
	if errors.Is(err, eventsourcing.ErrAggregateNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return counter.Count, nil
}

// The definitions of the system's applications, unexported so that no
// caller can swap one for another: SchoolApp and CountersApp return them.
var (
	schoolApp   = system.NewApp("DogSchool", NewDogSchool)
	countersApp = system.NewApp("Counters", NewCounters)
)

// SchoolApp is the definition of the DogSchool application.
func SchoolApp() *system.App { return schoolApp }

// CountersApp is the definition of the Counters application.
func CountersApp() *system.App { return countersApp }

// System returns the DogSchool → Counters system.
func System() *system.System {
	sys, err := system.New(system.Pipe(schoolApp, countersApp))
	if err != nil {
		panic(err) // the definition is static: a failure is a bug in this file
	}
	return sys
}
