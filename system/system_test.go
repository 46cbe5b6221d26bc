package system_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/persistence"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/memory"
	"github.com/eventsourcing-go/eventsourcing/system"
)

// The Orders / Reservations / Payments cycle: an order is reserved, then paid.
type (
	Order struct {
		eventsourcing.Aggregate
		Reserved, Paid bool
	}
	OrderCreated  struct{}
	OrderReserved struct{ Reservation uuid.UUID }
	OrderPaid     struct{ Payment uuid.UUID }

	Reservation struct {
		eventsourcing.Aggregate
		Order uuid.UUID
	}
	ReservationCreated struct{ Order uuid.UUID }

	Payment struct {
		eventsourcing.Aggregate
		Order uuid.UUID
	}
	PaymentCreated struct{ Order uuid.UUID }
)

func (o *Order) Apply(data any) {
	switch data.(type) {
	case OrderReserved:
		o.Reserved = true
	case OrderPaid:
		o.Paid = true
	}
}

func (r *Reservation) Apply(data any) {
	if e, ok := data.(ReservationCreated); ok {
		r.Order = e.Order
	}
}

func (p *Payment) Apply(data any) {
	if e, ok := data.(PaymentCreated); ok {
		p.Order = e.Order
	}
}

func cycleTypes() *eventsourcing.Types {
	t := eventsourcing.NewTypes()
	eventsourcing.MustRegister[Order](t, "orders:Order")
	eventsourcing.MustRegister[OrderCreated](t, "orders:Order.Created")
	eventsourcing.MustRegister[OrderReserved](t, "orders:Order.Reserved")
	eventsourcing.MustRegister[OrderPaid](t, "orders:Order.Paid")
	eventsourcing.MustRegister[Reservation](t, "reservations:Reservation")
	eventsourcing.MustRegister[ReservationCreated](t, "reservations:Reservation.Created")
	eventsourcing.MustRegister[Payment](t, "payments:Payment")
	eventsourcing.MustRegister[PaymentCreated](t, "payments:Payment.Created")
	return t
}

func newApp(ctx context.Context, name string, env map[string]string) (*eventsourcing.Application, error) {
	return eventsourcing.NewApplication(ctx, eventsourcing.Options{Name: name, Types: cycleTypes(), Env: env, Process: true})
}

type Orders struct{ *eventsourcing.Application }

func (o *Orders) CreateOrder(ctx context.Context) (uuid.UUID, error) {
	order := new(Order)
	eventsourcing.Create(order, eventsourcing.NewID(), OrderCreated{})
	_, err := o.Save(ctx, order)
	return order.ID(), err
}

func (o *Orders) Policy(ctx context.Context, e eventsourcing.Event, p *system.ProcessingEvent) error {
	var id uuid.UUID
	var change any
	switch d := e.Data.(type) {
	case ReservationCreated:
		id, change = d.Order, OrderReserved{Reservation: e.OriginatorID}
	case PaymentCreated:
		id, change = d.Order, OrderPaid{Payment: e.OriginatorID}
	default:
		return nil
	}
	order, err := eventsourcing.Get[Order](ctx, o, id)
	if err != nil {
		return err
	}
	eventsourcing.Trigger(order, change)
	p.Collect(order)
	return nil
}

type Reservations struct{ *eventsourcing.Application }

func (r *Reservations) Policy(_ context.Context, e eventsourcing.Event, p *system.ProcessingEvent) error {
	if _, ok := e.Data.(OrderCreated); !ok {
		return errors.New("reservations: follow-topics filter let through " + e.OriginatorTopic)
	}
	res := new(Reservation)
	// A deterministic id: processing the same order twice would conflict.
	eventsourcing.Create(res, eventsourcing.NameID("/reservations/"+e.OriginatorID.String()), ReservationCreated{Order: e.OriginatorID})
	p.Collect(res)
	return nil
}

type Payments struct{ *eventsourcing.Application }

func (pm *Payments) Policy(_ context.Context, e eventsourcing.Event, p *system.ProcessingEvent) error {
	if _, ok := e.Data.(OrderReserved); ok {
		pay := new(Payment)
		eventsourcing.Create(pay, eventsourcing.NameID("/payments/"+e.OriginatorID.String()), PaymentCreated{Order: e.OriginatorID})
		p.Collect(pay)
	}
	return nil
}

var (
	ordersApp = system.NewApp("Orders", func(ctx context.Context, env map[string]string) (*Orders, error) {
		a, err := newApp(ctx, "Orders", env)
		return &Orders{a}, err
	})
	reservationsApp = system.NewApp("Reservations", func(ctx context.Context, env map[string]string) (*Reservations, error) {
		a, err := newApp(ctx, "Reservations", env)
		return &Reservations{a}, err
	}, system.FollowTopics("orders:Order.Created"))
	paymentsApp = system.NewApp("Payments", func(ctx context.Context, env map[string]string) (*Payments, error) {
		a, err := newApp(ctx, "Payments", env)
		return &Payments{a}, err
	})
)

func cycleSystem(t *testing.T) *system.System {
	sys, err := system.New(system.Pipe(ordersApp, reservationsApp, ordersApp, paymentsApp, ordersApp))
	require.NoError(t, err)
	return sys
}

func TestDerivedRoles(t *testing.T) {
	sys := cycleSystem(t)
	assert.Equal(t, []string{"Orders", "Reservations", "Payments"}, sys.Leaders())
	assert.Equal(t, []string{"Orders", "Reservations", "Payments"}, sys.Followers())
	assert.Equal(t, []string{"Reservations", "Payments"}, sys.LeadersOf("Orders"))
	assert.Equal(t, []string{"Reservations", "Payments"}, sys.FollowersOf("Orders"))
	assert.Equal(t, []string{"Orders"}, sys.LeadersOf("Payments"))
	assert.Empty(t, sys.LeadersOnly())
	assert.Empty(t, sys.Singles())

	type Plain struct{ *eventsourcing.Application }
	plain := system.NewApp("", func(ctx context.Context, env map[string]string) (*Plain, error) {
		a, err := newApp(ctx, "Plain", env)
		return &Plain{a}, err
	})
	assert.Equal(t, "Plain", plain.Name(), "the default name is the type's")
	assert.False(t, plain.IsProcess())

	sys, err := system.New(system.Pipe(plain, paymentsApp), system.Pipe(ordersApp))
	require.NoError(t, err, "a plain application may lead")
	assert.Equal(t, []string{"Plain"}, sys.LeadersOnly())
	assert.Equal(t, []string{"Orders"}, sys.Singles())
	assert.Equal(t, []string{"Payments", "Orders"}, sys.Processors())

	_, err = system.New(system.Pipe(paymentsApp, plain))
	assert.ErrorIs(t, err, system.ErrSystem, "a follower must have a policy")
	other := system.NewApp("Orders", func(ctx context.Context, env map[string]string) (*Orders, error) { return nil, nil })
	_, err = system.New(system.Pipe(ordersApp, paymentsApp, other))
	assert.ErrorIs(t, err, system.ErrSystem, "two definitions under one name")
	_, err = system.New()
	assert.ErrorIs(t, err, system.ErrSystem)
	_, err = system.New(system.Pipe(ordersApp, ordersApp))
	assert.ErrorIs(t, err, system.ErrSystem)
}

type runnerCase struct {
	name string
	new  func(*system.System, map[string]string) system.Runner
}

var runnerCases = []runnerCase{
	{"SingleThreaded", func(s *system.System, env map[string]string) system.Runner {
		return system.NewSingleThreadedRunner(s, env)
	}},
	{"MultiThreaded", func(s *system.System, env map[string]string) system.Runner {
		return system.NewMultiThreadedRunner(s, env, system.WithPageSize(3))
	}},
}

func TestCycle(t *testing.T) {
	for _, rc := range runnerCases {
		t.Run(rc.name, func(t *testing.T) {
			ctx := t.Context()
			r := rc.new(cycleSystem(t), nil)
			require.NoError(t, r.Start(ctx))
			defer func() { require.NoError(t, r.Stop()) }()
			orders, err := system.Get[*Orders](r)
			require.NoError(t, err)

			const n = 7
			ids := make([]uuid.UUID, n)
			for i := range ids {
				ids[i], err = orders.CreateOrder(ctx)
				require.NoError(t, err)
			}
			// n payments are recorded as Payments' notifications 1..n; when
			// Orders has processed the last, every order is paid.
			require.NoError(t, system.Wait(ctx, r, "Orders", "Payments", n, 10*time.Second))
			for _, id := range ids {
				order, err := eventsourcing.Get[Order](ctx, orders, id)
				require.NoError(t, err)
				assert.True(t, order.Reserved && order.Paid, "order %s", id)
				assert.EqualValues(t, 3, order.Version())
			}
			reservations := system.MustGet[*Reservations](r)
			last, _, err := reservations.Recorder().MaxNotificationID(ctx)
			require.NoError(t, err)
			assert.EqualValues(t, n, last, "one reservation per order, exactly once")
		})
	}
}

func TestStartTwiceAndGet(t *testing.T) {
	for _, rc := range runnerCases {
		t.Run(rc.name, func(t *testing.T) {
			ctx := t.Context()
			r := rc.new(cycleSystem(t), nil)
			_, err := system.Get[*Orders](r)
			assert.ErrorIs(t, err, system.ErrRunnerNotStarted)
			require.NoError(t, r.Start(ctx))
			assert.ErrorIs(t, r.Start(ctx), system.ErrRunnerAlreadyStarted)

			byName, err := system.Get[*Payments](r, "Payments")
			require.NoError(t, err)
			byType := system.MustGet[*Payments](r)
			assert.Same(t, byName, byType)
			_, err = system.Get[*Orders](r, "Payments")
			assert.ErrorIs(t, err, system.ErrAppNotFound)
			_, err = r.App("Nope")
			assert.ErrorIs(t, err, system.ErrAppNotFound)
			assert.Len(t, r.Apps(), 3)

			require.NoError(t, r.Stop())
			require.NoError(t, r.Stop(), "Stop is idempotent")
			assert.ErrorIs(t, r.Start(ctx), system.ErrRunnerAlreadyStarted)
		})
	}
}

// Settings reach every application under its prefix.
func TestEnvReachesApps(t *testing.T) {
	env := map[string]string{"ORDERS_CIPHER_KEY": mustKey(t), "PAYMENTS_COMPRESSOR_TOPIC": "zlib"}
	for _, rc := range runnerCases {
		t.Run(rc.name, func(t *testing.T) {
			r := rc.new(cycleSystem(t), env)
			require.NoError(t, r.Start(t.Context()))
			defer func() { require.NoError(t, r.Stop()) }()
			v, _ := system.MustGet[*Orders](r).Env().Lookup("CIPHER_KEY")
			assert.Equal(t, env["ORDERS_CIPHER_KEY"], v)
			_, ok := system.MustGet[*Reservations](r).Env().Lookup("CIPHER_KEY")
			assert.False(t, ok)
			// Encrypted Orders events are decoded by their followers.
			orders := system.MustGet[*Orders](r)
			_, err := orders.CreateOrder(t.Context())
			require.NoError(t, err)
			require.NoError(t, system.Wait(t.Context(), r, "Orders", "Payments", 1, 10*time.Second))
		})
	}
}

func mustKey(t *testing.T) string {
	k, err := eventsourcing.CreateKey(16)
	require.NoError(t, err)
	return k
}

// A construction failure fails Start and closes what was built.
func TestBrokenConstruction(t *testing.T) {
	broken := system.NewApp("Payments", func(ctx context.Context, env map[string]string) (*Payments, error) {
		return nil, errors.New("no payments today")
	})
	sys, err := system.New(system.Pipe(ordersApp, broken))
	require.NoError(t, err)
	for _, rc := range runnerCases {
		t.Run(rc.name, func(t *testing.T) {
			r := rc.new(sys, nil)
			err := r.Start(t.Context())
			require.ErrorContains(t, err, "no payments today")
			require.NoError(t, r.Stop())
		})
	}
}

// keptStores are the stores of the persistence module "kept-memory" of
// these tests: an in-memory store per KEPT_STORE name that outlives the
// application which opened it, as a database file does, so that a second
// runner finds what the first one recorded.
var keptStores = struct {
	sync.Mutex
	m map[string]*memory.Recorder
}{m: map[string]*memory.Recorder{}}

func init() {
	persistence.Register("kept-memory", func(ctx context.Context, env config.Env) (recorder.Factory, error) {
		name, ok := env.Lookup("KEPT_STORE")
		if !ok {
			return nil, errors.New("kept-memory: KEPT_STORE is not set")
		}
		keptStores.Lock()
		defer keptStores.Unlock()
		if keptStores.m[name] == nil {
			keptStores.m[name] = memory.NewProcessRecorder()
		}
		return keptFactory{Factory: memory.NewFactory(), store: keptStores.m[name]}, nil
	})
}

// keptFactory hands out its kept store as the application's recorder;
// snapshot and tracking stores are new each time.
type keptFactory struct {
	*memory.Factory
	store *memory.Recorder
}

func (f keptFactory) ApplicationRecorder(context.Context) (recorder.ApplicationRecorder, error) {
	return f.store, nil
}

func (f keptFactory) ProcessRecorder(context.Context) (recorder.ProcessRecorder, error) {
	return f.store, nil
}

// Events recorded before Start are processed when the runner starts.
func TestCatchUp(t *testing.T) {
	for _, rc := range runnerCases {
		t.Run(rc.name, func(t *testing.T) {
			ctx := t.Context()
			env := map[string]string{
				"PERSISTENCE_MODULE":      "kept-memory",
				"ORDERS_KEPT_STORE":       t.Name() + "/orders",
				"RESERVATIONS_KEPT_STORE": t.Name() + "/reservations",
				"PAYMENTS_KEPT_STORE":     t.Name() + "/payments",
			}
			// Orders alone records two orders.
			alone, err := system.New(system.Pipe(ordersApp))
			require.NoError(t, err)
			r := rc.new(alone, env)
			require.NoError(t, r.Start(ctx))
			for range 2 {
				_, err := system.MustGet[*Orders](r).CreateOrder(ctx)
				require.NoError(t, err)
			}
			require.NoError(t, r.Stop())

			r = rc.new(cycleSystem(t), env)
			require.NoError(t, r.Start(ctx))
			defer func() { require.NoError(t, r.Stop()) }()
			require.NoError(t, system.Wait(ctx, r, "Orders", "Payments", 2, 10*time.Second))
			// Reservations follows only Orders' Created events, but the
			// positions its filter leaves out are tracked too: waiting for
			// Orders' last event (paid, id 6) returns.
			require.NoError(t, system.Wait(ctx, r, "Reservations", "Orders", 6, 10*time.Second))
			res := system.MustGet[*Reservations](r)
			pr, _ := res.ProcessRecorder()
			id, ok, err := pr.MaxTrackingID(ctx, "Orders")
			require.NoError(t, err)
			assert.True(t, ok)
			assert.EqualValues(t, 6, id)
		})
	}
}
