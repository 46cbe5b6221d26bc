package orders_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/example/orders"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/system"
)

func TestOrderRules(t *testing.T) {
	o := orders.NewOrder()
	require.NoError(t, o.Reserve(orders.ReservationID(o.ID())))
	assert.ErrorIs(t, o.Reserve(orders.ReservationID(o.ID())), orders.ErrAlreadyReserved)
	require.NoError(t, o.Pay(orders.PaymentID(o.ID())))
	assert.ErrorIs(t, o.Pay(orders.PaymentID(o.ID())), orders.ErrAlreadyPaid)
	assert.Equal(t, int64(2), o.Version(), "versions start at 0, as EventStoreDB's revisions do")
	// Deterministic ids, as the reference's uuid5(NAMESPACE_URL, "/reservations/<id>/").
	assert.Equal(t, eventsourcing.NameID("/reservations/"+o.ID().String()+"/"), *o.ReservationID)
}

// The system under both of the system package's runners: the order is
// reserved and paid, and each follower tracks Orders up to 3.
func TestSystem(t *testing.T) {
	ctx := context.Background()
	for name, newRunner := range map[string]func() system.Runner{
		"single": func() system.Runner { return system.NewSingleThreadedRunner(orders.System(), nil) },
		"multi":  func() system.Runner { return system.NewMultiThreadedRunner(orders.System(), nil) },
	} {
		t.Run(name, func(t *testing.T) {
			r := newRunner()
			require.NoError(t, r.Start(ctx))
			defer func() { require.NoError(t, r.Stop()) }()
			app := system.MustGet[*orders.Orders](r)
			id, err := app.CreateNewOrder(ctx)
			require.NoError(t, err)
			for _, f := range []string{"Reservations", "Payments"} {
				require.NoError(t, system.Wait(ctx, r, f, "Orders", 3, 10*time.Second))
			}
			order, err := app.GetOrder(ctx, id)
			require.NoError(t, err)
			assert.True(t, order.IsReserved)
			assert.True(t, order.IsPaid)
			ns, err := app.Recorder().SelectNotifications(ctx, recorder.NotificationQuery{Limit: 10})
			require.NoError(t, err)
			require.Len(t, ns, 3)
			for i, n := range ns {
				assert.Equal(t, int64(i), n.OriginatorVersion)
			}
			// The OrdersSummary projection counts the order as paid.
			p, err := r.(interface {
				Projection(string) (*projection.Follower, error)
			}).Projection("OrdersSummary")
			require.NoError(t, err)
			require.NoError(t, p.Wait(ctx, ns[2].ID, 10*time.Second))
			summary := p.View().(*orders.SQLiteSummary)
			for query, want := range map[string]int{"created": 1, "reserved": 1, "paid": 1} {
				var n int
				switch query {
				case "created":
					n, err = summary.CountCreated(ctx)
				case "reserved":
					n, err = summary.CountReserved(ctx)
				case "paid":
					n, err = summary.CountPaid(ctx)
				}
				require.NoError(t, err)
				assert.Equal(t, want, n, query)
			}
		})
	}
}
