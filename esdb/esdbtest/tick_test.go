package esdbtest

import (
	"context"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMessageTimeoutsOnTimerTick checks that a persistent subscription
// message is retried at the first timer tick after its timeout, as on a
// real node, so an ack that comes after the timeout but before the tick
// leaves the retry count alone. The test drives the ticks itself.
func TestMessageTimeoutsOnTimerTick(t *testing.T) {
	srv := Start(t, func(c *config) { c.tick = 24 * time.Hour })
	c := Dial(t, srv.URI())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	name := "tick-" + uuid.NewString()
	settings := esdb.SubscriptionSettingsDefault()
	settings.MessageTimeout = 1 // ms: every message times out at once
	settings.MaxRetryCount = 5
	require.NoError(t, c.CreatePersistentSubscription(ctx, name, "g", esdb.PersistentStreamSubscriptionOptions{Settings: &settings}))
	sub, err := c.SubscribeToPersistentSubscription(ctx, name, "g", esdb.SubscribeToPersistentSubscriptionOptions{})
	require.NoError(t, err)
	defer sub.Close()
	next := func() *esdb.EventAppeared {
		t.Helper()
		e := sub.Recv()
		require.Nil(t, e.SubscriptionDropped)
		require.NotNil(t, e.EventAppeared)
		return e.EventAppeared
	}
	group := func() *psGroup {
		srv.subs.mu.Lock()
		defer srv.subs.mu.Unlock()
		return srv.subs.groups[groupKey(name, "g")]
	}()
	state := func() (inflight, retry int) {
		group.mu.Lock()
		defer group.mu.Unlock()
		for _, ds := range group.inflight {
			inflight += len(ds)
		}
		return inflight, len(group.retry)
	}

	_, err = c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, esdb.EventData{EventType: "A", ContentType: esdb.ContentTypeJson, Data: []byte("{}")})
	require.NoError(t, err)
	first := next()
	assert.Zero(t, first.RetryCount)
	inflight, retry := state()
	assert.Equal(t, 1, inflight, "past its timeout, but no tick yet")
	assert.Zero(t, retry)

	// A late ack before the tick: nothing is retried.
	require.NoError(t, sub.Ack(first.Event))
	require.Eventually(t, func() bool { n, _ := state(); return n == 0 }, 10*time.Second, time.Millisecond)
	group.tick(time.Now())
	inflight, retry = state()
	assert.Zero(t, inflight)
	assert.Zero(t, retry)

	// No ack: the tick retries the message, once per tick.
	_, err = c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, esdb.EventData{EventType: "B", ContentType: esdb.ContentTypeJson, Data: []byte("{}")})
	require.NoError(t, err)
	second := next()
	assert.Equal(t, "B", second.Event.OriginalEvent().EventType)
	assert.Zero(t, second.RetryCount)
	group.tick(time.Now().Add(time.Second))
	again := next()
	assert.Equal(t, second.Event.OriginalEvent().EventID, again.Event.OriginalEvent().EventID)
	assert.Equal(t, 1, again.RetryCount)
	group.tick(time.Now().Add(time.Second))
	assert.Equal(t, 2, next().RetryCount)
}
