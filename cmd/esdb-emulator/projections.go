package main

import (
	"flag"

	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
)

// projectionFlags adds -run-projections, which EVENTSTORE_RUN_PROJECTIONS
// also sets: none (the default) serves no Projections service, system runs
// the system projections ($streams, $stream_by_category, $by_category,
// $by_event_type, $by_correlation_id), all runs them and user projections
// too.
func (c *config) projectionFlags(fs *flag.FlagSet) {
	fs.Func("run-projections", "projections to run: none, system or all (default "+c.projections.String()+")", func(v string) error {
		mode, err := esdbtest.ParseProjectionsMode(v)
		if err != nil {
			return err
		}
		c.projections = mode
		return nil
	})
}

// projectionOptions are the node's options for its projections setting.
func (c config) projectionOptions() []esdbtest.Option {
	if c.projections == esdbtest.ProjectionsNone {
		return nil
	}
	return []esdbtest.Option{esdbtest.WithProjections(c.projections)}
}
