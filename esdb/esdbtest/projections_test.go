package esdbtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/projections"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
)

// projEnv is a server with projections and its clients: the official
// client, its projection client and the generated projections client
// (for the one-time and transient modes the official client lacks).
type projEnv struct {
	srv  *esdbtest.Server
	c    *esdb.Client
	pc   *esdb.ProjectionClient
	grpc projections.ProjectionsClient
}

func startProjections(t *testing.T, mode esdbtest.ProjectionsMode) projEnv {
	t.Helper()
	srv, c := startClient(t, esdbtest.WithProjections(mode))
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return projEnv{srv: srv, c: c, pc: esdb.NewProjectionClientFromExistingClient(c), grpc: projections.NewProjectionsClient(conn)}
}

// waitStatus polls the projection's statistics until check accepts them.
func waitStatus(t *testing.T, e projEnv, name string, check func(*esdb.ProjectionStatus) bool) *esdb.ProjectionStatus {
	t.Helper()
	var last *esdb.ProjectionStatus
	require.Eventually(t, func() bool {
		st, err := e.pc.GetStatus(ctxT(t), name, esdb.GenericProjectionOptions{})
		if err != nil {
			return false
		}
		last = st
		return check(st)
	}, 15*time.Second, 5*time.Millisecond, "projection %s: last statistics %+v", name, last)
	return last
}

func statusIs(want string) func(*esdb.ProjectionStatus) bool {
	return func(s *esdb.ProjectionStatus) bool { return strings.HasPrefix(s.Status, want) }
}

// processedAtLeast waits until a running projection has seen n events.
func processedAtLeast(n int64) func(*esdb.ProjectionStatus) bool {
	return func(s *esdb.ProjectionStatus) bool { return s.EventsProcessedAfterRestart >= n }
}

// stateOf returns a projection's state (or result) as JSON.
func stateOf(t *testing.T, e projEnv, name, partition string, result bool) string {
	t.Helper()
	var err error
	var b []byte
	if result {
		v, rerr := e.pc.GetResult(ctxT(t), name, esdb.GetResultProjectionOptions{Partition: partition})
		require.NoError(t, rerr)
		b, err = v.MarshalJSON()
	} else {
		v, rerr := e.pc.GetState(ctxT(t), name, esdb.GetStateProjectionOptions{Partition: partition})
		require.NoError(t, rerr)
		b, err = v.MarshalJSON()
	}
	require.NoError(t, err)
	return string(b)
}

func appendJSON(t *testing.T, c *esdb.Client, stream, typ string, data ...string) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	var events []esdb.EventData
	for _, d := range data {
		e := ev(typ, d)
		ids = append(ids, e.EventID)
		events = append(events, e)
	}
	_, err := c.AppendToStream(ctxT(t), stream, esdb.AppendToStreamOptions{}, events...)
	require.NoError(t, err)
	return ids
}

func grpcCode(err error) codes.Code {
	var e *esdb.Error
	if err != nil && errors.As(err, &e) && e.Unwrap() != nil {
		return status.Code(e.Unwrap())
	}
	return status.Code(err)
}

func TestProjectionsUnimplementedWithoutProjections(t *testing.T) {
	srv, c := startClient(t)
	pc := esdb.NewProjectionClientFromExistingClient(c)
	err := pc.Create(ctxT(t), "p", "fromAll().when({})", esdb.CreateProjectionOptions{})
	require.Error(t, err)
	assert.Equal(t, codes.Unimplemented, grpcCode(err), "%v", err)

	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	feats, err := serverfeatures.NewServerFeaturesClient(conn).GetSupportedMethods(ctxT(t), &shared.Empty{})
	require.NoError(t, err)
	for _, m := range feats.GetMethods() {
		assert.NotEqual(t, "event_store.client.projections.projections", m.GetServiceName())
	}
}

func TestProjectionsListedInServerFeatures(t *testing.T) {
	e := startProjections(t, esdbtest.ProjectionsAll)
	conn, err := grpc.NewClient(e.srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	feats, err := serverfeatures.NewServerFeaturesClient(conn).GetSupportedMethods(ctxT(t), &shared.Empty{})
	require.NoError(t, err)
	var got []string
	for _, m := range feats.GetMethods() {
		if m.GetServiceName() == "event_store.client.projections.projections" {
			got = append(got, m.GetMethodName())
		}
	}
	assert.ElementsMatch(t, []string{"create", "update", "delete", "statistics", "disable", "enable",
		"reset", "state", "result", "restartsubsystem"}, got)
}

// countQuery counts every event in a nested state, the shape the
// official client's own tests read back.
const countQuery = `fromAll()
.when({
	$init: function () { return { foo: { baz: { count: 0 } } }; },
	$any: function (s, e) { s.foo.baz.count += 1; }
})
.outputState()`

// The official client's projection tests, step by step: create, delete
// after a disable, update (version 1), enable, abort, reset, state and
// result.
func TestProjectionClientLifecycle(t *testing.T) {
	e := startProjections(t, esdbtest.ProjectionsAll)
	ctx := ctxT(t)
	appendJSON(t, e.c, streamName(), "TestEvent", `{"a":1}`, `{"a":2}`, `{"a":3}`)

	name := "count-" + uuid.NewString()
	require.NoError(t, e.pc.Create(ctx, name, countQuery, esdb.CreateProjectionOptions{}))
	st := waitStatus(t, e, name, processedAtLeast(3))
	assert.Equal(t, "Running", st.Status)
	assert.Equal(t, "Continuous", st.Mode)
	assert.Equal(t, name, st.Name)
	assert.Equal(t, int64(0), st.Version)
	assert.JSONEq(t, `{"foo":{"baz":{"count":3}}}`, stateOf(t, e, name, "", false))
	assert.JSONEq(t, `{"foo":{"baz":{"count":3}}}`, stateOf(t, e, name, "", true))

	// A name that exists, and deleting a running projection, fail with
	// the server's envelope errors.
	err := e.pc.Create(ctx, name, countQuery, esdb.CreateProjectionOptions{})
	require.Error(t, err)
	assert.Equal(t, codes.Unknown, grpcCode(err))
	assert.Contains(t, err.Error(), "Envelope callback expected Updated, received Conflict instead")
	err = e.pc.Delete(ctx, name, esdb.DeleteProjectionOptions{})
	require.Error(t, err)
	assert.Equal(t, codes.Unknown, grpcCode(err))
	assert.Contains(t, err.Error(), "Envelope callback expected Updated, received OperationFailed instead")

	// Update: the version goes up and the new query goes on from where
	// the old one was.
	updated := strings.Replace(countQuery, "count += 1", "count += 10", 1)
	require.NoError(t, e.pc.Update(ctx, name, updated, esdb.UpdateProjectionOptions{}))
	st, err = e.pc.GetStatus(ctx, name, esdb.GenericProjectionOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(1), st.Version)
	appendJSON(t, e.c, streamName(), "TestEvent", `{"a":4}`)
	waitStatus(t, e, name, processedAtLeast(4))
	assert.JSONEq(t, `{"foo":{"baz":{"count":13}}}`, stateOf(t, e, name, "", false))

	// Enable a running projection: still running. Abort and disable stop it.
	require.NoError(t, e.pc.Enable(ctx, name, esdb.GenericProjectionOptions{}))
	waitStatus(t, e, name, statusIs("Running"))
	require.NoError(t, e.pc.Abort(ctx, name, esdb.GenericProjectionOptions{}))
	waitStatus(t, e, name, statusIs("Stopped"))
	require.NoError(t, e.pc.Enable(ctx, name, esdb.GenericProjectionOptions{}))
	waitStatus(t, e, name, statusIs("Running"))

	// Reset: processed again from the start with the current query.
	require.NoError(t, e.pc.Reset(ctx, name, esdb.ResetProjectionOptions{}))
	waitStatus(t, e, name, processedAtLeast(4))
	assert.JSONEq(t, `{"foo":{"baz":{"count":40}}}`, stateOf(t, e, name, "", false))
	st, err = e.pc.GetStatus(ctx, name, esdb.GenericProjectionOptions{})
	require.NoError(t, err)
	// Update, abort, enable (of a stopped projection) and reset each make
	// a new version; enabling a running one does not. A reset starts an epoch.
	assert.Equal(t, int64(4), st.Version)
	assert.Equal(t, int64(4), st.Epoch)

	require.NoError(t, e.pc.Disable(ctx, name, esdb.GenericProjectionOptions{}))
	waitStatus(t, e, name, statusIs("Stopped"))
	require.NoError(t, e.pc.Delete(ctx, name, esdb.DeleteProjectionOptions{DeleteStateStream: true}))
	_, err = e.pc.GetStatus(ctx, name, esdb.GenericProjectionOptions{})
	require.Error(t, err)
	assert.Equal(t, codes.NotFound, grpcCode(err))
	assert.Contains(t, err.Error(), fmt.Sprintf("Projection '%s' not found", name))
	for _, call := range []func() error{
		func() error { return e.pc.Enable(ctx, name, esdb.GenericProjectionOptions{}) },
		func() error { return e.pc.Disable(ctx, name, esdb.GenericProjectionOptions{}) },
		func() error { return e.pc.Reset(ctx, name, esdb.ResetProjectionOptions{}) },
		func() error { return e.pc.Delete(ctx, name, esdb.DeleteProjectionOptions{}) },
		func() error { return e.pc.Update(ctx, name, countQuery, esdb.UpdateProjectionOptions{}) },
		func() error { _, err := e.pc.GetState(ctx, name, esdb.GetStateProjectionOptions{}); return err },
		func() error { _, err := e.pc.GetResult(ctx, name, esdb.GetResultProjectionOptions{}); return err },
	} {
		assert.Equal(t, codes.NotFound, grpcCode(call()))
	}
}

func TestProjectionCreateRefusals(t *testing.T) {
	e := startProjections(t, esdbtest.ProjectionsAll)
	ctx := ctxT(t)
	// Tracking emitted streams needs emitting: the server throws in its handler.
	err := e.pc.Create(ctx, "track-"+uuid.NewString(), countQuery, esdb.CreateProjectionOptions{TrackEmittedStreams: true})
	require.Error(t, err)
	assert.Equal(t, codes.Unknown, grpcCode(err))
	// A continuous projection needs a name.
	err = e.pc.Create(ctx, "", countQuery, esdb.CreateProjectionOptions{})
	require.Error(t, err)
	assert.Equal(t, codes.Unknown, grpcCode(err))
	assert.Contains(t, err.Error(), "received OperationFailed instead")
	// System projections are not deleted.
	err = e.pc.Delete(ctx, "$by_category", esdb.DeleteProjectionOptions{})
	require.Error(t, err)
	assert.Equal(t, codes.Unknown, grpcCode(err))
}

func TestProjectionEmitNeedsEmitEnabled(t *testing.T) {
	e := startProjections(t, esdbtest.ProjectionsAll)
	src := streamName()
	appendJSON(t, e.c, src, "Thing", `{"n":1}`)
	query := fmt.Sprintf(`fromStream(%q).when({ Thing: function (s, e) { emit("out-x", "Copied", e.body); } })`, src)

	name := "noemit-" + uuid.NewString()
	require.NoError(t, e.pc.Create(ctxT(t), name, query, esdb.CreateProjectionOptions{}))
	st := waitStatus(t, e, name, statusIs("Faulted"))
	assert.Equal(t, "'emit' is not allowed by the projection/configuration/mode", st.StateReason)
	// A faulted projection may be deleted.
	require.NoError(t, e.pc.Delete(ctxT(t), name, esdb.DeleteProjectionOptions{}))

	// Update with emit enabled and the same query runs.
	name = "emit-" + uuid.NewString()
	require.NoError(t, e.pc.Create(ctxT(t), name, query, esdb.CreateProjectionOptions{}))
	waitStatus(t, e, name, statusIs("Faulted"))
	enabled := true
	require.NoError(t, e.pc.Update(ctxT(t), name, query, esdb.UpdateProjectionOptions{Emit: &enabled}))
	waitStatus(t, e, name, processedAtLeast(1))
	got, err := readStream(t, e.c, "out-x", esdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "Copied", got[0].Event.EventType)
}

func TestProjectionEmitAndLinkTo(t *testing.T) {
	e := startProjections(t, esdbtest.ProjectionsAll)
	src := "order-" + uuid.NewString()
	ids := appendJSON(t, e.c, src, "OrderPlaced", `{"total":5}`, `{"total":50}`)
	out, links := "big-"+uuid.NewString(), "all-"+uuid.NewString()
	query := fmt.Sprintf(`fromStream(%q).when({
	OrderPlaced: function (s, e) {
		linkTo(%q, e);
		if (e.body.total > 10) emit(%q, "BigOrder", { total: e.body.total }, { source: e.streamId });
	}
})`, src, links, out)
	name := "emitter-" + uuid.NewString()
	require.NoError(t, e.pc.Create(ctxT(t), name, query, esdb.CreateProjectionOptions{Emit: true, TrackEmittedStreams: true}))
	waitStatus(t, e, name, processedAtLeast(2))

	got, err := readStream(t, e.c, out, esdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "BigOrder", got[0].Event.EventType)
	assert.JSONEq(t, `{"total":50}`, string(got[0].Event.Data))
	var meta map[string]any
	require.NoError(t, json.Unmarshal(got[0].Event.UserMetadata, &meta))
	assert.Equal(t, ids[1].String(), meta["$causedBy"])
	assert.Equal(t, src, meta["source"])

	got, err = readStream(t, e.c, links, esdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	require.Len(t, got, 2)
	for i, g := range got {
		assert.Equal(t, "$>", g.Event.EventType)
		assert.Equal(t, fmt.Sprintf("%d@%s", i, src), string(g.Event.Data))
	}

	// Deleting with the emitted streams removes what it tracked.
	require.NoError(t, e.pc.Disable(ctxT(t), name, esdb.GenericProjectionOptions{}))
	require.NoError(t, e.pc.Delete(ctxT(t), name, esdb.DeleteProjectionOptions{DeleteEmittedStreams: true}))
	_, err = readStream(t, e.c, out, esdb.ReadStreamOptions{}, 10)
	assert.Equal(t, esdb.ErrorCodeResourceNotFound, errCode(err), "%v", err)
}

// shoppingCarts writes carts like the server documentation's tutorial
// data: ItemAdded events in four shoppingCart- streams, three of them for
// an Xbox One S.
func shoppingCarts(t *testing.T, c *esdb.Client) (carts []string, xboxIDs []uuid.UUID) {
	t.Helper()
	items := [][]string{
		{"Xbox One S 1TB (Console)", "Gears of War 4"},
		{"Xbox One S 1TB (Console)"},
		{"Xbox One S 500GB (Console)", "Forza Horizon 3"},
		{"Xbox One Elite (Console)"},
	}
	for _, list := range items {
		cart := "shoppingCart-" + uuid.NewString()
		carts = append(carts, cart)
		for _, item := range list {
			ids := appendJSON(t, c, cart, "ItemAdded", fmt.Sprintf(`{"Description":%q}`, item))
			if strings.Contains(item, "Xbox One S") {
				xboxIDs = append(xboxIDs, ids[0])
			}
		}
	}
	return carts, xboxIDs
}

const xboxCounter = `fromAll()
.when({
	$init: function () { return { count: 0 }; },
	ItemAdded: function (s, e) {
		if (e.body.Description.indexOf("Xbox One S") >= 0) { s.count += 1; }
	}
})
.outputState()`

// resultEvents reads a projection's result stream.
func resultEvents(t *testing.T, c *esdb.Client, name string) []*esdb.ResolvedEvent {
	t.Helper()
	got, err := readStream(t, c, "$projections-"+name+"-result", esdb.ReadStreamOptions{}, 100)
	require.NoError(t, err)
	return got
}

// The server documentation's tutorial: the Xbox One S counter, continuous
// and one-time, gives the same state and the same final result event.
func TestProjectionDocumentationExample(t *testing.T) {
	e := startProjections(t, esdbtest.ProjectionsAll)
	ctx := ctxT(t)
	_, xbox := shoppingCarts(t, e.c)

	require.NoError(t, e.pc.Create(ctx, "xbox-one-s-counter", xboxCounter, esdb.CreateProjectionOptions{}))
	waitStatus(t, e, "xbox-one-s-counter", processedAtLeast(6))
	assert.JSONEq(t, `{"count":3}`, stateOf(t, e, "xbox-one-s-counter", "", false))
	assert.JSONEq(t, `{"count":3}`, stateOf(t, e, "xbox-one-s-counter", "", true))

	// One Result per change of the result, caused by the event that changed it.
	results := resultEvents(t, e.c, "xbox-one-s-counter")
	require.Len(t, results, 3)
	for i, r := range results {
		assert.Equal(t, "Result", r.Event.EventType)
		assert.JSONEq(t, fmt.Sprintf(`{"count":%d}`, i+1), string(r.Event.Data))
		var meta map[string]any
		require.NoError(t, json.Unmarshal(r.Event.UserMetadata, &meta))
		assert.Equal(t, xbox[i].String(), meta["$causedBy"])
		assert.Contains(t, meta, "$v")
	}

	// The same query, one-time: it completes with the same state and result.
	_, err := e.grpc.Create(ctx, &projections.CreateReq{Options: &projections.CreateReq_Options{
		Mode: &projections.CreateReq_Options_OneTime{OneTime: &shared.Empty{}}, Query: xboxCounter,
	}})
	require.NoError(t, err)
	oneTime := ""
	require.Eventually(t, func() bool {
		list := statistics(t, e, &projections.StatisticsReq_Options{Mode: &projections.StatisticsReq_Options_OneTime{OneTime: &shared.Empty{}}})
		if len(list) != 1 {
			return false
		}
		oneTime = list[0].GetName()
		return list[0].GetStatus() == "Completed"
	}, 15*time.Second, 5*time.Millisecond)
	_, err = uuid.Parse(oneTime)
	require.NoError(t, err, "a one-time projection is named by a new UUID")
	assert.JSONEq(t, `{"count":3}`, stateOf(t, e, oneTime, "", false))
	assert.JSONEq(t, `{"count":3}`, stateOf(t, e, oneTime, "", true))
	// A query writes no running results: one Result once it is done,
	// equal to the continuous projection's last, tagged with its results
	// phase instead of an event.
	once := resultEvents(t, e.c, oneTime)
	require.Len(t, once, 1)
	assert.Equal(t, "Result", once[0].Event.EventType)
	assert.JSONEq(t, string(results[2].Event.Data), string(once[0].Event.Data))
	var meta map[string]any
	require.NoError(t, json.Unmarshal(once[0].Event.UserMetadata, &meta))
	assert.NotContains(t, meta, "$causedBy")
	assert.Equal(t, float64(1), meta["$ph"])

	// A completed one-time projection is not running, so it may be deleted.
	_, err = e.grpc.Delete(ctx, &projections.DeleteReq{Options: &projections.DeleteReq_Options{Name: oneTime}})
	require.NoError(t, err)
}

// The tutorial's items per shopping cart: fromCategory with foreachStream,
// its state read by partition.
func TestProjectionDocumentationPartitions(t *testing.T) {
	e := startProjections(t, esdbtest.ProjectionsAll)
	carts, _ := shoppingCarts(t, e.c)
	query := `fromCategory('shoppingCart')
.foreachStream()
.when({
	$init: function () { return { count: 0 }; },
	ItemAdded: function (s, e) { s.count += 1; }
})`
	name := "shopping-cart-item-counter"
	require.NoError(t, e.pc.Create(ctxT(t), name, query, esdb.CreateProjectionOptions{}))
	waitStatus(t, e, name, processedAtLeast(6))
	for i, want := range []int{2, 1, 2, 1} {
		assert.JSONEq(t, fmt.Sprintf(`{"count":%d}`, want), stateOf(t, e, name, carts[i], false), carts[i])
	}
	assert.JSONEq(t, `{}`, stateOf(t, e, name, "no-such-cart", false))

	// The same query, one-time, ends with one Result per cart in its
	// result stream.
	_, err := e.grpc.Create(ctxT(t), &projections.CreateReq{Options: &projections.CreateReq_Options{
		Mode: &projections.CreateReq_Options_Transient_{Transient: &projections.CreateReq_Options_Transient{Name: "carts-once"}}, Query: query,
	}})
	require.NoError(t, err)
	waitStatus(t, e, "carts-once", statusIs("Completed"))
	var counts []string
	for _, r := range resultEvents(t, e.c, "carts-once") {
		counts = append(counts, string(r.Event.Data))
	}
	assert.Equal(t, []string{`{"count":2}`, `{"count":1}`, `{"count":2}`, `{"count":1}`}, counts)
}

func TestProjectionPartitionByResults(t *testing.T) {
	e := startProjections(t, esdbtest.ProjectionsAll)
	a, b := "sale-"+uuid.NewString(), "sale-"+uuid.NewString()
	appendJSON(t, e.c, a, "Sold", `{"region":"north","n":1}`, `{"region":"south","n":2}`)
	appendJSON(t, e.c, b, "Sold", `{"region":"north","n":3}`)
	appendJSON(t, e.c, streamName(), "Other", `{}`)
	query := fmt.Sprintf(`fromStreams([%q, %q])
.partitionBy(function (e) { return e.body.region; })
.when({
	$init: function () { return { total: 0 }; },
	Sold: function (s, e) { return { total: s.total + e.body.n }; }
})
.transformBy(function (s) { return { total: s.total, doubled: s.total * 2 }; })
.outputState()`, a, b)
	name := "regions-" + uuid.NewString()
	require.NoError(t, e.pc.Create(ctxT(t), name, query, esdb.CreateProjectionOptions{}))
	waitStatus(t, e, name, processedAtLeast(3))
	assert.JSONEq(t, `{"total":4}`, stateOf(t, e, name, "north", false))
	assert.JSONEq(t, `{"total":4,"doubled":8}`, stateOf(t, e, name, "north", true))
	assert.JSONEq(t, `{"total":2,"doubled":4}`, stateOf(t, e, name, "south", true))

	north, err := readStream(t, e.c, "$projections-"+name+"-north-result", esdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	require.Len(t, north, 2)
	assert.JSONEq(t, `{"total":4,"doubled":8}`, string(north[1].Event.Data))
	// The projection's result stream links to every partition's results.
	links := resultEvents(t, e.c, name)
	require.Len(t, links, 3)
	assert.Equal(t, "$>", links[0].Event.EventType)
	assert.Equal(t, "0@$projections-"+name+"-north-result", string(links[0].Event.Data))
	// And its partition catalog names each partition once.
	catalog, err := readStream(t, e.c, "$projections-"+name+"-partitions", esdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	require.Len(t, catalog, 2)
	assert.Equal(t, "$partition", catalog[0].Event.EventType)
	assert.Equal(t, "north", string(catalog[0].Event.Data))
	assert.Equal(t, "south", string(catalog[1].Event.Data))
}

func TestProjectionTransientCompletes(t *testing.T) {
	e := startProjections(t, esdbtest.ProjectionsAll)
	appendJSON(t, e.c, streamName(), "Tick", `{}`, `{}`)
	name := "query-" + uuid.NewString()
	_, err := e.grpc.Create(ctxT(t), &projections.CreateReq{Options: &projections.CreateReq_Options{
		Mode:  &projections.CreateReq_Options_Transient_{Transient: &projections.CreateReq_Options_Transient{Name: name}},
		Query: `fromAll().when({ $init: function () { return { n: 0 }; }, Tick: function (s) { s.n++; } })`,
	}})
	require.NoError(t, err)
	st := waitStatus(t, e, name, statusIs("Completed"))
	assert.Equal(t, "Transient", st.Mode)
	assert.JSONEq(t, `{"n":2}`, stateOf(t, e, name, "", false))
	list := statistics(t, e, &projections.StatisticsReq_Options{Mode: &projections.StatisticsReq_Options_Continuous{Continuous: &shared.Empty{}}})
	for _, d := range list {
		assert.NotEqual(t, name, d.GetName(), "a transient projection is not continuous")
	}
}

func statistics(t *testing.T, e projEnv, o *projections.StatisticsReq_Options) []*projections.StatisticsResp_Details {
	t.Helper()
	s, err := e.grpc.Statistics(ctxT(t), &projections.StatisticsReq{Options: o})
	require.NoError(t, err)
	var out []*projections.StatisticsResp_Details
	for {
		r, err := s.Recv()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		out = append(out, r.GetDetails())
	}
}

// A query that never returns is interrupted: the projection faults and
// the server goes on serving.
func TestProjectionRunawayQueryFaults(t *testing.T) {
	e := startProjections(t, esdbtest.ProjectionsAll)
	appendJSON(t, e.c, streamName(), "Spin", `{}`)
	loop := "loop-" + uuid.NewString()
	require.NoError(t, e.pc.Create(ctxT(t), loop, `fromAll().when({ Spin: function () { while (true) {} } })`, esdb.CreateProjectionOptions{}))
	bad := "syntax-" + uuid.NewString()
	require.NoError(t, e.pc.Create(ctxT(t), bad, `fromAll().when({`, esdb.CreateProjectionOptions{}))
	throws := "throws-" + uuid.NewString()
	require.NoError(t, e.pc.Create(ctxT(t), throws, `fromAll().when({ $any: function (s, e) { throw new Error("boom"); } })`, esdb.CreateProjectionOptions{}))

	st := waitStatus(t, e, bad, statusIs("Faulted"))
	assert.NotEmpty(t, st.StateReason)
	st = waitStatus(t, e, throws, statusIs("Faulted"))
	assert.Contains(t, st.StateReason, "boom")
	st = waitStatus(t, e, loop, statusIs("Faulted"))
	assert.Contains(t, st.StateReason, "did not finish in time")

	// Stopping a projection inside a looping handler does not wait for
	// the handler's time limit, and the server goes on serving.
	require.NoError(t, e.pc.Enable(ctxT(t), loop, esdb.GenericProjectionOptions{}))
	waitStatus(t, e, loop, statusIs("Running"))
	start := time.Now()
	require.NoError(t, e.pc.Disable(ctxT(t), loop, esdb.GenericProjectionOptions{}))
	assert.Less(t, time.Since(start), 900*time.Millisecond)
	waitStatus(t, e, loop, statusIs("Stopped"))
	appendJSON(t, e.c, streamName(), "After", `{}`)
}

func TestProjectionsSystemModeRunsOnlySystemProjections(t *testing.T) {
	e := startProjections(t, esdbtest.ProjectionsSystem)
	appendJSON(t, e.c, "cart-"+uuid.NewString(), "ItemAdded", `{}`)
	name := "user-" + uuid.NewString()
	require.NoError(t, e.pc.Create(ctxT(t), name, countQuery, esdb.CreateProjectionOptions{}))
	waitStatus(t, e, "$by_category", processedAtLeast(1))
	st, err := e.pc.GetStatus(ctxT(t), name, esdb.GenericProjectionOptions{})
	require.NoError(t, err)
	assert.Equal(t, "Stopped", st.Status)
	assert.Zero(t, st.EventsProcessedAfterRestart)
}

func TestSystemProjections(t *testing.T) {
	e := startProjections(t, esdbtest.ProjectionsAll)
	ctx := ctxT(t)
	all, err := e.pc.ListAll(ctx, esdb.GenericProjectionOptions{})
	require.NoError(t, err)
	var names []string
	for _, p := range all {
		names = append(names, p.Name)
		assert.Equal(t, "Running", p.Status, p.Name)
		assert.Equal(t, "Continuous", p.Mode, p.Name)
	}
	assert.Equal(t, []string{"$streams", "$stream_by_category", "$by_category", "$by_event_type", "$by_correlation_id"}, names)

	cat := "cart" + strings.ReplaceAll(uuid.NewString(), "-", "")
	s1, s2 := cat+"-1", cat+"-2"
	typ := "Added" + strings.ReplaceAll(uuid.NewString(), "-", "")
	appendJSON(t, e.c, s1, typ, `{}`, `{}`)
	appendJSON(t, e.c, s2, typ, `{}`)
	for _, p := range names {
		waitStatus(t, e, p, processedAtLeast(3))
	}

	linkData := func(stream string, n int) []string {
		t.Helper()
		var got []*esdb.ResolvedEvent
		require.Eventually(t, func() bool {
			got, _ = readStream(t, e.c, stream, esdb.ReadStreamOptions{}, 100)
			return len(got) >= n
		}, 15*time.Second, 5*time.Millisecond, stream)
		var out []string
		for _, g := range got {
			out = append(out, g.Event.EventType+" "+string(g.Event.Data))
		}
		return out
	}
	assert.Equal(t, []string{"$> 0@" + s1, "$> 1@" + s1, "$> 0@" + s2}, linkData("$ce-"+cat, 3))
	assert.Equal(t, []string{"$> 0@" + s1, "$> 1@" + s1, "$> 0@" + s2}, linkData("$et-"+typ, 3))
	assert.Equal(t, []string{"$@ " + s1, "$@ " + s2}, linkData("$category-"+cat, 2))
	corr := uuid.NewString()
	withCorr := ev("Correlated", `{}`)
	withCorr.Metadata = []byte(fmt.Sprintf(`{"$correlationId":%q}`, corr))
	_, err = e.c.AppendToStream(ctx, s2, esdb.AppendToStreamOptions{}, withCorr)
	require.NoError(t, err)
	bc := linkData("$bc-"+corr, 1)
	assert.Equal(t, []string{"$> 1@" + s2}, bc)
	streamsLinks := linkData("$streams", 2)
	assert.Contains(t, streamsLinks, "$> 0@"+s1)
	assert.Contains(t, streamsLinks, "$> 0@"+s2)
	assert.NotContains(t, streamsLinks, "$> 1@"+s1)

	// A user projection reading a category stream sees the linked events.
	name := "per-cat-" + uuid.NewString()
	q := fmt.Sprintf(`fromStream("$ce-%s").when({ $init: function () { return { streams: [] }; },
	$any: function (s, e) { s.streams.push(e.streamId + "/" + e.sequenceNumber); } })`, cat)
	require.NoError(t, e.pc.Create(ctx, name, q, esdb.CreateProjectionOptions{}))
	waitStatus(t, e, name, processedAtLeast(4))
	assert.JSONEq(t, fmt.Sprintf(`{"streams":["%s/0","%s/1","%s/0","%s/1"]}`, s1, s1, s2, s2), stateOf(t, e, name, "", false))
}

func TestProjectionRestartSubsystemKeepsProgress(t *testing.T) {
	e := startProjections(t, esdbtest.ProjectionsAll)
	appendJSON(t, e.c, streamName(), "TestEvent", `{}`, `{}`)
	name := "restart-" + uuid.NewString()
	require.NoError(t, e.pc.Create(ctxT(t), name, countQuery, esdb.CreateProjectionOptions{}))
	waitStatus(t, e, name, processedAtLeast(2))
	require.NoError(t, e.pc.RestartSubsystem(ctxT(t), esdb.GenericProjectionOptions{}))
	appendJSON(t, e.c, streamName(), "TestEvent", `{}`)
	waitStatus(t, e, name, processedAtLeast(3))
	assert.JSONEq(t, `{"foo":{"baz":{"count":3}}}`, stateOf(t, e, name, "", false))
	waitStatus(t, e, name, statusIs("Running"))
}

func TestProjectionFromCategoryAndStreams(t *testing.T) {
	e := startProjections(t, esdbtest.ProjectionsAll)
	cat := "acct" + strings.ReplaceAll(uuid.NewString(), "-", "")
	appendJSON(t, e.c, cat+"-1", "Deposited", `{"amount":10}`, `{"amount":5}`)
	appendJSON(t, e.c, cat+"-2", "Deposited", `{"amount":1}`)
	appendJSON(t, e.c, "other-1", "Deposited", `{"amount":1000}`)
	name := "balance-" + uuid.NewString()
	q := fmt.Sprintf(`fromCategory(%q).when({
	$init: function () { return { sum: 0, types: {} }; },
	$any: function (s, e) { s.sum += e.body.amount; s.types[e.eventType] = true; }
})`, cat)
	require.NoError(t, e.pc.Create(ctxT(t), name, q, esdb.CreateProjectionOptions{}))
	waitStatus(t, e, name, processedAtLeast(3))
	assert.JSONEq(t, `{"sum":16,"types":{"Deposited":true}}`, stateOf(t, e, name, "", false))
	appendJSON(t, e.c, cat+"-3", "Deposited", `{"amount":100}`)
	waitStatus(t, e, name, processedAtLeast(4))
	assert.JSONEq(t, `{"sum":116,"types":{"Deposited":true}}`, stateOf(t, e, name, "", false))
}

// With the log on disk, a restarted server's system projections go on
// after the last event they handled instead of linking everything again.
func TestSystemProjectionsResumeAfterRestart(t *testing.T) {
	dir := t.TempDir()
	srv, err := esdbtest.NewServer(esdbtest.WithDataDir(dir), esdbtest.WithProjections(esdbtest.ProjectionsAll))
	require.NoError(t, err)
	c := newClient(t, srv)
	cat := "restart" + strings.ReplaceAll(uuid.NewString(), "-", "")
	appendJSON(t, c, cat+"-1", "Happened", `{}`, `{}`)
	require.Eventually(t, func() bool {
		got, _ := readStream(t, c, "$ce-"+cat, esdb.ReadStreamOptions{}, 100)
		return len(got) == 2
	}, 15*time.Second, 5*time.Millisecond)
	require.NoError(t, c.Close())
	require.NoError(t, srv.Close())

	e := startProjectionsOn(t, dir)
	appendJSON(t, e.c, cat+"-2", "Happened", `{}`)
	waitStatus(t, e, "$by_category", processedAtLeast(1))
	var got []*esdb.ResolvedEvent
	require.Eventually(t, func() bool {
		got, _ = readStream(t, e.c, "$ce-"+cat, esdb.ReadStreamOptions{}, 100)
		return len(got) >= 3
	}, 15*time.Second, 5*time.Millisecond)
	// Let the projection reach the end of the log, then count again.
	waitStatus(t, e, "$by_category", func(s *esdb.ProjectionStatus) bool { return s.Progress == 100 })
	got, err = readStream(t, e.c, "$ce-"+cat, esdb.ReadStreamOptions{}, 100)
	require.NoError(t, err)
	var data []string
	for _, g := range got {
		data = append(data, string(g.Event.Data))
	}
	assert.Equal(t, []string{"0@" + cat + "-1", "1@" + cat + "-1", "0@" + cat + "-2"}, data)
}

// An unpartitioned projection has its $init state before any event it
// handles; events of other types do not reach it.
func TestProjectionInitialState(t *testing.T) {
	e := startProjections(t, esdbtest.ProjectionsAll)
	appendJSON(t, e.c, streamName(), "Unrelated", `{}`)
	name := "init-" + uuid.NewString()
	require.NoError(t, e.pc.Create(ctxT(t), name, `fromAll().when({
	$init: function () { return { seen: 0, started: true }; },
	Wanted: function (s) { s.seen++; }
}).outputState()`, esdb.CreateProjectionOptions{}))
	waitStatus(t, e, name, func(s *esdb.ProjectionStatus) bool { return s.Progress == 100 })
	assert.JSONEq(t, `{"seen":0,"started":true}`, stateOf(t, e, name, "", false))
	_, err := readStream(t, e.c, "$projections-"+name+"-result", esdb.ReadStreamOptions{}, 10)
	assert.Equal(t, esdb.ErrorCodeResourceNotFound, errCode(err), "no result before an event is handled")

	// No name asks for every projection's statistics.
	list := statistics(t, e, &projections.StatisticsReq_Options{Mode: &projections.StatisticsReq_Options_Name{}})
	assert.Len(t, list, 6)
}

// BenchmarkProjectionCatchUp measures a counting projection catching up
// on 1000 events per iteration, with the system projections running.
func BenchmarkProjectionCatchUp(b *testing.B) {
	srv := esdbtest.Start(b, esdbtest.WithProjections(esdbtest.ProjectionsAll))
	c := newClient(b, srv)
	pc := esdb.NewProjectionClientFromExistingClient(c)
	ctx := context.Background()
	events := make([]esdb.EventData, 1000)
	for i := range events {
		events[i] = ev("Counted", `{"n":1}`)
	}
	_, err := c.AppendToStream(ctx, streamName(), esdb.AppendToStreamOptions{}, events...)
	require.NoError(b, err)
	query := `fromAll().when({ $init: function () { return { n: 0 }; }, Counted: function (s, e) { s.n += e.body.n; } })`
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("bench-%d", i)
		require.NoError(b, pc.Create(ctx, name, query, esdb.CreateProjectionOptions{}))
		for {
			st, err := pc.GetStatus(ctx, name, esdb.GenericProjectionOptions{})
			require.NoError(b, err)
			if st.EventsProcessedAfterRestart >= int64(len(events)) && st.Progress == 100 {
				break
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
}

// A continuous projection on a data directory survives a restart: its
// definition, version and state come back from the log, it goes on from
// its checkpoint without writing its results again, and a deleted
// projection stays deleted.
func TestProjectionsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	srv, err := esdbtest.NewServer(esdbtest.WithDataDir(dir), esdbtest.WithProjections(esdbtest.ProjectionsAll))
	require.NoError(t, err)
	e := projEnv{srv: srv, c: newClient(t, srv)}
	e.pc = esdb.NewProjectionClientFromExistingClient(e.c)
	src := "tally-" + uuid.NewString()
	appendJSON(t, e.c, src, "Sold", `{"region":"north","n":1}`, `{"region":"south","n":2}`, `{"region":"north","n":3}`)
	query := fmt.Sprintf(`fromStream(%q)
.partitionBy(function (e) { return e.body.region; })
.when({ $init: function () { return { total: 0 }; }, Sold: function (s, e) { s.total += e.body.n; } })
.outputState()`, src)
	require.NoError(t, e.pc.Create(ctxT(t), "tally", query, esdb.CreateProjectionOptions{}))
	require.NoError(t, e.pc.Create(ctxT(t), "gone", countQuery, esdb.CreateProjectionOptions{}))
	require.NoError(t, e.pc.Update(ctxT(t), "tally", query, esdb.UpdateProjectionOptions{}))
	waitStatus(t, e, "tally", processedAtLeast(3))
	waitStatus(t, e, "gone", processedAtLeast(3))
	require.NoError(t, e.pc.Disable(ctxT(t), "gone", esdb.GenericProjectionOptions{}))
	require.NoError(t, e.pc.Delete(ctxT(t), "gone", esdb.DeleteProjectionOptions{}))
	// The checkpoint follows the last batch.
	require.Eventually(t, func() bool {
		got, _ := readStream(t, e.c, "$projections-tally-checkpoint", esdb.ReadStreamOptions{}, 100)
		return len(got) > 0
	}, 15*time.Second, 5*time.Millisecond)
	before := resultEvents(t, e.c, "tally")
	require.NoError(t, e.c.Close())
	require.NoError(t, srv.Close())

	e = startProjectionsOn(t, dir)
	st := waitStatus(t, e, "tally", statusIs("Running"))
	assert.Equal(t, int64(1), st.Version)
	_, err = e.pc.GetStatus(ctxT(t), "gone", esdb.GenericProjectionOptions{})
	assert.Equal(t, codes.NotFound, grpcCode(err))
	require.Eventually(t, func() bool {
		return stateOf(t, e, "tally", "north", false) == `{"total":4}`
	}, 15*time.Second, 5*time.Millisecond)

	appendJSON(t, e.c, src, "Sold", `{"region":"south","n":10}`)
	st = waitStatus(t, e, "tally", processedAtLeast(1))
	assert.Equal(t, int64(1), st.EventsProcessedAfterRestart, "the events before the restart are not counted again")
	assert.JSONEq(t, `{"total":12}`, stateOf(t, e, "tally", "south", false))
	after := resultEvents(t, e.c, "tally")
	assert.Len(t, after, len(before)+1, "one more result, none written again")
}

func startProjectionsOn(t *testing.T, dir string) projEnv {
	t.Helper()
	srv := esdbtest.Start(t, esdbtest.WithDataDir(dir), esdbtest.WithProjections(esdbtest.ProjectionsAll))
	e := projEnv{srv: srv, c: newClient(t, srv)}
	e.pc = esdb.NewProjectionClientFromExistingClient(e.c)
	return e
}
