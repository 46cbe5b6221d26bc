package eventsourcing

import (
	"container/list"
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// aggregateCache keeps loaded aggregates by id (AGGREGATE_CACHE_MAXSIZE), so a
// get replays only the events recorded since (fast-forward) instead of the
// whole history. Gets fill it on a miss; saves do not, except without
// fast-forward, when a save replaces the entry (otherwise nothing would ever
// refresh it). Without fast-forward a cached aggregate can be stale, and saving
// changes made to it then fails with ErrIntegrity, as any stale copy does.
type aggregateCache struct {
	maxSize     int // ≤ 0: unbounded
	fastForward bool
	skipping    bool // fast-forward only when the entry's lock is free
	deepCopy    bool

	mu      sync.Mutex
	entries map[uuid.UUID]*list.Element // of *cacheEntry
	lru     *list.List                  // front = most recently used
}

type cacheEntry struct {
	id uuid.UUID
	mu sync.Mutex // serialises fast-forwards of root
	// root is read and written under mu once the entry is published.
	root Root
}

func newCacheFromEnv(env recorder.Env) (*aggregateCache, error) {
	if _, ok := env.Lookup(EnvAggregateCacheMaxSize); !ok {
		return nil, nil
	}
	size, err := env.Int(EnvAggregateCacheMaxSize, 0)
	if err != nil {
		return nil, err
	}
	c := &aggregateCache{maxSize: size, entries: map[uuid.UUID]*list.Element{}, lru: list.New()}
	if c.fastForward, err = env.Bool(EnvAggregateCacheFastFwd, true); err != nil {
		return nil, err
	}
	if c.skipping, err = env.Bool(EnvAggregateCacheSkipping, false); err != nil {
		return nil, err
	}
	if c.deepCopy, err = env.Bool(EnvDeepcopyFromCache, true); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *aggregateCache) entry(id uuid.UUID) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[id]; ok {
		c.lru.MoveToFront(el)
		return el.Value.(*cacheEntry)
	}
	return nil
}

// put stores root unless a newer version of it is cached already.
func (c *aggregateCache) put(root Root) {
	id := root.aggregate().id
	c.mu.Lock()
	el, ok := c.entries[id]
	if !ok {
		c.entries[id] = c.lru.PushFront(&cacheEntry{id: id, root: root})
		if c.maxSize > 0 && c.lru.Len() > c.maxSize {
			oldest := c.lru.Back()
			c.lru.Remove(oldest)
			delete(c.entries, oldest.Value.(*cacheEntry).id)
		}
		c.mu.Unlock()
		return
	}
	c.lru.MoveToFront(el)
	c.mu.Unlock()
	e := el.Value.(*cacheEntry)
	e.mu.Lock()
	defer e.mu.Unlock()
	if !c.fastForward || e.root.aggregate().version <= root.aggregate().version {
		e.root = root
	}
}

// get returns the aggregate with the given id, from the cache when it holds it.
// fresh is used on a miss. The result is fresh, a copy of the cached aggregate,
// or (without deep copy) the cached aggregate itself.
func (c *aggregateCache) get(ctx context.Context, r *Repository, fresh Root, id uuid.UUID, o getOptions) (Root, error) {
	deep := c.deepCopy
	if o.deepCopy != nil {
		deep = *o.deepCopy
	}
	e := c.entry(id)
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
		e.mu.Lock()
		defer e.mu.Unlock()
		if err := sameType(e.root, fresh, id); err != nil {
			return nil, err
		}
		return c.out(e.root, deep), nil
	}
	if c.skipping {
		if !e.mu.TryLock() {
			// Someone is fast-forwarding this aggregate: read it from storage
			// rather than wait.
			if err := r.load(ctx, fresh, id, nil); err != nil {
				return nil, err
			}
			return fresh, nil
		}
	} else {
		e.mu.Lock()
	}
	defer e.mu.Unlock()
	if err := sameType(e.root, fresh, id); err != nil {
		return nil, err
	}
	if err := r.fastForward(ctx, e.root); err != nil {
		return nil, err
	}
	return c.out(e.root, deep), nil
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

// copyRoot returns a deep copy of an aggregate: its exported fields are copied
// through slices, maps, pointers and interfaces, so that changing the copy
// never changes the original. Unexported fields of the user's type are copied
// shallowly; aggregates with reference cycles are not supported.
func copyRoot(src Root) Root {
	sv := reflect.ValueOf(src).Elem()
	dst := reflect.New(sv.Type())
	dst.Elem().Set(sv)
	deepen(dst.Elem())
	root := dst.Interface().(Root)
	a := root.aggregate()
	a.pending = slices.Clone(a.pending)
	return root
}

func deepen(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() {
				deepen(f)
			}
		}
	case reflect.Array:
		for i := range v.Len() {
			deepen(v.Index(i))
		}
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		n := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(n, v)
		for i := range n.Len() {
			deepen(n.Index(i))
		}
		v.Set(n)
	case reflect.Map:
		if v.IsNil() {
			return
		}
		n := reflect.MakeMapWithSize(v.Type(), v.Len())
		it := v.MapRange()
		for it.Next() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(it.Value())
			deepen(e)
			n.SetMapIndex(it.Key(), e)
		}
		v.Set(n)
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		n := reflect.New(v.Type().Elem())
		n.Elem().Set(v.Elem())
		deepen(n.Elem())
		v.Set(n)
	case reflect.Interface:
		if v.IsNil() {
			return
		}
		e := v.Elem()
		n := reflect.New(e.Type()).Elem()
		n.Set(e)
		deepen(n)
		v.Set(n)
	}
}
