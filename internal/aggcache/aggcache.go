// Package aggcache is the repository's aggregate cache
// (AGGREGATE_CACHE_MAXSIZE) without the aggregates: entries by id in
// least-recently-used order, each with a lock of its own that serialises
// fast-forwards, read through a Source (the repository), and the deep copy
// that hands out cached aggregates.
package aggcache

import (
	"container/list"
	"context"
	"reflect"
	"sync"

	"github.com/google/uuid"
)

// Config is how a cache behaves.
type Config struct {
	MaxSize     int  // ≤ 0: unbounded
	FastForward bool // bring a cached value up to date on each get
	Skipping    bool // fast-forward only when the entry's lock is free
	DeepCopy    bool // hand out and keep copies, not the values themselves
}

// Source is what a cache reads through, and knows its values.
type Source[V any] interface {
	// Load loads the value of id into fresh.
	Load(ctx context.Context, fresh V, id uuid.UUID) error
	// FastForward brings cached up to date.
	FastForward(ctx context.Context, cached V) error
	// Check fails when cached is not of fresh's type.
	Check(cached, fresh V) error
	// Copy returns a copy of v that shares nothing with it.
	Copy(v V) V
	// ID and Version return the id and the version of v.
	ID(v V) uuid.UUID
	Version(v V) int64
}

// Cache keeps values by id, at most Config.MaxSize of them, dropping the
// least recently used. Gets fill it on a miss; puts do not replace a newer
// version when it fast-forwards. It is safe for concurrent use.
type Cache[V any] struct {
	Config

	mu      sync.Mutex
	entries map[uuid.UUID]*list.Element // of *entry[V]
	lru     *list.List                  // front = most recently used
}

type entry[V any] struct {
	mu sync.Mutex // serialises fast-forwards of value
	id uuid.UUID
	// value is read and written under mu once the entry is published.
	value V
}

// New returns an empty cache.
func New[V any](c Config) *Cache[V] {
	return &Cache[V]{Config: c, entries: map[uuid.UUID]*list.Element{}, lru: list.New()}
}

func (c *Cache[V]) entry(id uuid.UUID) *entry[V] {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[id]; ok {
		c.lru.MoveToFront(el)
		return el.Value.(*entry[V])
	}
	return nil
}

// put stores v unless a newer version of it is cached already.
func (c *Cache[V]) put(src Source[V], v V) {
	id := src.ID(v)
	c.mu.Lock()
	el, ok := c.entries[id]
	if !ok {
		c.entries[id] = c.lru.PushFront(&entry[V]{id: id, value: v})
		if c.MaxSize > 0 && c.lru.Len() > c.MaxSize {
			oldest := c.lru.Back()
			c.lru.Remove(oldest)
			delete(c.entries, oldest.Value.(*entry[V]).id)
		}
		c.mu.Unlock()
		return
	}
	c.lru.MoveToFront(el)
	c.mu.Unlock()
	e := el.Value.(*entry[V])
	e.mu.Lock()
	defer e.mu.Unlock()
	if !c.FastForward || src.Version(e.value) <= src.Version(v) {
		e.value = v
	}
}

// Get returns the value of id, from the cache when it holds it, read
// through src. fresh is loaded on a miss. The result is fresh, a copy of the
// cached value, or (without deep) the cached value itself.
func (c *Cache[V]) Get(ctx context.Context, src Source[V], fresh V, id uuid.UUID, deep bool) (V, error) {
	var none V
	e := c.entry(id)
	if e == nil {
		if err := src.Load(ctx, fresh, id); err != nil {
			return none, err
		}
		if deep {
			c.put(src, src.Copy(fresh))
		} else {
			c.put(src, fresh)
		}
		return fresh, nil
	}
	if !c.FastForward {
		e.mu.Lock()
		defer e.mu.Unlock()
		if err := src.Check(e.value, fresh); err != nil {
			return none, err
		}
		return c.out(src, e.value, deep), nil
	}
	if c.Skipping {
		if !e.mu.TryLock() {
			// Someone is fast-forwarding this value: read it from the
			// source rather than wait.
			if err := src.Load(ctx, fresh, id); err != nil {
				return none, err
			}
			return fresh, nil
		}
	} else {
		e.mu.Lock()
	}
	defer e.mu.Unlock()
	if err := src.Check(e.value, fresh); err != nil {
		return none, err
	}
	if err := src.FastForward(ctx, e.value); err != nil {
		return none, err
	}
	return c.out(src, e.value, deep), nil
}

func (c *Cache[V]) out(src Source[V], v V, deep bool) V {
	if deep {
		return src.Copy(v)
	}
	return v
}

// Saved updates the cache after v was saved: without fast-forward, the
// saved value replaces the cached one (otherwise nothing would ever refresh
// it).
func (c *Cache[V]) Saved(src Source[V], v V) {
	if c.FastForward {
		return
	}
	if c.DeepCopy {
		v = src.Copy(v)
	}
	c.put(src, v)
}

// Deepen makes v, a copy of a value, independent of the original: its
// exported fields are copied through slices, maps, pointers and interfaces,
// so that changing the copy never changes the original. Unexported fields
// are left shallow; values with reference cycles are not supported.
func Deepen(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() {
				Deepen(f)
			}
		}
	case reflect.Array:
		for i := range v.Len() {
			Deepen(v.Index(i))
		}
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		n := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(n, v)
		for i := range n.Len() {
			Deepen(n.Index(i))
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
			Deepen(e)
			n.SetMapIndex(it.Key(), e)
		}
		v.Set(n)
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		n := reflect.New(v.Type().Elem())
		n.Elem().Set(v.Elem())
		Deepen(n.Elem())
		v.Set(n)
	case reflect.Interface:
		if v.IsNil() {
			return
		}
		e := v.Elem()
		n := reflect.New(e.Type()).Elem()
		n.Set(e)
		Deepen(n)
		v.Set(n)
	}
}
