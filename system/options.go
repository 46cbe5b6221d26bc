package system

import (
	"time"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/follow"
)

// eventsourcingRecording shortens the hook signature.
type eventsourcingRecording = eventsourcing.Recording

// RunnerOption configures a runner.
type RunnerOption func(*runnerOptions)

type runnerOptions struct {
	pageSize     int
	pollInterval time.Duration
	follow       []func(*follow.Config)
}

// configure returns the change the options make to every follower's and
// projection's follow.Config.
func (o runnerOptions) configure(extra func(*follow.Config)) func(*follow.Config) {
	return func(c *follow.Config) {
		if o.pageSize > 0 {
			c.PageSize = o.pageSize
		}
		for _, fn := range o.follow {
			fn(c)
		}
		if extra != nil {
			extra(c)
		}
	}
}

// WithFollowConfig changes the follow.Config of every follower and
// projection the runner runs (checkpoints, backoff, failure policy).
func WithFollowConfig(fn func(*follow.Config)) RunnerOption {
	return func(o *runnerOptions) { o.follow = append(o.follow, fn) }
}

func applyRunnerOptions(opts []RunnerOption) runnerOptions {
	var o runnerOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithPageSize sets how many notifications a follower pulls at once.
func WithPageSize(n int) RunnerOption { return func(o *runnerOptions) { o.pageSize = max(n, 1) } }

// WithPollInterval is kept for compatibility and changes nothing.
//
// Deprecated: followers subscribe to their leaders, and each backend's
// subscription sees commits of other processes by itself (SQLite and
// PostgreSQL poll as their POLL_INTERVAL setting says).
func WithPollInterval(d time.Duration) RunnerOption {
	return func(o *runnerOptions) { o.pollInterval = max(d, 0) }
}
