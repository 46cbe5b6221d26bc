package grpcapp_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/example/orders"
	"github.com/eventsourcing-go/eventsourcing/grpcapp"
	"github.com/eventsourcing-go/eventsourcing/grpcapp/pb"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// typedApp has commands with parameters of several kinds, for argument
// errors beyond UUIDs.
type typedApp struct{ *eventsourcing.Application }

// Renaming is a struct parameter.
type Renaming struct {
	ID   uuid.UUID `json:"id"`
	Name string    `json:"name"`
}

func (typedApp) Add(_ context.Context, a, b int) (int, error)            { return a + b, nil }
func (typedApp) Rename(_ context.Context, r Renaming) (string, error)    { return r.Name, nil }
func (typedApp) CountTags(_ context.Context, tags []string) (int, error) { return len(tags), nil }
func (typedApp) Anything(_ context.Context, v any) (string, error)       { return fmt.Sprintf("%T", v), nil }
func (typedApp) Limited(_ context.Context, n int8) (int8, error)         { return n, nil }
func (typedApp) Mapped(_ context.Context, m map[string]int) (int, error) { return len(m), nil }

// nested returns depth arrays, one inside the other.
func nested(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }

// Bad input of every kind, sent over gRPC as any client could send it: each
// is answered with a status whose code and message say what is wrong, and
// the servers serve normally afterwards.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	ordersServer := startServer(t, newOrders(t))
	base, err := eventsourcing.NewApplication(ctx, eventsourcing.Options{Name: "Typed", Lookup: eventsourcing.NoEnvironment})
	require.NoError(t, err)
	t.Cleanup(func() { base.Close() })
	typedServer := startServer(t, typedApp{base})

	ordersConn := connect(t, ordersServer.Addr())
	typedConn := connect(t, typedServer.Addr())
	id, err := grpcapp.Call[uuid.UUID](ctx, ordersConn.App(), "CreateNewOrder")
	require.NoError(t, err)
	ordersRPC, typedRPC := pb.NewApplicationClient(ordersConn.Conn()), pb.NewApplicationClient(typedConn.Conn())

	many := make([]string, 40000)
	for i := range many {
		many[i] = fmt.Sprintf("topic-%d", i)
	}
	huge := strings.Repeat("x", grpcapp.DefaultMaxRequestSize+1)

	call := func(c pb.ApplicationClient, method, args string) func() error {
		return func() error {
			_, err := c.Call(ctx, &pb.CallRequest{Method: method, Args: []byte(args)})
			return err
		}
	}
	sel := func(req *pb.SelectRequest) func() error {
		return func() error {
			_, err := ordersRPC.SelectNotifications(ctx, req)
			return err
		}
	}
	subscribe := func(req *pb.SubscribeRequest) func() error {
		return func() error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			stream, err := ordersRPC.SubscribeNotifications(ctx, req)
			if err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		}
	}

	for _, tt := range []struct {
		name string
		do   func() error
		code codes.Code
		want []string // in the status message
	}{
		{"unknown method", call(ordersRPC, "NoSuchMethod", "[]"), codes.Unimplemented, []string{`no method "NoSuchMethod"`}},
		{"framework method", call(ordersRPC, "Save", "[]"), codes.Unimplemented, []string{`no method "Save"`}},
		{"unexported method", call(ordersRPC, "getOrder", "[]"), codes.Unimplemented, []string{`no method "getOrder"`}},
		{"empty method", call(ordersRPC, "", "[]"), codes.Unimplemented, []string{`no method ""`}},
		{"method name not UTF-8", call(ordersRPC, "Get\xffOrder", "[]"), codes.Internal, []string{"invalid UTF-8"}},
		{"too few arguments", call(ordersRPC, "GetOrder", "[]"), codes.InvalidArgument, []string{"GetOrder takes 1 argument(s) [uuid.UUID], got 0"}},
		{"no arguments at all", call(ordersRPC, "GetOrder", ""), codes.InvalidArgument, []string{"takes 1 argument(s)", "got 0"}},
		{"too many arguments", call(ordersRPC, "GetOrder", fmt.Sprintf("[%q, %q]", id, id)), codes.InvalidArgument, []string{"takes 1 argument(s)", "got 2"}},
		{"arguments to a method that takes none", call(ordersRPC, "CreateNewOrder", "[1]"), codes.InvalidArgument, []string{"CreateNewOrder takes 0 argument(s)", "got 1"}},
		{"number for a UUID", call(ordersRPC, "GetOrder", "[42]"), codes.InvalidArgument, []string{"GetOrder argument 1: want uuid.UUID, got number 42"}},
		{"invalid UUID", call(ordersRPC, "GetOrder", `["not-a-uuid"]`), codes.InvalidArgument, []string{`want uuid.UUID, got string "not-a-uuid"`, "invalid UUID"}},
		{"UUID too long", call(ordersRPC, "GetOrder", fmt.Sprintf("[%q]", id.String()+"0")), codes.InvalidArgument, []string{"want uuid.UUID", "invalid UUID"}},
		{"tagged UUID with bad data", call(ordersRPC, "GetOrder", `[{"_type_":"uuid_hex","_data_":"zz"}]`), codes.InvalidArgument, []string{"want uuid.UUID, got object"}},
		{"object for a UUID", call(ordersRPC, "GetOrder", `[{"id":1}]`), codes.InvalidArgument, []string{"want uuid.UUID, got object"}},
		{"arguments not an array", call(ordersRPC, "GetOrder", fmt.Sprintf(`{"id":%q}`, id)), codes.InvalidArgument, []string{"arguments must be a JSON array"}},
		{"malformed JSON", call(ordersRPC, "GetOrder", `["unterminated`), codes.InvalidArgument, []string{"arguments must be a JSON array"}},
		{"not JSON", call(ordersRPC, "GetOrder", `GetOrder 42`), codes.InvalidArgument, []string{"arguments must be a JSON array"}},
		{"trailing garbage", call(ordersRPC, "GetOrder", fmt.Sprintf("[%q] x", id)), codes.InvalidArgument, []string{"arguments must be a JSON array"}},
		{"deeply nested arguments", call(ordersRPC, "GetOrder", nested(100000)), codes.InvalidArgument, []string{"GetOrder: arguments nested more than 1000 levels deep"}},
		{"deeply nested argument", call(ordersRPC, "GetOrder", "["+nested(100000)+"]"), codes.InvalidArgument, []string{"nested more than 1000 levels"}},
		{"deeply nested into any", call(typedRPC, "Anything", "["+nested(100000)+"]"), codes.InvalidArgument, []string{"Anything: arguments nested more than 1000 levels"}},
		{"deeply nested into a struct", call(typedRPC, "Rename", `[{"name":"x","extra":`+nested(100000)+`}]`), codes.InvalidArgument, []string{"Rename: arguments nested more than 1000 levels"}},
		{"nested as deep as allowed", call(typedRPC, "Anything", "["+nested(grpcapp.MaxArgumentDepth-1)+"]"), codes.OK, nil},
		{"brackets in strings do not nest", call(typedRPC, "CountTags", `[["`+strings.Repeat("[", 5000)+`"]]`), codes.OK, nil},
		{"string for an int", call(typedRPC, "Add", `["one", 2]`), codes.InvalidArgument, []string{`Add argument 1: want int, got string "one"`}},
		{"float for an int", call(typedRPC, "Add", `[1, 2.5]`), codes.InvalidArgument, []string{"Add argument 2: want int, got number 2.5"}},
		{"int overflow", call(typedRPC, "Add", `[1, 1e400]`), codes.InvalidArgument, []string{"Add argument 2: want int"}},
		{"out of range for int8", call(typedRPC, "Limited", `[300]`), codes.InvalidArgument, []string{"Limited argument 1: want int8, got number 300"}},
		{"array for a struct", call(typedRPC, "Rename", `[[1,2]]`), codes.InvalidArgument, []string{"Rename argument 1: want grpcapp_test.Renaming, got array"}},
		{"wrong field type", call(typedRPC, "Rename", `[{"name": 7}]`), codes.InvalidArgument, []string{"Rename argument 1: want grpcapp_test.Renaming"}},
		{"invalid UUID in a struct", call(typedRPC, "Rename", `[{"id": "nope", "name": "x"}]`), codes.InvalidArgument, []string{"Rename argument 1", "invalid UUID"}},
		{"object for a slice", call(typedRPC, "CountTags", `[{"a":1}]`), codes.InvalidArgument, []string{"CountTags argument 1: want []string, got object"}},
		{"numbers for strings", call(typedRPC, "CountTags", `[[1,2]]`), codes.InvalidArgument, []string{"CountTags argument 1: want []string"}},
		{"array for a map", call(typedRPC, "Mapped", `[[1]]`), codes.InvalidArgument, []string{"Mapped argument 1: want map[string]int, got array"}},
		{"oversized request", call(ordersRPC, "GetOrder", fmt.Sprintf("[%q]", huge)), codes.ResourceExhausted, []string{"larger than max"}},
		{"oversized topic list", sel(&pb.SelectRequest{Topics: []string{huge}}), codes.ResourceExhausted, []string{"larger than max"}},
		{"huge topic list in a select", sel(&pb.SelectRequest{Limit: 10, Topics: many}), codes.InvalidArgument, []string{"40000 topics", "at most 1000"}},
		{"huge topic list in a subscription", subscribe(&pb.SubscribeRequest{Topics: many}), codes.InvalidArgument, []string{"40000 topics", "at most 1000"}},
		{"negative limit", sel(&pb.SelectRequest{Limit: -1}), codes.InvalidArgument, []string{"limit -1 is not in 0..1000"}},
		{"limit above the page", sel(&pb.SelectRequest{Limit: 1001}), codes.InvalidArgument, []string{"limit 1001 is not in 0..1000"}},
		{"huge limit", sel(&pb.SelectRequest{Limit: math.MaxInt32}), codes.InvalidArgument, []string{fmt.Sprintf("limit %d is not in 0..1000", math.MaxInt32)}},
		{"most negative limit", sel(&pb.SelectRequest{Limit: math.MinInt32}), codes.InvalidArgument, []string{fmt.Sprintf("limit %d", math.MinInt32)}},
		{"negative batch", subscribe(&pb.SubscribeRequest{MaxBatch: -5}), codes.InvalidArgument, []string{"max_batch -5 is negative"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if tt.code == codes.OK {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			st, ok := status.FromError(err)
			require.True(t, ok, "a status, not %v", err)
			assert.Equal(t, tt.code, st.Code(), st.Message())
			for _, w := range tt.want {
				assert.Contains(t, st.Message(), w)
			}
			assert.Less(t, len(st.Message()), 2000, "the message does not echo the input back")
		})
	}

	// The typed client refuses a limit that does not fit the protocol
	// rather than sending another one.
	_, err = ordersConn.Log().Select(ctx, recorder.NotificationQuery{Limit: 1 << 33})
	assert.ErrorIs(t, err, eventsourcing.ErrArgument)

	// Both servers serve normally afterwards.
	order, err := grpcapp.Call[orders.OrderView](ctx, ordersConn.App(), "GetOrder", id)
	require.NoError(t, err)
	assert.Equal(t, id, order.ID)
	ns, err := ordersConn.Log().Select(ctx, recorder.NotificationQuery{Limit: 10})
	require.NoError(t, err)
	assert.Len(t, ns, 1)
	sum, err := grpcapp.Call[int](ctx, typedConn.App(), "Add", 2, 3)
	require.NoError(t, err)
	assert.Equal(t, 5, sum)
	stream, err := ordersRPC.SubscribeNotifications(ctx, &pb.SubscribeRequest{Topics: []string{ns[0].Topic}})
	require.NoError(t, err)
	batch, err := stream.Recv()
	require.NoError(t, err)
	assert.Len(t, batch.GetNotifications(), 1)
}
