package system_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/system"
)

// Paid counts the orders paid; its policy declares the one topic it handles.
type Paid struct {
	*eventsourcing.Application
	calls atomic.Int64
}

func (p *Paid) PolicyTopics() []string { return []string{"orders:Order.Paid"} }

func (p *Paid) Policy(_ context.Context, e eventsourcing.Event, _ *system.ProcessingEvent) error {
	p.calls.Add(1)
	if _, ok := e.Data.(OrderPaid); !ok {
		return errors.New("paid: an event of an undeclared topic reached the policy: " + e.OriginatorTopic)
	}
	return nil
}

var _ system.PolicyTopics = (*Paid)(nil)

// A policy that declares its topics is called for those only, and its
// follower's position still reaches the leader's last notification.
func TestPolicyTopics(t *testing.T) {
	for _, rc := range runnerCases {
		t.Run(rc.name, func(t *testing.T) {
			ctx := context.Background()
			var paid *Paid
			paidApp := system.NewApp("Paid", func(ctx context.Context, env map[string]string) (*Paid, error) {
				a, err := newApp(ctx, "Paid", env)
				paid = &Paid{Application: a}
				return paid, err
			})
			sys, err := system.New(system.Pipe(ordersApp, reservationsApp, ordersApp, paymentsApp, ordersApp), system.Pipe(ordersApp, paidApp))
			require.NoError(t, err)
			r := rc.new(sys, nil)
			require.NoError(t, r.Start(ctx))
			defer func() { require.NoError(t, r.Stop()) }()
			orders := system.MustGet[*Orders](r)
			for range 3 {
				_, err := orders.CreateOrder(ctx)
				require.NoError(t, err)
			}
			// Each order is created, reserved and paid: 9 notifications, and
			// the last of them a payment.
			require.Eventually(t, func() bool {
				last, _, err := orders.Recorder().MaxNotificationID(ctx)
				return err == nil && last == 9
			}, 10*time.Second, time.Millisecond)
			require.NoError(t, system.Wait(ctx, r, "Paid", "Orders", 9, 10*time.Second))
			assert.Equal(t, int64(3), paid.calls.Load(), "called for the payments only")
			require.NoError(t, r.Err())
		})
	}
}
