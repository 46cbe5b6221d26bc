package eventsourcing

import (
	"context"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// aggregateCache keeps recently loaded aggregates (AGGREGATE_CACHE_MAXSIZE).
type aggregateCache struct{}

func newCacheFromEnv(env recorder.Env) (*aggregateCache, error) { return nil, nil }

func (c *aggregateCache) load(ctx context.Context, r *Repository, root Root, id uuid.UUID, o getOptions) error {
	return r.load(ctx, root, id, o.version)
}

func (c *aggregateCache) saved(roots []Root) {}
