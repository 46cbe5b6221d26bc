package eventsourcing

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/internal/codec"
	"github.com/eventsourcing-go/eventsourcing/internal/eventviews"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/telemetry"
)

// SnapshotTopic is the topic of stored snapshots, the reference library's.
const SnapshotTopic = "eventsourcing.domain:Snapshot"

// Repository rebuilds aggregates from their recorded events, starting from the
// latest snapshot when a snapshot store is configured, and keeps an aggregate
// cache when AGGREGATE_CACHE_MAXSIZE is set.
type Repository struct {
	events    recorder.AggregateRecorder
	snapshots recorder.AggregateRecorder // nil when snapshotting is disabled
	mapper    *Mapper
	cache     *aggregateCache // nil when disabled
	tel       *telemetry.App  // nil unless telemetry is configured
}

// Events returns the recorder the repository reads events from.
func (r *Repository) Events() recorder.AggregateRecorder { return r.events }

// Snapshots returns the snapshot recorder, nil when snapshotting is disabled.
func (r *Repository) Snapshots() recorder.AggregateRecorder { return r.snapshots }

// RepositoryProvider is anything with a repository: *Application and every
// application type that embeds it.
type RepositoryProvider interface {
	Repository() *Repository
}

// GetOption modifies a get.
type GetOption func(*getOptions)

type getOptions struct {
	version  recorder.Bound // AtVersion; no bound for the latest
	deepCopy *bool
}

// AtVersion gets the aggregate as it was at version v (the latest state when v
// is beyond the last version). Versioned gets bypass the cache.
func AtVersion(v int64) GetOption { return func(o *getOptions) { o.version = recorder.Bounded(v) } }

// DeepCopy overrides DEEPCOPY_FROM_AGGREGATE_CACHE for one get: with false, a
// cached aggregate is returned itself, which is faster but shared, so the
// caller must not change it.
func DeepCopy(on bool) GetOption { return func(o *getOptions) { o.deepCopy = &on } }

func applyGetOptions(opts []GetOption) getOptions {
	if len(opts) == 0 {
		return getOptions{} // o below escapes to the options: no allocation for a plain get
	}
	var o getOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Get returns the aggregate of type *T with the given id, or an error wrapping
// ErrAggregateNotFound when nothing is recorded for it:
//
//	dog, err := eventsourcing.Get[Dog](ctx, school, id)
func Get[T any, PT interface {
	*T
	Root
}](ctx context.Context, p RepositoryProvider, id uuid.UUID, opts ...GetOption) (PT, error) {
	root, err := p.Repository().get(ctx, PT(new(T)), id, applyGetOptions(opts))
	if err != nil {
		return nil, err
	}
	// get returns the fresh PT or an aggregate of the same type from the cache.
	return root.(PT), nil
}

// Load rebuilds the aggregate with the given id into root, which must be new
// (the zero value of its type). It is the non-generic form of Get.
func (r *Repository) Load(ctx context.Context, root Root, id uuid.UUID, opts ...GetOption) error {
	got, err := r.get(ctx, root, id, applyGetOptions(opts))
	if err != nil {
		return err
	}
	if got != root {
		// From the cache: hand over its state (already a copy unless
		// deep copy is off, when the caller shares the cached aggregate's
		// slices and maps).
		reflect.ValueOf(root).Elem().Set(reflect.ValueOf(got).Elem())
	}
	return nil
}

// get loads into fresh, or returns an aggregate of the same type from the cache.
func (r *Repository) get(ctx context.Context, fresh Root, id uuid.UUID, o getOptions) (Root, error) {
	if r == nil {
		return nil, ErrNotConstructed // the application's NewApplication failed
	}
	if r.tel != nil {
		return r.getTraced(ctx, fresh, id, o)
	}
	return r.fetch(ctx, fresh, id, o)
}

// fetch is get without its span.
func (r *Repository) fetch(ctx context.Context, fresh Root, id uuid.UUID, o getOptions) (Root, error) {
	if _, versioned := o.version.Value(); !versioned && r.cache != nil {
		deep := r.cache.DeepCopy
		if o.deepCopy != nil {
			deep = *o.deepCopy
		}
		return r.cache.Get(ctx, cacheSource{r}, fresh, id, deep)
	}
	if err := r.load(ctx, fresh, id, o.version); err != nil {
		return nil, err
	}
	return fresh, nil
}

// Contains reports whether any event is recorded for id.
func (r *Repository) Contains(ctx context.Context, id uuid.UUID) (bool, error) {
	stored, err := r.events.SelectEvents(ctx, id.String(), recorder.EventQuery{Limit: 1})
	if err != nil {
		return false, fmt.Errorf("contains %s: %w", id, err)
	}
	return len(stored) > 0, nil
}

// load reads the latest snapshot up to version (if snapshots are stored), then
// the events after it, and folds them into root.
func (r *Repository) load(ctx context.Context, root Root, id uuid.UUID, version recorder.Bound) error {
	ti, err := r.mapper.types.codec.TypeOf(reflect.TypeOf(root))
	if err != nil {
		return fmt.Errorf("get %s: %w", id, err)
	}
	sid := id.String()
	var after recorder.Bound
	if r.snapshots != nil {
		snaps, err := r.snapshots.SelectEvents(ctx, sid, recorder.EventQuery{UpTo: version, Desc: true, Limit: 1})
		if err != nil {
			return fmt.Errorf("get %s: snapshot: %w", id, err)
		}
		if len(snaps) == 1 {
			if err := r.restore(snaps[0], root, ti); err != nil {
				return fmt.Errorf("get %s: %w", id, err)
			}
			after = recorder.Bounded(snaps[0].OriginatorVersion)
		}
	}
	stored, buf, err := eventviews.Select(ctx, r.events, sid, recorder.EventQuery{After: after, UpTo: version})
	defer eventviews.Release(buf, stored)
	if err != nil {
		return fmt.Errorf("get %s: %w", id, err)
	}
	if _, fromSnapshot := after.Value(); !fromSnapshot && len(stored) == 0 {
		return fmt.Errorf("get %s: %w", id, ErrAggregateNotFound)
	}
	if err := r.mapper.replay(root, stored, sid, id, ti); err != nil {
		return fmt.Errorf("get %s: %w", id, err)
	}
	return nil
}

// restore sets root from a stored snapshot.
func (r *Repository) restore(s recorder.StoredEvent, root Root, ti *codec.Type) error {
	a := root.aggregate()
	id, err := r.mapper.types.codec.OpenSnapshot(r.mapper.pipe, &s, ti, root, &a.createdOn, &a.modifiedOn)
	if err != nil {
		return err
	}
	a.id, a.version, a.pending = id, s.OriginatorVersion, nil
	return nil
}

// TakeSnapshot stores a snapshot of the aggregate of type *T with the given id,
// at its latest version or at AtVersion(v). It fails with ErrSnapshotting when
// the application has no snapshot store.
func TakeSnapshot[T any, PT interface {
	*T
	Root
}](ctx context.Context, p RepositoryProvider, id uuid.UUID, opts ...GetOption) error {
	return p.Repository().TakeSnapshot(ctx, PT(new(T)), id, opts...)
}

// TakeSnapshot loads the aggregate with the given id into root (new) and stores
// a snapshot of it. It is the non-generic form of the package function.
func (r *Repository) TakeSnapshot(ctx context.Context, root Root, id uuid.UUID, opts ...GetOption) error {
	if r.snapshots == nil {
		return fmt.Errorf("take snapshot of %s: %w", id, ErrSnapshotting)
	}
	o := applyGetOptions(opts)
	if err := r.load(ctx, root, id, o.version); err != nil {
		return fmt.Errorf("take snapshot: %w", err)
	}
	return r.storeSnapshot(ctx, root)
}

// snapshotAt stores a snapshot of root's aggregate at version v, reloading it
// when root is already past v.
func (r *Repository) snapshotAt(ctx context.Context, root Root, v int64) error {
	if root.aggregate().version != v {
		fresh := reflect.New(reflect.TypeOf(root).Elem()).Interface().(Root)
		if err := r.load(ctx, fresh, root.aggregate().id, recorder.Bounded(v)); err != nil {
			return err
		}
		root = fresh
	}
	return r.storeSnapshot(ctx, root)
}

func (r *Repository) storeSnapshot(ctx context.Context, root Root) error {
	if r.snapshots == nil {
		return ErrSnapshotting
	}
	ti, err := r.mapper.types.codec.TypeOf(reflect.TypeOf(root))
	if err != nil {
		return err
	}
	a := root.aggregate()
	state, err := r.mapper.types.codec.SealSnapshot(r.mapper.pipe, ti, Now(), a.createdOn, a.modifiedOn, root)
	if err != nil {
		return fmt.Errorf("encode snapshot of %s v%d: %w", a.id, a.version, err)
	}
	s := recorder.StoredEvent{OriginatorID: a.id.String(), OriginatorVersion: a.version, Topic: SnapshotTopic, State: state}
	if _, err := r.snapshots.InsertEvents(ctx, []recorder.StoredEvent{s}); err != nil {
		return fmt.Errorf("store snapshot of %s v%d: %w", a.id, a.version, err)
	}
	return nil
}

// Saver is what Update needs: a repository and Save. *Application and every
// application type embedding it are Savers.
type Saver interface {
	RepositoryProvider
	Save(ctx context.Context, roots ...Root) ([]Recording, error)
}

// UpdateAttempts is how often Update tries a command before giving up on conflicts.
const UpdateAttempts = 10

// Update runs a command on the aggregate of type *T with the given id: it gets
// the aggregate, calls change (which triggers events), and saves it. When the
// save conflicts with another writer (ErrIntegrity), it starts again from a
// fresh copy, up to UpdateAttempts times; any other error ends it.
//
//	_, err := eventsourcing.Update(ctx, school, id, func(d *Dog) error {
//		d.AddTrick("roll over")
//		return nil
//	})
func Update[T any, PT interface {
	*T
	Root
}](ctx context.Context, app Saver, id uuid.UUID, change func(PT) error) ([]Recording, error) {
	var err error
	for range UpdateAttempts {
		var root PT
		if root, err = Get[T, PT](ctx, app, id); err != nil {
			return nil, err
		}
		if err = change(root); err != nil {
			return nil, err
		}
		var recs []Recording
		recs, err = app.Save(ctx, root)
		if err == nil || !errors.Is(err, ErrIntegrity) || len(recs) > 0 {
			return recs, err
		}
		if ctx.Err() != nil {
			return nil, errors.Join(err, ctx.Err())
		}
	}
	return nil, fmt.Errorf("update %s: gave up after %d attempts: %w", id, UpdateAttempts, err)
}
