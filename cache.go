package eventsourcing

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/internal/aggcache"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// aggregateCache keeps loaded aggregates by id (AGGREGATE_CACHE_MAXSIZE), so a
// get replays only the events recorded since (fast-forward) instead of the
// whole history. Gets fill it on a miss; saves do not, except without
// fast-forward, when a save replaces the entry (otherwise nothing would ever
// refresh it). Without fast-forward a cached aggregate can be stale, and saving
// changes made to it then fails with ErrIntegrity, as any stale copy does.
type aggregateCache struct {
	*aggcache.Cache[Root]
	fastForward bool
	skipping    bool // fast-forward only when the entry's lock is free
	deepCopy    bool
}

func newCacheFromEnv(env recorder.Env) (*aggregateCache, error) {
	if _, ok := env.Lookup(EnvAggregateCacheMaxSize); !ok {
		return nil, nil
	}
	size, err := env.Int(EnvAggregateCacheMaxSize, 0)
	if err != nil {
		return nil, err
	}
	c := &aggregateCache{}
	if c.fastForward, err = env.Bool(EnvAggregateCacheFastFwd, true); err != nil {
		return nil, err
	}
	if c.skipping, err = env.Bool(EnvAggregateCacheSkipping, false); err != nil {
		return nil, err
	}
	if c.deepCopy, err = env.Bool(EnvDeepcopyFromCache, true); err != nil {
		return nil, err
	}
	// With fast-forward, a put never replaces a newer version.
	c.Cache = aggcache.New(size, func(cached, root Root) bool {
		return c.fastForward && cached.aggregate().version > root.aggregate().version
	})
	return c, nil
}

func (c *aggregateCache) put(root Root) { c.Put(root.aggregate().id, root) }

// get returns the aggregate with the given id, from the cache when it holds it.
// fresh is used on a miss. The result is fresh, a copy of the cached aggregate,
// or (without deep copy) the cached aggregate itself.
func (c *aggregateCache) get(ctx context.Context, r *Repository, fresh Root, id uuid.UUID, o getOptions) (Root, error) {
	deep := c.deepCopy
	if o.deepCopy != nil {
		deep = *o.deepCopy
	}
	e := c.Entry(id)
	if e == nil {
		if err := r.load(ctx, fresh, id, nil); err != nil {
			return nil, err
		}
		if deep {
			c.put(copyRoot(fresh))
		} else {
			c.put(fresh)
		}
		return fresh, nil
	}
	if !c.fastForward {
		e.Lock()
		defer e.Unlock()
		if err := sameType(e.Value, fresh, id); err != nil {
			return nil, err
		}
		return c.out(e.Value, deep), nil
	}
	if c.skipping {
		if !e.TryLock() {
			// Someone is fast-forwarding this aggregate: read it from storage
			// rather than wait.
			if err := r.load(ctx, fresh, id, nil); err != nil {
				return nil, err
			}
			return fresh, nil
		}
	} else {
		e.Lock()
	}
	defer e.Unlock()
	if err := sameType(e.Value, fresh, id); err != nil {
		return nil, err
	}
	if err := r.fastForward(ctx, e.Value); err != nil {
		return nil, err
	}
	return c.out(e.Value, deep), nil
}

func sameType(cached, fresh Root, id uuid.UUID) error {
	if reflect.TypeOf(cached) != reflect.TypeOf(fresh) {
		return fmt.Errorf("get %s: %w: cached as %T, asked for %T", id, ErrAggregateType, cached, fresh)
	}
	return nil
}

func (c *aggregateCache) out(root Root, deep bool) Root {
	if deep {
		return copyRoot(root)
	}
	return root
}

// saved updates the cache after a save, when fast-forward is off.
func (c *aggregateCache) saved(roots []Root) {
	if c == nil || c.fastForward {
		return
	}
	for _, r := range roots {
		if isNilRoot(r) {
			continue
		}
		if c.deepCopy {
			r = copyRoot(r)
		}
		c.put(r)
	}
}

// fastForward applies the events recorded after root's version.
func (r *Repository) fastForward(ctx context.Context, root Root) error {
	a := root.aggregate()
	after := a.version
	stored, err := r.events.SelectEvents(ctx, a.id.String(), recorder.EventQuery{After: &after})
	if err != nil {
		return fmt.Errorf("get %s: %w", a.id, err)
	}
	// No type check (nil): the events follow one already applied.
	if err := r.mapper.replay(root, stored, "", uuid.Nil, nil); err != nil {
		return fmt.Errorf("get %s: %w", a.id, err)
	}
	return nil
}

// copyRoot returns a deep copy of an aggregate (see aggcache.Deepen), so
// that changing the copy never changes the original.
func copyRoot(src Root) Root {
	sv := reflect.ValueOf(src).Elem()
	dst := reflect.New(sv.Type())
	dst.Elem().Set(sv)
	aggcache.Deepen(dst.Elem())
	root := dst.Interface().(Root)
	a := root.aggregate()
	a.pending = slices.Clone(a.pending)
	return root
}
