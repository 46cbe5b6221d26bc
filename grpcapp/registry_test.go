package grpcapp_test

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/example/orders"
	"github.com/eventsourcing-go/eventsourcing/grpcapp"
)

// Lookups resolve topics, aliases and member names.
func TestRegistryLookups(t *testing.T) {
	reg := orders.Registry()
	require.NoError(t, reg.Err())

	sys, canonical, err := reg.LookupSystem("eventsourcing_grpc.example:system")
	require.NoError(t, err)
	assert.Equal(t, "orders.System", canonical)
	assert.Len(t, sys.Apps(), 3)
	_, _, err = reg.LookupSystem("no.Such")
	assert.ErrorIs(t, err, eventsourcing.ErrArgument)
	assert.ErrorContains(t, err, "orders.System", "names what is registered")

	for _, topic := range []string{"orders.Orders", "eventsourcing_grpc.example:Orders", "Orders"} {
		app, err := reg.LookupApp(topic)
		require.NoError(t, err, topic)
		assert.Equal(t, "Orders", app.Name(), topic)
	}
	_, err = reg.LookupApp("orders.OrdersSummary")
	assert.ErrorIs(t, err, eventsourcing.ErrArgument, "a projection is no application")

	assert.Equal(t, "OrdersSummary", reg.LookupMember("orders.OrdersSummary"))
	assert.Equal(t, "Payments", reg.LookupMember("eventsourcing_grpc.example:Payments"))
	assert.Equal(t, "Payments", reg.LookupMember("Payments"), "an unknown topic is left to the system")
	topic, ok := reg.MemberTopic("OrdersSummary")
	assert.True(t, ok)
	assert.Equal(t, "orders.OrdersSummary", topic)
	_, ok = reg.MemberTopic("orders.Orders")
	assert.False(t, ok, "by member name only")

	_, ok = reg.LookupDemo("orders.System")
	assert.True(t, ok)
	_, ok = reg.LookupDemo("eventsourcing_grpc.example:system")
	assert.True(t, ok, "by alias")

	members, systems := reg.Topics()
	assert.Equal(t, []string{"eventsourcing_grpc.example:system", "orders.System"}, systems)
	assert.Contains(t, members, "orders.OrdersSummary")
	assert.Contains(t, members, "eventsourcing_grpc.example:Reservations")
}

// Mistakes are returned, collected by Err, and leave the registry as it
// was; nothing panics.
func TestRegistryErrors(t *testing.T) {
	reg := grpcapp.NewRegistry()
	require.NoError(t, reg.System("orders.System", orders.System, "alias"))
	require.NoError(t, reg.App("orders.Orders", orders.OrdersApp()))
	demo := func(context.Context, *grpcapp.Runner, io.Writer) error { return nil }

	errs := []error{
		reg.System("alias", orders.System),
		reg.System("other", nil),
		reg.System("", orders.System),
		reg.App("orders.Orders", orders.PaymentsApp()),
		reg.App("orders.Payments", orders.PaymentsApp(), "orders.Payments"),
		reg.App("orders.Orders2", orders.OrdersApp()), // Orders is already registered
		reg.App("orders.Nil", nil),
		reg.Projection("orders.Orders", orders.OrdersSummaryProjection()),
		reg.Projection("orders.Nil", nil),
		reg.Demo("no.Such", demo),
		reg.Demo("orders.System", nil),
	}
	for i, err := range errs {
		assert.ErrorIs(t, err, eventsourcing.ErrArgument, "registration %d", i)
	}
	require.NoError(t, reg.Demo("alias", demo))
	assert.ErrorIs(t, reg.Demo("orders.System", demo), eventsourcing.ErrArgument, "one demonstration per system")

	all := reg.Err()
	require.Error(t, all)
	for _, err := range append(errs, reg.Demo("orders.System", demo)) {
		assert.ErrorContains(t, all, err.Error())
	}
	_, err := reg.LookupApp("orders.Payments")
	assert.Error(t, err, "a failed registration registers nothing")
	app, err := reg.LookupApp("orders.Orders")
	require.NoError(t, err)
	assert.Equal(t, "Orders", app.Name())
	_, canonical, err := reg.LookupSystem("alias")
	require.NoError(t, err)
	assert.Equal(t, "orders.System", canonical)
}
