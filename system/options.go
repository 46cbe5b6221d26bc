package system

import (
	"time"

	"github.com/eventsourcing-go/eventsourcing"
)

// eventsourcingRecording shortens the hook signature.
type eventsourcingRecording = eventsourcing.Recording

// RunnerOption configures a runner.
type RunnerOption func(*runnerOptions)

type runnerOptions struct {
	pageSize     int
	pollInterval time.Duration
}

func applyRunnerOptions(opts []RunnerOption) runnerOptions {
	o := runnerOptions{pageSize: DefaultPageSize}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithPageSize sets how many notifications a follower pulls at once.
func WithPageSize(n int) RunnerOption { return func(o *runnerOptions) { o.pageSize = max(n, 1) } }

// WithPollInterval makes the multi-threaded runner's followers also pull every
// interval, to see events that leaders in other processes recorded (prompts
// only reach followers in the same process). Zero (the default) disables it.
func WithPollInterval(d time.Duration) RunnerOption {
	return func(o *runnerOptions) { o.pollInterval = max(d, 0) }
}
