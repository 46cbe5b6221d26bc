package esdbtest_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
)

// syncBuffer is a log sink for a server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records decodes the JSON log lines with the given message.
func (b *syncBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range bytes.Lines(b.buf.Bytes()) {
		var r map[string]any
		require.NoError(t, json.Unmarshal(line, &r))
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

func TestDebugLogNamesEveryCall(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, c := startClient(t, esdbtest.WithLogger(logger))
	ctx := ctxT(t)
	name := streamName()
	_, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, evs(2)...)
	require.NoError(t, err)
	_, err = c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, evs(1)...)
	require.Error(t, err)
	_, err = readStream(t, c, name, esdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	missing := streamName()
	_, err = c.DeleteStream(ctx, missing, esdb.DeleteStreamOptions{ExpectedRevision: esdb.StreamExists{}})
	require.Error(t, err)
	batchAppend(t, openBatch(t, dialRaw(t, srv)), name, esdb.Revision(5), evs(1)...)

	type call struct{ method, stream, result, outcome string }
	var calls []call
	for _, r := range buf.records(t, "esdbtest: call") {
		str := func(k string) string { s, _ := r[k].(string); return s }
		calls = append(calls, call{str("method"), str("stream"), str("result"), str("outcome")})
		assert.Contains(t, r, "took")
	}
	assert.Subset(t, calls, []call{
		{"/event_store.client.streams.Streams/Append", name, "OK", ""},
		{"/event_store.client.streams.Streams/Append", name, "OK", "WrongExpectedVersion"},
		{"/event_store.client.streams.Streams/Read", name, "OK", ""},
		{"/event_store.client.streams.Streams/Delete", missing, "FailedPrecondition", ""},
		{"/event_store.client.server_features.ServerFeatures/GetSupportedMethods", "", "OK", ""},
	})
	writes := buf.records(t, "esdbtest: batch append write")
	require.Len(t, writes, 1)
	assert.Equal(t, name, writes[0]["stream"])
	assert.Equal(t, "WrongExpectedVersion", writes[0]["result"])
}

// grpcOverH2C makes one unary gRPC call by hand, so that the request can
// carry a deadline (grpc-timeout) that has passed by the time it arrives,
// which a gRPC client never sends. It returns the grpc-status.
func grpcOverH2C(t *testing.T, addr, method string, req proto.Message, timeout string) string {
	t.Helper()
	body, err := proto.Marshal(req)
	require.NoError(t, err)
	frame := make([]byte, 5, 5+len(body))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(body)))
	frame = append(frame, body...)

	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	t.Cleanup(client.CloseIdleConnections)
	hreq, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, "http://"+addr+method, bytes.NewReader(frame))
	require.NoError(t, err)
	hreq.Header.Set("Content-Type", "application/grpc")
	hreq.Header.Set("TE", "trailers")
	hreq.Header.Set("Grpc-Timeout", timeout)
	resp, err := client.Do(hreq)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	if s := resp.Header.Get("Grpc-Status"); s != "" {
		return s // a trailers-only answer
	}
	return resp.Trailer.Get("Grpc-Status")
}

func TestExpiredDeadlineOnArrival(t *testing.T) {
	srv, c := startClient(t)
	name := streamName()
	_, err := c.AppendToStream(ctxT(t), name, esdb.AppendToStreamOptions{}, evs(1)...)
	require.NoError(t, err)
	del := &streams.DeleteReq{Options: &streams.DeleteReq_Options{
		StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte(name)},
		ExpectedStreamRevision: &streams.DeleteReq_Options_Any{Any: &shared.Empty{}},
	}}
	read := &streams.ReadReq{Options: &streams.ReadReq_Options{
		StreamOption: &streams.ReadReq_Options_Stream{Stream: &streams.ReadReq_Options_StreamOptions{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(name)},
			RevisionOption:   &streams.ReadReq_Options_StreamOptions_Start{Start: &shared.Empty{}},
		}},
		CountOption:  &streams.ReadReq_Options_Count{Count: 10},
		UuidOption:   &streams.ReadReq_Options_UUIDOption{Content: &streams.ReadReq_Options_UUIDOption_String_{String_: &shared.Empty{}}},
		FilterOption: &streams.ReadReq_Options_NoFilter{NoFilter: &shared.Empty{}},
	}}
	addr := srv.Addr().String()
	const deadlineExceeded = "4"
	assert.Equal(t, deadlineExceeded, grpcOverH2C(t, addr, "/event_store.client.streams.Streams/Delete", del, "1n"))
	assert.Equal(t, deadlineExceeded, grpcOverH2C(t, addr, "/event_store.client.streams.Streams/Read", read, "1n"))

	got, err := readStream(t, c, name, esdb.ReadStreamOptions{}, 10)
	require.NoError(t, err, "the expired delete did not run")
	assert.Len(t, got, 1)

	// The same calls with time to spare run.
	assert.Equal(t, "0", grpcOverH2C(t, addr, "/event_store.client.streams.Streams/Read", read, "20S"))
	assert.Equal(t, "0", grpcOverH2C(t, addr, "/event_store.client.streams.Streams/Delete", del, "20S"))
}
