package eventsourcing

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/internal/aggcache"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// aggregateCache keeps loaded aggregates by id (AGGREGATE_CACHE_MAXSIZE), so a
// get replays only the events recorded since (fast-forward) instead of the
// whole history. Gets fill it on a miss; saves do not, except without
// fast-forward, when a save replaces the entry (otherwise nothing would ever
// refresh it). Without fast-forward a cached aggregate can be stale, and saving
// changes made to it then fails with ErrIntegrity, as any stale copy does.
type aggregateCache = aggcache.Cache[Root]

func newCacheFromEnv(env config.Env) (*aggregateCache, error) {
	if _, ok := env.Lookup(EnvAggregateCacheMaxSize); !ok {
		return nil, nil
	}
	var c aggcache.Config
	var err error
	if c.MaxSize, err = env.Int(EnvAggregateCacheMaxSize, 0); err != nil {
		return nil, err
	}
	if c.FastForward, err = env.Bool(EnvAggregateCacheFastFwd, true); err != nil {
		return nil, err
	}
	if c.Skipping, err = env.Bool(EnvAggregateCacheSkipping, false); err != nil {
		return nil, err
	}
	if c.DeepCopy, err = env.Bool(EnvDeepcopyFromCache, true); err != nil {
		return nil, err
	}
	return aggcache.New[Root](c), nil
}

// cacheSource is what the aggregate cache reads through: the repository.
type cacheSource struct{ r *Repository }

func (s cacheSource) Load(ctx context.Context, fresh Root, id uuid.UUID) error {
	return s.r.load(ctx, fresh, id, recorder.Bound{})
}

// FastForward applies the events recorded after root's version.
func (s cacheSource) FastForward(ctx context.Context, root Root) error {
	a := root.aggregate()
	stored, err := s.r.events.SelectEvents(ctx, a.id.String(), recorder.EventQuery{After: recorder.Bounded(a.version)})
	if err != nil {
		return fmt.Errorf("get %s: %w", a.id, err)
	}
	// No type check (nil): the events follow one already applied.
	if err := s.r.mapper.replay(root, stored, "", uuid.Nil, nil); err != nil {
		return fmt.Errorf("get %s: %w", a.id, err)
	}
	return nil
}

func (cacheSource) Check(cached, fresh Root) error {
	if reflect.TypeOf(cached) != reflect.TypeOf(fresh) {
		return fmt.Errorf("get %s: %w: cached as %T, asked for %T", cached.aggregate().id, ErrAggregateType, cached, fresh)
	}
	return nil
}

func (cacheSource) Copy(root Root) Root     { return copyRoot(root) }
func (cacheSource) ID(root Root) uuid.UUID  { return root.aggregate().id }
func (cacheSource) Version(root Root) int64 { return root.aggregate().version }

// saved updates the cache after a save of roots.
func (r *Repository) saved(roots []Root) {
	if r.cache == nil {
		return
	}
	for _, root := range roots {
		if !isNilRoot(root) {
			r.cache.Saved(cacheSource{r}, root)
		}
	}
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
