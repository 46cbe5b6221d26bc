package esdb_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/esdb"
	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
	"github.com/eventsourcing-go/eventsourcing/persistence"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func TestRegistered(t *testing.T) {
	mods := persistence.Modules()
	require.Contains(t, mods, "eventstoredb")
	require.Contains(t, mods, "eventsourcing_eventstoredb")
}

func TestConfig(t *testing.T) {
	_, err := persistence.Open(t.Context(), config.NewEnvFrom("App", map[string]string{"PERSISTENCE_MODULE": "eventstoredb"}, nil))
	require.ErrorIs(t, err, recorder.ErrInfrastructureFactory)
	require.ErrorIs(t, err, config.ErrConfiguration)
	require.ErrorContains(t, err, "APP_EVENTSTOREDB_URI")
	require.ErrorContains(t, err, "EVENTSTOREDB_URI")

	_, err = esdb.ParseConfig(config.NewEnvFrom("App", map[string]string{esdb.KeyURI: "http://nope"}, nil))
	require.ErrorIs(t, err, config.ErrConfiguration)

	_, err = esdb.ParseConfig(config.NewEnvFrom("App", map[string]string{
		esdb.KeyURI: "esdb://localhost:2113", esdb.KeyRootCertificates: "not a certificate"}, nil))
	require.ErrorIs(t, err, config.ErrConfiguration)
	require.ErrorContains(t, err, esdb.KeyRootCertificates)

	// App-prefixed keys win, and the root certificates are PEM text.
	srv := esdbtest.Start(t, esdbtest.WithTLS())
	cfg, err := esdb.ParseConfig(config.NewEnvFrom("App", map[string]string{
		"APP_" + esdb.KeyURI:              "esdb://" + srv.Addr().String() + "?tls=true",
		esdb.KeyURI:                       "esdb://wrong:1?tls=false",
		"APP_" + esdb.KeyRootCertificates: string(srv.CACertPEM()),
	}, nil))
	require.NoError(t, err)
	f, err := esdb.OpenConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	r, err := f.ApplicationRecorder(t.Context())
	require.NoError(t, err)
	_, err = r.InsertEvents(t.Context(), []recorder.StoredEvent{{OriginatorID: uuid.NewString(), Topic: "t", State: []byte("x")}})
	require.NoError(t, err, "a TLS connection verified with the PEM root certificates")
}

func application(t *testing.T, uri string) recorder.ApplicationRecorder {
	t.Helper()
	f := openOn(t, "app", uri, nil)
	t.Cleanup(func() { _ = f.Close() })
	r, err := f.ApplicationRecorder(t.Context())
	require.NoError(t, err)
	return r
}

func TestBatchRulesBeforeIO(t *testing.T) {
	// No server: every refusal below happens before any I/O.
	f := openOn(t, "app", "esdb://127.0.0.1:1?tls=false", nil)
	t.Cleanup(func() { _ = f.Close() })
	r, err := f.ApplicationRecorder(t.Context())
	require.NoError(t, err)
	a, b := uuid.NewString(), uuid.NewString()
	for _, c := range []struct {
		name   string
		events []recorder.StoredEvent
		kind   error
	}{
		{"two aggregates", []recorder.StoredEvent{{OriginatorID: a}, {OriginatorID: b}}, recorder.ErrProgramming},
		{"a version gap", []recorder.StoredEvent{{OriginatorID: a}, {OriginatorID: a, OriginatorVersion: 2}}, recorder.ErrIntegrity},
		{"a duplicate version", []recorder.StoredEvent{{OriginatorID: a}, {OriginatorID: a}}, recorder.ErrIntegrity},
		{"a system stream", []recorder.StoredEvent{{OriginatorID: "$users"}}, recorder.ErrProgramming},
		{"a reserved stream", []recorder.StoredEvent{{OriginatorID: esdb.SnapshotStream(a)}}, recorder.ErrProgramming},
		{"an empty id", []recorder.StoredEvent{{}}, recorder.ErrProgramming},
	} {
		_, err := r.InsertEvents(t.Context(), c.events)
		require.ErrorIs(t, err, c.kind, c.name)
		require.False(t, errors.Is(err, recorder.ErrOperational), "%s: refused after trying I/O: %v", c.name, err)
	}
	got, err := r.InsertEvents(t.Context(), nil)
	require.NoError(t, err, "an empty batch makes no call")
	require.Empty(t, got)
}

// The module's own retry of an append reuses its event ids, and the server
// answers a repeated append idempotently: what makes the retry safe. The
// ids are drawn per call, not derived from (id, version) alone: with such
// ids a competing writer's append of the same version would be taken for a
// retry and reported as a success although its events were not stored.
func TestRetriedAppendIsIdempotent(t *testing.T) {
	c := newClient(t, esdbtestURI(t))
	stream := uuid.NewString()
	ev := esdbclient.EventData{EventID: uuid.New(), EventType: "t", ContentType: esdbclient.ContentTypeBinary, Data: []byte("one")}
	opts := esdbclient.AppendToStreamOptions{ExpectedRevision: esdbclient.NoStream{}}
	first, err := c.AppendToStream(t.Context(), stream, opts, ev)
	require.NoError(t, err)
	again, err := c.AppendToStream(t.Context(), stream, opts, ev)
	require.NoError(t, err, "a retry with the same ids is answered with the original result")
	require.Equal(t, first.CommitPosition, again.CommitPosition)
	pos, ok, err := esdb.StreamPosition(t.Context(), c, stream)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, uint64(0), pos, "nothing was written twice")

	other := ev
	other.Data = []byte("a competitor with the same id")
	_, err = c.AppendToStream(t.Context(), stream, opts, other)
	require.NoError(t, err, "the server cannot tell a competitor with the same id from a retry: ids must differ per call")
}

// The ids returned by an insert are each event's own commit position, and
// equal to what selects return.
func TestNotificationIDsArePositions(t *testing.T) {
	uri := esdbtestURI(t)
	r := application(t, uri)
	c := newClient(t, uri)
	id := uuid.NewString()
	ids, err := r.InsertEvents(t.Context(), []recorder.StoredEvent{
		{OriginatorID: id, Topic: "a", State: []byte("0")},
		{OriginatorID: id, OriginatorVersion: 1, Topic: "b", State: []byte("1")},
		{OriginatorID: id, OriginatorVersion: 2, Topic: "c", State: []byte("2")},
	})
	require.NoError(t, err)
	events, err := esdb.ReadAll(t.Context(), c, esdb.ReadAllOptions{})
	require.NoError(t, err)
	var positions []int64
	for _, e := range events {
		positions = append(positions, int64(e.Position.Commit))
	}
	require.Equal(t, ids, positions)
	head, err := esdb.CommitPosition(t.Context(), c)
	require.NoError(t, err)
	require.Equal(t, uint64(ids[2]), head)
}

// Snapshots live in their own streams, which the notification log skips.
func TestSnapshotsAreNotNotifications(t *testing.T) {
	uri := esdbtestURI(t)
	f := openOn(t, "app", uri, nil)
	t.Cleanup(func() { _ = f.Close() })
	app, err := f.ApplicationRecorder(t.Context())
	require.NoError(t, err)
	snaps, err := f.AggregateRecorder(t.Context(), recorder.PurposeSnapshots)
	require.NoError(t, err)
	id := uuid.NewString()
	ids, err := app.InsertEvents(t.Context(), []recorder.StoredEvent{{OriginatorID: id, Topic: "Created"}})
	require.NoError(t, err)
	_, err = snaps.InsertEvents(t.Context(), []recorder.StoredEvent{{OriginatorID: id, Topic: "eventsourcing.domain:Snapshot", State: []byte("s")}})
	require.NoError(t, err)
	_, err = snaps.InsertEvents(t.Context(), []recorder.StoredEvent{{OriginatorID: id}, {OriginatorID: id}})
	require.ErrorIs(t, err, recorder.ErrProgramming, "one snapshot per call")
	maxID, ok, err := app.MaxNotificationID(t.Context())
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, ids[0], maxID)
	ns, err := app.SelectNotifications(t.Context(), recorder.NotificationQuery{Limit: 10})
	require.NoError(t, err)
	require.Len(t, ns, 1)
	got, err := snaps.SelectEvents(t.Context(), id, recorder.EventQuery{Desc: true, Limit: 1})
	require.NoError(t, err)
	require.Equal(t, []recorder.StoredEvent{{OriginatorID: id, Topic: "eventsourcing.domain:Snapshot", State: []byte("s")}}, got)
}

// Tracking in metadata refuses a policy that writes several aggregates.
func TestTrackingRefusesSeveralAggregates(t *testing.T) {
	uri := esdbtestURI(t)
	on := map[string]string{esdb.KeyTrackingInMetadata: "yes"}
	f := openOn(t, "downstream", uri, on)
	t.Cleanup(func() { _ = f.Close() })
	r, err := f.ProcessRecorder(t.Context())
	require.NoError(t, err)
	a, b := uuid.NewString(), uuid.NewString()
	_, err = r.InsertEvents(t.Context(), []recorder.StoredEvent{{OriginatorID: a}, {OriginatorID: b}},
		recorder.WithTracking(recorder.Tracking{ApplicationName: "up", NotificationID: 7}))
	require.ErrorIs(t, err, recorder.ErrNotSupported)
	require.ErrorContains(t, err, "one aggregate")
	_, ok, err := r.MaxTrackingID(t.Context(), "up")
	require.NoError(t, err)
	require.False(t, ok)

	// A new recorder on the same database finds the position in the
	// metadata, past the hints, after many tracked appends.
	for i := range 70 {
		_, err := r.InsertEvents(t.Context(), []recorder.StoredEvent{{OriginatorID: uuid.NewString(), Topic: "t"}},
			recorder.WithTracking(recorder.Tracking{ApplicationName: "up", NotificationID: int64(10 + i)}))
		require.NoError(t, err)
	}
	f2 := openOn(t, "downstream", uri, on)
	t.Cleanup(func() { _ = f2.Close() })
	r2, err := f2.ProcessRecorder(t.Context())
	require.NoError(t, err)
	maxID, ok, err := r2.MaxTrackingID(t.Context(), "up")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(79), maxID)
	_, ok, err = r2.MaxTrackingID(t.Context(), "another")
	require.NoError(t, err)
	require.False(t, ok)
	other := openOn(t, "other-downstream", uri, on)
	t.Cleanup(func() { _ = other.Close() })
	r3, err := other.ProcessRecorder(t.Context())
	require.NoError(t, err)
	_, ok, err = r3.MaxTrackingID(t.Context(), "up")
	require.NoError(t, err)
	require.False(t, ok, "tracking entries are per downstream application")
}

// A server restart in the middle of a subscription loses and duplicates
// nothing: the subscription resubscribes after the last position it delivered.
func TestSubscriptionSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	srv, err := esdbtest.NewServer(esdbtest.WithDataDir(dir))
	require.NoError(t, err)
	addr := srv.Addr().String()
	uri := srv.URI()
	var mu sync.Mutex
	current := srv
	t.Cleanup(func() { mu.Lock(); defer mu.Unlock(); _ = current.Close() })

	r := application(t, uri)
	ctx := t.Context()
	sub, err := r.Subscribe(ctx, recorder.Start(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })

	var want []int64
	insert := func(n int) {
		for range n {
			var ids []int64
			// Writes may fail while the server is away; retry them (the
			// module's appends are safe to repeat only within one call, so a
			// new call writes a new aggregate).
			for {
				var err error
				ids, err = r.InsertEvents(ctx, []recorder.StoredEvent{{OriginatorID: uuid.NewString(), Topic: "t"}})
				if err == nil {
					break
				}
				require.ErrorIs(t, err, recorder.ErrOperational)
				time.Sleep(50 * time.Millisecond)
			}
			want = append(want, ids...)
		}
	}
	var got []int64
	receive := func(n int) {
		for range n {
			nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			note, err := sub.Next(nctx)
			cancel()
			require.NoError(t, err)
			got = append(got, note.ID)
		}
	}
	insert(30)
	receive(10)

	mu.Lock()
	require.NoError(t, current.Close())
	current, err = esdbtest.NewServer(esdbtest.WithAddr(addr), esdbtest.WithDataDir(dir))
	mu.Unlock()
	require.NoError(t, err)

	insert(30)
	receive(50)
	require.Equal(t, want, got, "every event once, in order")
	requireNoMore(t, sub)
}

func requireNoMore(t *testing.T, sub recorder.Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	n, err := sub.Next(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "unexpected %+v", n)
}

// Filters on ReadAll and SubscribeAll: include on the server, exclude
// system events by default, the limit after filtering, bad patterns refused.
func TestFilters(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.name, func(t *testing.T) {
			c := newClient(t, tg.uri(t))
			ctx := t.Context()
			start, err := esdb.CommitPosition(ctx, c)
			require.NoError(t, err)
			prefix := "F" + strings.ReplaceAll(uuid.NewString(), "-", "")
			stream := uuid.NewString()
			var types []string
			var events []esdbclient.EventData
			for i := range 40 {
				typ := prefix + []string{"Created", "Updated", "Snapshot"}[i%3]
				types = append(types, typ)
				events = append(events, esdbclient.EventData{EventID: uuid.New(), EventType: typ, ContentType: esdbclient.ContentTypeBinary})
			}
			_, err = c.AppendToStream(ctx, stream, esdbclient.AppendToStreamOptions{ExpectedRevision: esdbclient.NoStream{}}, events...)
			require.NoError(t, err)

			after := func(evs []*esdbclient.RecordedEvent) []string {
				var out []string
				for _, e := range evs {
					if e.StreamID == stream {
						out = append(out, e.EventType)
					}
				}
				return out
			}
			want := func(keep func(string) bool, limit int) []string {
				var out []string
				for _, typ := range types {
					if keep(typ) && (limit == 0 || len(out) < limit) {
						out = append(out, typ)
					}
				}
				return out
			}
			from := &start
			if start == 0 {
				from = nil
			}
			got, err := esdb.ReadAll(ctx, c, esdb.ReadAllOptions{From: from, Filter: esdb.Filter{Include: []string{regexp.QuoteMeta(prefix) + "Created"}}, Limit: 5})
			require.NoError(t, err)
			require.Equal(t, want(func(s string) bool { return strings.HasSuffix(s, "Created") }, 5), after(got))

			got, err = esdb.ReadAll(ctx, c, esdb.ReadAllOptions{From: from, Filter: esdb.Filter{Exclude: []string{esdb.EventsRegex, ".*Snapshot"}}})
			require.NoError(t, err)
			require.Equal(t, want(func(s string) bool { return !strings.HasSuffix(s, "Snapshot") }, 0), after(got))
			for _, e := range got {
				require.False(t, strings.HasPrefix(e.EventType, "$"), "system event %s", e.EventType)
			}

			got, err = esdb.ReadAll(ctx, c, esdb.ReadAllOptions{Backwards: true, Limit: 3, Filter: esdb.Filter{Include: []string{".*Updated"}}})
			require.NoError(t, err)
			require.Len(t, got, 3)
			back := want(func(s string) bool { return strings.HasSuffix(s, "Updated") }, 0)
			slices.Reverse(back)
			require.Equal(t, back[:3], after(got))

			_, err = esdb.ReadAll(ctx, c, esdb.ReadAllOptions{Filter: esdb.Filter{Include: []string{"(?!lookahead)"}}})
			require.ErrorContains(t, err, "include filter")

			sub, err := esdb.SubscribeAll(ctx, c, from, esdb.Filter{Include: []string{regexp.QuoteMeta(prefix) + "(Updated|Snapshot)"}})
			require.NoError(t, err)
			defer sub.Close()
			var seen []string
			for len(seen) < 26 {
				e, err := sub.Recv()
				require.NoError(t, err)
				seen = append(seen, e.EventType)
			}
			require.Equal(t, want(func(s string) bool { return !strings.HasSuffix(s, "Created") }, 0), seen)
		})
	}
}
