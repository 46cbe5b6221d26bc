// Package orders is the example system of the gRPC layer: Orders,
// Reservations and Payments, connected in a cycle
// [[Orders, Reservations, Orders, Payments, Orders]]. Creating an order in
// Orders makes Reservations reserve it, which makes Orders mark it reserved,
// which makes Payments pay it, which makes Orders mark it paid.
//
// Registry names the system "orders.System", the applications
// "orders.Orders", "orders.Reservations" and "orders.Payments" (the
// reference package's topics "eventsourcing_grpc.example:system" etc. are
// aliases), and the projection "orders.OrdersSummary", for the
// eventsourcing-grpc command of example/cmd/eventsourcing-grpc:
//
//	eventsourcing-grpc runner orders.System
package orders

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/grpcapp"
	"github.com/eventsourcing-go/eventsourcing/system"
)

// Topics keep the reference package's names, so that events written by
// either can be read by the other.
const topicPrefix = "eventsourcing_grpc.example:"

// Errors of the domain.
var (
	ErrAlreadyReserved = errors.New("order is already reserved")
	ErrAlreadyPaid     = errors.New("order is already paid")
)

// Order is created, then reserved, then paid.
type Order struct {
	eventsourcing.Aggregate
	IsReserved    bool
	IsPaid        bool
	ReservationID *uuid.UUID
	PaymentID     *uuid.UUID
}

// Order's events.
type (
	OrderCreated  struct{}
	OrderReserved struct{ ReservationID uuid.UUID }
	OrderPaid     struct{ PaymentID uuid.UUID }
)

// NewOrder creates an order.
func NewOrder() *Order {
	o := new(Order)
	eventsourcing.Create(o, eventsourcing.NewID(), OrderCreated{})
	return o
}

// Reserve marks the order reserved; reserving twice is an error.
func (o *Order) Reserve(reservationID uuid.UUID) error {
	if o.IsReserved {
		return fmt.Errorf("order %s: %w", o.ID(), ErrAlreadyReserved)
	}
	eventsourcing.Trigger(o, OrderReserved{ReservationID: reservationID})
	return nil
}

// Pay marks the order paid; paying twice is an error.
func (o *Order) Pay(paymentID uuid.UUID) error {
	if o.IsPaid {
		return fmt.Errorf("order %s: %w", o.ID(), ErrAlreadyPaid)
	}
	eventsourcing.Trigger(o, OrderPaid{PaymentID: paymentID})
	return nil
}

// InitialVersion starts an order's history at version 0, as EventStoreDB
// numbers stream revisions, so that the system runs on every persistence
// module unchanged (the others accept either).
func (*Order) InitialVersion() int64 { return 0 }

// Apply applies the Order's events.
func (o *Order) Apply(data any) {
	switch e := data.(type) {
	case OrderReserved:
		o.IsReserved, o.ReservationID = true, &e.ReservationID
	case OrderPaid:
		o.IsPaid, o.PaymentID = true, &e.PaymentID
	}
}

// Reservation reserves an order; its id follows from the order's.
type Reservation struct {
	eventsourcing.Aggregate
	OrderID uuid.UUID
}

// ReservationCreated creates a Reservation.
type ReservationCreated struct{ OrderID uuid.UUID }

// ReservationID is UUIDv5(URL, "/reservations/<order id>/"), as in the reference.
func ReservationID(orderID uuid.UUID) uuid.UUID {
	return eventsourcing.NameID("/reservations/" + hex(orderID) + "/")
}

// InitialVersion starts at 0, as Order's does.
func (*Reservation) InitialVersion() int64 { return 0 }

// Apply applies the Reservation's events.
func (r *Reservation) Apply(data any) {
	if e, ok := data.(ReservationCreated); ok {
		r.OrderID = e.OrderID
	}
}

// Payment pays an order; its id follows from the order's.
type Payment struct {
	eventsourcing.Aggregate
	OrderID uuid.UUID
}

// PaymentCreated creates a Payment.
type PaymentCreated struct{ OrderID uuid.UUID }

// PaymentID is UUIDv5(URL, "/payments/<order id>/"), as in the reference.
func PaymentID(orderID uuid.UUID) uuid.UUID {
	return eventsourcing.NameID("/payments/" + hex(orderID) + "/")
}

// InitialVersion starts at 0, as Order's does.
func (*Payment) InitialVersion() int64 { return 0 }

// Apply applies the Payment's events.
func (p *Payment) Apply(data any) {
	if e, ok := data.(PaymentCreated); ok {
		p.OrderID = e.OrderID
	}
}

// hex is the reference's str(UUID): hyphenated lower case.
func hex(id uuid.UUID) string { return id.String() }

// Types returns the registry of every aggregate and event of the system.
// The three applications share it, so each can decode the others' events.
func Types() *eventsourcing.Types {
	t := eventsourcing.NewTypes()
	eventsourcing.MustRegister[Order](t, topicPrefix+"Order")
	eventsourcing.MustRegister[OrderCreated](t, topicPrefix+"Order.Created")
	eventsourcing.MustRegister[OrderReserved](t, topicPrefix+"Order.Reserved")
	eventsourcing.MustRegister[OrderPaid](t, topicPrefix+"Order.Paid")
	eventsourcing.MustRegister[Reservation](t, topicPrefix+"Reservation")
	eventsourcing.MustRegister[ReservationCreated](t, topicPrefix+"Reservation.Created")
	eventsourcing.MustRegister[Payment](t, topicPrefix+"Payment")
	eventsourcing.MustRegister[PaymentCreated](t, topicPrefix+"Payment.Created")
	return t
}

func newApp(ctx context.Context, name string, env map[string]string) (*eventsourcing.Application, error) {
	// Every policy of this system writes one aggregate per upstream event,
	// so on EventStoreDB the tracking position can travel in the metadata
	// of that one append (atomic): the example turns that on unless told
	// otherwise.
	const trackingKey = "EVENTSTOREDB_TRACKING_IN_METADATA"
	if _, set := config.NewEnv(name, env).Lookup(trackingKey); !set {
		env = maps.Clone(env)
		if env == nil {
			env = map[string]string{}
		}
		env[trackingKey] = "true"
	}
	return eventsourcing.NewApplication(ctx, eventsourcing.Options{Name: name, Types: Types(), Env: env, Process: true})
}

// Orders creates orders and records their reservation and payment.
type Orders struct{ *eventsourcing.Application }

// NewOrders builds Orders with settings env (ORDERS_KEY before KEY).
func NewOrders(ctx context.Context, env map[string]string) (*Orders, error) {
	app, err := newApp(ctx, "Orders", env)
	if err != nil {
		return nil, err
	}
	return &Orders{app}, nil
}

// CreateNewOrder creates an order and returns its id.
func (a *Orders) CreateNewOrder(ctx context.Context) (uuid.UUID, error) {
	o := NewOrder()
	if _, err := a.Save(ctx, o); err != nil {
		return uuid.Nil, err
	}
	return o.ID(), nil
}

// OrderView is what GetOrder returns.
type OrderView struct {
	ID            uuid.UUID  `json:"id"`
	IsReserved    bool       `json:"is_reserved"`
	IsPaid        bool       `json:"is_paid"`
	ReservationID *uuid.UUID `json:"reservation_id"`
	PaymentID     *uuid.UUID `json:"payment_id"`
	CreatedOn     time.Time  `json:"created_on"`
	ModifiedOn    time.Time  `json:"modified_on"`
}

// GetOrder returns the order, or an error matching
// eventsourcing.ErrAggregateNotFound.
func (a *Orders) GetOrder(ctx context.Context, id uuid.UUID) (OrderView, error) {
	o, err := eventsourcing.Get[Order](ctx, a, id)
	if err != nil {
		return OrderView{}, err
	}
	return OrderView{
		ID: o.ID(), IsReserved: o.IsReserved, IsPaid: o.IsPaid,
		ReservationID: o.ReservationID, PaymentID: o.PaymentID,
		CreatedOn: o.CreatedOn(), ModifiedOn: o.ModifiedOn(),
	}, nil
}

// QueryMethods implements grpcapp.QueryDeclarer: these methods only read,
// so clients may retry them; CreateNewOrder is never re-sent.
func (*Orders) QueryMethods() []string { return []string{"GetOrder", "IsOrderReserved", "IsOrderPaid"} }

// IsOrderReserved reports whether the order is reserved.
func (a *Orders) IsOrderReserved(ctx context.Context, id uuid.UUID) (bool, error) {
	o, err := eventsourcing.Get[Order](ctx, a, id)
	if err != nil {
		return false, err
	}
	return o.IsReserved, nil
}

// IsOrderPaid reports whether the order is paid.
func (a *Orders) IsOrderPaid(ctx context.Context, id uuid.UUID) (bool, error) {
	o, err := eventsourcing.Get[Order](ctx, a, id)
	if err != nil {
		return false, err
	}
	return o.IsPaid, nil
}

// Policy marks orders reserved and paid.
func (a *Orders) Policy(ctx context.Context, e eventsourcing.Event, p *system.ProcessingEvent) error {
	switch d := e.Data.(type) {
	case ReservationCreated:
		o, err := eventsourcing.Get[Order](ctx, a, d.OrderID)
		if err != nil {
			return err
		}
		if err := o.Reserve(e.OriginatorID); err != nil {
			return err
		}
		p.Collect(o)
	case PaymentCreated:
		o, err := eventsourcing.Get[Order](ctx, a, d.OrderID)
		if err != nil {
			return err
		}
		if err := o.Pay(e.OriginatorID); err != nil {
			return err
		}
		p.Collect(o)
	}
	return nil
}

// Reservations reserves new orders.
type Reservations struct{ *eventsourcing.Application }

// NewReservations builds Reservations.
func NewReservations(ctx context.Context, env map[string]string) (*Reservations, error) {
	app, err := newApp(ctx, "Reservations", env)
	if err != nil {
		return nil, err
	}
	return &Reservations{app}, nil
}

// Policy creates a reservation for each new order.
func (a *Reservations) Policy(_ context.Context, e eventsourcing.Event, p *system.ProcessingEvent) error {
	if _, ok := e.Data.(OrderCreated); ok {
		r := new(Reservation)
		eventsourcing.Create(r, ReservationID(e.OriginatorID), ReservationCreated{OrderID: e.OriginatorID})
		p.Collect(r)
	}
	return nil
}

// Payments pays reserved orders.
type Payments struct{ *eventsourcing.Application }

// NewPayments builds Payments.
func NewPayments(ctx context.Context, env map[string]string) (*Payments, error) {
	app, err := newApp(ctx, "Payments", env)
	if err != nil {
		return nil, err
	}
	return &Payments{app}, nil
}

// Policy creates a payment for each reserved order.
func (a *Payments) Policy(_ context.Context, e eventsourcing.Event, p *system.ProcessingEvent) error {
	if _, ok := e.Data.(OrderReserved); ok {
		pay := new(Payment)
		eventsourcing.Create(pay, PaymentID(e.OriginatorID), PaymentCreated{OrderID: e.OriginatorID})
		p.Collect(pay)
	}
	return nil
}

// The definitions of the system's members, unexported so that no caller can
// swap one for another: the functions below return them.
var (
	ordersApp       = system.NewApp("Orders", NewOrders, system.WithTypes(Types))
	reservationsApp = system.NewApp("Reservations", NewReservations, system.WithTypes(Types))
	paymentsApp     = system.NewApp("Payments", NewPayments, system.WithTypes(Types))
	ordersSummary   = system.NewProjection("OrdersSummary", ordersApp, NewOrdersSummary)
)

// OrdersApp is the definition of the Orders application.
func OrdersApp() *system.App { return ordersApp }

// ReservationsApp is the definition of the Reservations application.
func ReservationsApp() *system.App { return reservationsApp }

// PaymentsApp is the definition of the Payments application.
func PaymentsApp() *system.App { return paymentsApp }

// OrdersSummaryProjection is the definition of the projection that counts
// Orders' orders into a view.
func OrdersSummaryProjection() *system.Projection { return ordersSummary }

// System returns [[Orders, Reservations, Orders, Payments, Orders]].
func System() *system.System {
	sys, err := system.New(system.Pipe(ordersApp, reservationsApp, ordersApp, paymentsApp, ordersApp))
	if err == nil {
		sys, err = sys.WithProjections(ordersSummary)
	}
	if err != nil {
		panic(err) // the definition is static: a failure is a bug in this file
	}
	return sys
}

// Registry returns the registry of a command that serves the example
// (example/cmd/eventsourcing-grpc): the system as "orders.System", its
// applications as "orders.Orders", "orders.Reservations" and
// "orders.Payments" (the reference package's topics
// "eventsourcing_grpc.example:system" etc. are aliases), the projection as
// "orders.OrdersSummary", and Demo as the system's demonstration. The
// definitions are static: its Err is nil.
func Registry() *grpcapp.Registry {
	reg := grpcapp.NewRegistry()
	_ = reg.System("orders.System", System, topicPrefix+"system")
	_ = reg.App("orders.Orders", ordersApp, topicPrefix+"Orders")
	_ = reg.App("orders.Reservations", reservationsApp, topicPrefix+"Reservations")
	_ = reg.App("orders.Payments", paymentsApp, topicPrefix+"Payments")
	_ = reg.Projection("orders.OrdersSummary", ordersSummary)
	_ = reg.Demo("orders.System", Demo)
	return reg
}
