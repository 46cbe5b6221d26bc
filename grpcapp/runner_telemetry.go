package grpcapp

import (
	"context"
	"sync"
	"time"

	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/telemetry"
)

// A runner whose members run in subprocesses has no follower of its own:
// their lag, position, resubscribes and state are measured in the
// subprocesses. So that the runner's metrics show every follower and
// projection of the system as an in-process runner's do, it publishes the
// same metrics (telemetry.Follower) from its members' Status, read at most
// once per remoteStatusAge however many are collected.

// remoteStatusAge is how long one reading of the members' statuses serves
// collections.
const remoteStatusAge = time.Second

// remoteProgress is the last reading of the members' statuses.
type remoteProgress struct {
	r *Runner

	mu   sync.Mutex
	at   time.Time
	byID map[[2]string]follow.Status
}

// status returns the follower's status of upstream, reading every member
// again when the last reading is too old.
func (p *remoteProgress) status(ctx context.Context, follower, upstream string) (follow.Status, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.at) > remoteStatusAge {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		sts, _ := p.r.Upstreams(ctx) // a member that does not answer shows nothing
		cancel()
		p.byID = make(map[[2]string]follow.Status, len(sts))
		for _, s := range sts {
			p.byID[[2]string{s.Follower, s.Upstream}] = s
		}
		p.at = time.Now()
	}
	s, ok := p.byID[[2]string{follower, upstream}]
	return s, ok
}

// followStates are the names of follow's states, in their order.
func followStates() []string {
	var names []string
	for s := follow.Idle; s <= follow.Stopped; s++ {
		names = append(names, s.String())
	}
	return names
}

// observeRemote registers the metrics of every follower and projection of
// the system with the meter (nothing when no meter provider is configured)
// and returns the function that unregisters them.
func (r *Runner) observeRemote() func() {
	t := telemetry.New(telemetry.Providers{})
	if t == nil {
		return func() {}
	}
	p := &remoteProgress{r: r}
	var pairs [][2]string
	for _, a := range r.sys.Apps() {
		for _, leader := range r.sys.LeadersOf(a.Name()) {
			pairs = append(pairs, [2]string{a.Name(), leader})
		}
	}
	for _, pr := range r.sys.Projections() {
		pairs = append(pairs, [2]string{pr.Name(), pr.Upstream()})
	}
	states := followStates()
	var stops []func()
	for _, pair := range pairs {
		follower, upstream := pair[0], pair[1]
		stop, err := t.Follower(follower, upstream, states).Observe(func(ctx context.Context) (telemetry.Observation, bool) {
			s, ok := p.status(ctx, follower, upstream)
			if !ok {
				return telemetry.Observation{}, false
			}
			return telemetry.Observation{
				State: int(s.State), Position: s.Position, HasPosition: s.HasPosition,
				Lag: s.Lag, LagInPositions: s.LagUnit == follow.Positions, Subscriptions: s.Subscriptions,
			}, true
		})
		if err != nil {
			r.opts.logger.Warn("runner metrics: observing a member's progress", "follower", follower, "upstream", upstream, "error", err)
			continue
		}
		stops = append(stops, stop)
	}
	return func() {
		for _, stop := range stops {
			stop()
		}
	}
}
