package operate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/follow"
)

// Progress is what readiness is judged from: the status of every follower
// and projection of the process (one follow.Status per upstream followed).
// An error says that some could not be read (a member that does not
// answer); the statuses returned with it are still judged.
//
// grpcapp.Server and grpcapp.Runner implement it.
type Progress interface {
	Upstreams(ctx context.Context) ([]follow.Status, error)
}

// Settings of readiness.
const (
	EnvReadyMaxDeadLetters = "READY_MAX_DEAD_LETTERS"
	EnvReadyStalledAfter   = "READY_STALLED_AFTER"
	// DefaultStalledAfter is how long a follower's position may stand
	// still while its upstream's head grows before it is not ready.
	DefaultStalledAfter = time.Minute
)

// Readiness says when a process is not ready.
type Readiness struct {
	// MaxDeadLetters is the most dead letters (events skipped by a
	// follower that skips failures, of the last 100 kept) a follower may
	// have; negative for no limit.
	MaxDeadLetters int
	// StalledAfter is how long a follower's position may stand still
	// while its upstream's head grows; 0 for no limit.
	StalledAfter time.Duration
}

// ReadinessFromEnv reads READY_MAX_DEAD_LETTERS (default: no limit) and
// READY_STALLED_AFTER (seconds or a Go duration; default 60 s, 0 turns
// the check off).
func ReadinessFromEnv(env config.Env) (Readiness, error) {
	r := Readiness{MaxDeadLetters: -1}
	var err error
	if _, ok := env.Lookup(EnvReadyMaxDeadLetters); ok {
		if r.MaxDeadLetters, err = env.Int(EnvReadyMaxDeadLetters, -1); err != nil {
			return Readiness{}, fmt.Errorf("operate: %w", err)
		}
		if r.MaxDeadLetters < 0 {
			return Readiness{}, fmt.Errorf("operate: %w: %s=%d is negative (leave it unset for no limit)", config.ErrConfiguration, EnvReadyMaxDeadLetters, r.MaxDeadLetters)
		}
	}
	if r.StalledAfter, err = env.Seconds(EnvReadyStalledAfter, DefaultStalledAfter); err != nil {
		return Readiness{}, fmt.Errorf("operate: %w", err)
	}
	if r.StalledAfter < 0 {
		return Readiness{}, fmt.Errorf("operate: %w: %s=%v is negative (0 turns the check off)", config.ErrConfiguration, EnvReadyStalledAfter, r.StalledAfter)
	}
	return r, nil
}

// readiness judges successive observations of the same followers: a
// stall shows only over time.
type readiness struct {
	rules Readiness
	now   func() time.Time

	mu   sync.Mutex
	seen map[upstreamKey]*mark
}

type upstreamKey struct{ follower, upstream string }

// mark is when a follower's position was last seen to change, and its
// upstream's head then.
type mark struct {
	position    int64
	hasPosition bool
	since       time.Time
	headSince   int64
}

func newReadiness(r Readiness, now func() time.Time) *readiness {
	return &readiness{rules: r, now: now, seen: map[upstreamKey]*mark{}}
}

// observe records one observation and returns why the process is not
// ready, nothing when it is.
func (r *readiness) observe(sts []follow.Status, err error) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	var reasons []string
	if err != nil {
		reasons = append(reasons, err.Error())
	}
	for _, s := range sts {
		name := s.Follower + " (upstream " + s.Upstream + ")"
		if s.State == follow.Failed {
			msg := name + " failed"
			if s.Err != nil {
				msg += ": " + s.Err.Error()
			}
			reasons = append(reasons, msg)
		}
		if n := len(s.DeadLetters); r.rules.MaxDeadLetters >= 0 && n > r.rules.MaxDeadLetters {
			reasons = append(reasons, fmt.Sprintf("%s has %d dead letters, more than %s=%d", name, n, EnvReadyMaxDeadLetters, r.rules.MaxDeadLetters))
		}
		k := upstreamKey{s.Follower, s.Upstream}
		m := r.seen[k]
		if m == nil || m.position != s.Position || m.hasPosition != s.HasPosition || s.Head < m.headSince {
			// Moved (or first seen, or the upstream was rebuilt).
			r.seen[k] = &mark{position: s.Position, hasPosition: s.HasPosition, since: now, headSince: s.Head}
			continue
		}
		if d := now.Sub(m.since); r.rules.StalledAfter > 0 && d >= r.rules.StalledAfter && s.HasHead && s.Head > m.headSince && s.Lag > 0 {
			reasons = append(reasons, fmt.Sprintf("%s is stalled: position %s has not moved for %v while the upstream's head grew from %d to %d (lag %d %s; %s=%v)",
				name, positionString(s), d.Round(time.Second), m.headSince, s.Head, s.Lag, s.LagUnit, EnvReadyStalledAfter, r.rules.StalledAfter))
		}
	}
	return reasons
}

func positionString(s follow.Status) string {
	if !s.HasPosition {
		return "none"
	}
	return fmt.Sprint(s.Position)
}
