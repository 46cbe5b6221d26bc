// Package eventsourcing is an event-sourcing framework: aggregates changed only
// by the events they trigger, an application that records those events
// atomically in a notification log, a repository that rebuilds aggregates from
// their events (and snapshots), and a mapper that stores events as compact JSON,
// optionally compressed and encrypted.
//
// Events are plain structs registered under stable topics in a Types value the
// application owns:
//
//	types := eventsourcing.NewTypes()
//	eventsourcing.MustRegister[Dog](types, "dogschool:Dog")
//	eventsourcing.MustRegister[Registered](types, "dogschool:Dog.Registered")
//
// Applications are Go types that embed *Application; their exported methods
// are the commands and queries:
//
//	type DogSchool struct{ *eventsourcing.Application }
//
//	func (s DogSchool) RegisterDog(ctx context.Context, name string) (uuid.UUID, error) {
//		dog := NewDog(name)
//		_, err := s.Save(ctx, dog)
//		return dog.ID(), err
//	}
//
// Storage is reached only through the interfaces of package recorder; the
// persistence module is chosen by the PERSISTENCE_MODULE setting (memory by
// default). Settings are read by config.Env: APPNAME_KEY, then KEY, with the
// overrides given in code winning over the process environment.
package eventsourcing
