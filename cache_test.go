package eventsourcing_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func TestCacheFastForward(t *testing.T) {
	ctx := context.Background()
	school := newSchool(t, es.Options{Env: map[string]string{"AGGREGATE_CACHE_MAXSIZE": "10"}})
	dog := NewDog("Fido")
	_, err := school.Save(ctx, dog)
	require.NoError(t, err)

	// Save does not fill the cache; get does, and later gets fast-forward.
	got, err := es.Get[Dog](ctx, school, dog.ID())
	require.NoError(t, err)
	assert.Equal(t, int64(1), got.Version())
	dog.AddTrick("sit") // a writer with its own copy
	_, err = school.Save(ctx, dog)
	require.NoError(t, err)
	got, err = es.Get[Dog](ctx, school, dog.ID())
	require.NoError(t, err)
	assert.Equal(t, int64(2), got.Version())
	assert.Equal(t, []string{"sit"}, got.Tricks)

	// Deep copy: changing what Get returned leaves the cache intact.
	got.Tricks[0] = "changed"
	got.AddTrick("not saved")
	again, err := es.Get[Dog](ctx, school, dog.ID())
	require.NoError(t, err)
	assert.Equal(t, []string{"sit"}, again.Tricks)
	assert.Empty(t, again.PendingEvents())

	// Without deep copy the cached aggregate itself is returned.
	shared1, err := es.Get[Dog](ctx, school, dog.ID(), es.DeepCopy(false))
	require.NoError(t, err)
	shared2, err := es.Get[Dog](ctx, school, dog.ID(), es.DeepCopy(false))
	require.NoError(t, err)
	assert.Same(t, shared1, shared2)

	// Versioned gets bypass the cache.
	v1, err := es.Get[Dog](ctx, school, dog.ID(), es.AtVersion(1))
	require.NoError(t, err)
	assert.Empty(t, v1.Tricks)

	// The non-generic Load gets the same state.
	var loaded Dog
	require.NoError(t, school.Repository().Load(ctx, &loaded, dog.ID()))
	assert.Equal(t, []string{"sit"}, loaded.Tricks)
}

func TestCacheWithoutFastForward(t *testing.T) {
	ctx := context.Background()
	school := newSchool(t, es.Options{Env: map[string]string{
		"AGGREGATE_CACHE_MAXSIZE":     "0",
		"AGGREGATE_CACHE_FASTFORWARD": "n",
	}})
	dog := NewDog("Fido")
	_, err := school.Save(ctx, dog)
	require.NoError(t, err)
	dog.AddTrick("sit")
	_, err = school.Save(ctx, dog)
	require.NoError(t, err)
	got, err := es.Get[Dog](ctx, school, dog.ID())
	require.NoError(t, err)
	assert.Equal(t, int64(2), got.Version(), "save replaced the entry")

	// A write behind the cache's back leaves the cached aggregate stale.
	stale, err := es.Get[Dog](ctx, school, dog.ID())
	require.NoError(t, err)
	other, err := es.Get[Dog](ctx, school, dog.ID(), es.AtVersion(99))
	require.NoError(t, err)
	other.AddTrick("beg")
	stored, err := school.Mapper().FromEvent(other.PendingEvents()[0])
	require.NoError(t, err)
	_, err = school.Recorder().InsertEvents(ctx, []recorder.StoredEvent{stored})
	require.NoError(t, err)

	stale.AddTrick("roll over")
	_, err = school.Save(ctx, stale)
	assert.ErrorIs(t, err, es.ErrIntegrity, "a stale cached aggregate conflicts")
}

func TestCacheContention(t *testing.T) {
	for _, skipping := range []string{"n", "y"} {
		t.Run("skipping="+skipping, func(t *testing.T) {
			ctx := context.Background()
			school := newSchool(t, es.Options{Env: map[string]string{
				"AGGREGATE_CACHE_MAXSIZE":              "1",
				"AGGREGATE_CACHE_FASTFORWARD_SKIPPING": skipping,
			}})
			id, err := school.RegisterDog(ctx, "Fido")
			require.NoError(t, err)
			var (
				wg        sync.WaitGroup
				successes atomic.Int64
			)
			for range 50 {
				wg.Go(func() {
					for range 3 {
						dog, err := es.Get[Dog](ctx, school, id)
						if !assert.NoError(t, err) {
							return
						}
						dog.AddTrick("x")
						_, err = school.Save(ctx, dog)
						if err == nil {
							successes.Add(1)
						} else if !errors.Is(err, es.ErrIntegrity) {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			dog, err := es.Get[Dog](ctx, school, id)
			require.NoError(t, err)
			assert.Equal(t, successes.Load()+1, dog.Version())
			assert.GreaterOrEqual(t, successes.Load(), int64(1))
			fresh, err := es.Get[Dog](ctx, school, id, es.AtVersion(1<<40))
			require.NoError(t, err)
			assert.Equal(t, fresh.Tricks, dog.Tricks, "the cache agrees with storage")
		})
	}
}
