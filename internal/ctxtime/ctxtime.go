// Package ctxtime holds the one context-aware sleep of the project's retry
// and backoff loops (esdb, follow, grpcapp, recorder/postgres), so that each
// stops waiting as soon as its context ends.
package ctxtime

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx ends: it reports whether the full d
// passed (false: ctx ended first). The timer is released either way.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
