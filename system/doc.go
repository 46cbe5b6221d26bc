// Package system runs event-driven systems: applications connected by pipes,
// where each downstream application (a follower) pulls the notifications of
// its upstream applications (its leaders), passes each event to a policy, and
// records the policy's new events together with a tracking record of the
// upstream position in one atomic write. Because the tracking record only ever
// moves forward and is written in the same transaction as the results, each
// upstream event is processed exactly once, even across crashes: a restarted
// follower resumes after its last tracked position.
//
// Define applications with NewApp, connect them with New and Pipe, and run the
// system with a Runner:
//
//	sys, err := system.New(system.Pipe(dogschool.SchoolApp(), dogschool.CountersApp()))
//	runner := system.NewSingleThreadedRunner(sys, env)
//	if err := runner.Start(ctx); err != nil { ... }
//	defer runner.Stop()
//	school, err := system.Get[*dogschool.DogSchool](runner)
//
// Two runners share the Runner interface: SingleThreadedRunner processes
// followers synchronously inside the leader's Save (on one processing
// goroutine of its own, while the caller waits); MultiThreadedRunner runs a
// goroutine per follower, woken after each save.
// Transports (package grpcapp) build on Follower, whose leaders are any
// NotificationSource.
package system
