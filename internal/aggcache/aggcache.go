// Package aggcache holds the parts of the repository's aggregate cache
// (AGGREGATE_CACHE_MAXSIZE) that know nothing of aggregates: a map of
// entries in least-recently-used order, each with a lock of its own, and the
// deep copy that hands out cached aggregates.
package aggcache

import (
	"container/list"
	"reflect"
	"sync"

	"github.com/google/uuid"
)

// Cache keeps values by id, at most MaxSize of them (≤ 0: unbounded),
// dropping the least recently used. It is safe for concurrent use.
type Cache[V any] struct {
	maxSize int
	keep    func(cached, v V) bool

	mu      sync.Mutex
	entries map[uuid.UUID]*list.Element // of *Entry[V]
	lru     *list.List                  // front = most recently used
}

// Entry is a cached value. Value is read and written under the entry's
// lock once the entry is published.
type Entry[V any] struct {
	sync.Mutex
	id    uuid.UUID
	Value V
}

// New returns a cache of at most maxSize values; keep reports whether a
// cached value stays when Put brings v for its id.
func New[V any](maxSize int, keep func(cached, v V) bool) *Cache[V] {
	return &Cache[V]{maxSize: maxSize, keep: keep, entries: map[uuid.UUID]*list.Element{}, lru: list.New()}
}

// Entry returns the entry of id, or nil, and marks it used.
func (c *Cache[V]) Entry(id uuid.UUID) *Entry[V] {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[id]; ok {
		c.lru.MoveToFront(el)
		return el.Value.(*Entry[V])
	}
	return nil
}

// Put stores v under id, unless keep says the value cached already stays.
func (c *Cache[V]) Put(id uuid.UUID, v V) {
	c.mu.Lock()
	el, ok := c.entries[id]
	if !ok {
		c.entries[id] = c.lru.PushFront(&Entry[V]{id: id, Value: v})
		if c.maxSize > 0 && c.lru.Len() > c.maxSize {
			oldest := c.lru.Back()
			c.lru.Remove(oldest)
			delete(c.entries, oldest.Value.(*Entry[V]).id)
		}
		c.mu.Unlock()
		return
	}
	c.lru.MoveToFront(el)
	c.mu.Unlock()
	e := el.Value.(*Entry[V])
	e.Lock()
	defer e.Unlock()
	if !c.keep(e.Value, v) {
		e.Value = v
	}
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
