package esdbtest_test

import (
	"errors"
	"io"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// excludeSystemEvents is the event-type filter clients send by default to
// leave out system events and persistent subscription configuration. Its
// negative lookahead is .NET (and Perl) syntax, not RE2.
const excludeSystemEvents = `^(?!(\$.+$|PersistentConfig\d+$))`

// filterTypes are appended by appendFilterTypes; the comments say whether
// a real node lets each through excludeSystemEvents.
var filterTypes = []string{
	"OrderPlaced",         // yes
	"$custom",             // no: a system type
	"$",                   // yes: "\$.+" needs a character after the $
	"PersistentConfig7",   // no
	"PersistentConfig7x",  // yes: not digits to the end
	"PersistentConfig٣",   // no: .NET's \d matches every Unicode digit
	"NotPersistentConfig", // yes
}

var wantFilterTypes = []string{"OrderPlaced", "$", "PersistentConfig7x", "NotPersistentConfig"}

func appendFilterTypes(t *testing.T, c *esdb.Client) string {
	t.Helper()
	name := "filters-" + streamName()
	var batch []esdb.EventData
	for _, typ := range filterTypes {
		batch = append(batch, ev(typ, "{}"))
	}
	_, err := c.AppendToStream(ctxT(t), name, esdb.AppendToStreamOptions{}, batch...)
	require.NoError(t, err)
	return name
}

// readAllFiltered reads $all forwards through the protocol, as clients
// with a filtered read do (the Go client has none), and returns the event
// types of the stream.
func readAllFiltered(t *testing.T, conn *grpc.ClientConn, stream string, f *streams.ReadReq_Options_FilterOptions) ([]string, error) {
	t.Helper()
	rs, err := streams.NewStreamsClient(conn).Read(ctxT(t), &streams.ReadReq{Options: &streams.ReadReq_Options{
		StreamOption: &streams.ReadReq_Options_All{All: &streams.ReadReq_Options_AllOptions{
			AllOption: &streams.ReadReq_Options_AllOptions_Start{Start: &shared.Empty{}}}},
		CountOption:  &streams.ReadReq_Options_Count{Count: 10_000},
		FilterOption: &streams.ReadReq_Options_Filter{Filter: f},
		UuidOption:   &streams.ReadReq_Options_UUIDOption{Content: &streams.ReadReq_Options_UUIDOption_String_{String_: &shared.Empty{}}},
	}})
	require.NoError(t, err)
	var types []string
	for {
		m, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return types, nil
		}
		if err != nil {
			return types, err
		}
		if e := m.GetEvent().GetEvent(); e != nil && string(e.StreamIdentifier.StreamName) == stream {
			types = append(types, e.Metadata["type"])
		}
	}
}

func typeFilter(regex string, prefixes ...string) *streams.ReadReq_Options_FilterOptions {
	return &streams.ReadReq_Options_FilterOptions{
		Filter: &streams.ReadReq_Options_FilterOptions_EventType{EventType: &streams.ReadReq_Options_FilterOptions_Expression{
			Regex: regex, Prefix: prefixes}},
		Window:                       &streams.ReadReq_Options_FilterOptions_Count{Count: &shared.Empty{}},
		CheckpointIntervalMultiplier: 1,
	}
}

func TestFilterDotNetRegexReadAll(t *testing.T) {
	srv, c := startClient(t)
	name := appendFilterTypes(t, c)
	conn := dialRaw(t, srv)

	got, err := readAllFiltered(t, conn, name, typeFilter(excludeSystemEvents))
	require.NoError(t, err)
	assert.Equal(t, wantFilterTypes, got)

	// A regex is searched for anywhere in the name, and wins over prefixes
	// sent with it.
	got, err = readAllFiltered(t, conn, name, typeFilter(`Config7`, "Order"))
	require.NoError(t, err)
	assert.Equal(t, []string{"PersistentConfig7", "PersistentConfig7x"}, got)
	got, err = readAllFiltered(t, conn, name, typeFilter("", "Order", "$"))
	require.NoError(t, err)
	assert.Equal(t, []string{"OrderPlaced", "$custom", "$"}, got)
}

func TestFilterDotNetRegexSubscriptions(t *testing.T) {
	_, c := startClient(t)
	name := appendFilterTypes(t, c)
	ctx := ctxT(t)
	filter := &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: excludeSystemEvents}

	sub, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: filter})
	require.NoError(t, err)
	defer sub.Close()
	hist, _ := untilCaughtUp(t, sub)
	var got []string
	for _, e := range hist {
		if e.Event.StreamID == name {
			got = append(got, e.Event.EventType)
		}
	}
	assert.Equal(t, wantFilterTypes, got)

	require.NoError(t, c.CreatePersistentSubscriptionToAll(ctx, "filtered", esdb.PersistentAllSubscriptionOptions{
		StartFrom: esdb.Start{}, Filter: filter}))
	ps, err := c.SubscribeToPersistentSubscriptionToAll(ctx, "filtered", esdb.SubscribeToPersistentSubscriptionOptions{})
	require.NoError(t, err)
	defer ps.Close()
	got = nil
	for len(got) < len(wantFilterTypes) {
		e := psNext(t, ps)
		require.NoError(t, ps.Ack(e.Event))
		typ := e.Event.OriginalEvent().EventType
		assert.NotRegexp(t, `^\$.|^PersistentConfig1$`, typ, "system events are left out")
		if e.Event.OriginalEvent().StreamID == name {
			got = append(got, typ)
		}
	}
	assert.Equal(t, wantFilterTypes, got)
}

func TestFilterInvalidRegex(t *testing.T) {
	srv, c := startClient(t)
	ctx := ctxT(t)
	const bad = `(unclosed`
	_, err := readAllFiltered(t, dialRaw(t, srv), "", typeFilter(bad))
	assert.Equal(t, codes.Unknown, status.Code(err), "a real node throws in its handler: %v", err)

	filter := &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Regex: bad}
	_, err = c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: filter})
	assert.Equal(t, esdb.ErrorCodeUnknown, errCode(err))
	err = c.CreatePersistentSubscriptionToAll(ctx, "bad", esdb.PersistentAllSubscriptionOptions{Filter: filter})
	assert.Equal(t, esdb.ErrorCodeUnknown, errCode(err))
}

// TestFilterCatastrophicBacktracking reads with a pattern that backtracks
// exponentially on one event type: the match gives up, counting as no
// match, and the read completes.
func TestFilterCatastrophicBacktracking(t *testing.T) {
	srv, c := startClient(t)
	name := "filters-" + streamName()
	_, err := c.AppendToStream(ctxT(t), name, esdb.AppendToStreamOptions{},
		ev("aaaa", "{}"), ev("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", "{}"))
	require.NoError(t, err)
	got, err := readAllFiltered(t, dialRaw(t, srv), name, typeFilter(`^(a|aa)+$`))
	require.NoError(t, err)
	assert.Equal(t, []string{"aaaa"}, got)
}
