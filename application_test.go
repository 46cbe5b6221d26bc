package eventsourcing_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func newApp(t testing.TB, opts es.Options) *es.Application {
	t.Helper()
	if opts.Types == nil {
		opts.Types = dogTypes()
	}
	if opts.Lookup == nil {
		opts.Lookup = es.NoEnvironment
	}
	app, err := es.NewApplication(context.Background(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, app.Close()) })
	return app
}

func newSchool(t testing.TB, opts es.Options) DogSchool {
	if opts.Name == "" {
		opts.Name = "DogSchool"
	}
	return DogSchool{newApp(t, opts)}
}

func ids(recs []es.Recording) []int64 {
	var out []int64
	for _, r := range recs {
		out = append(out, r.NotificationID)
	}
	return out
}

func TestSaveReturnsRecordings(t *testing.T) {
	ctx := context.Background()
	app := newApp(t, es.Options{Name: "DogSchool"})

	recs, err := app.Save(ctx)
	require.NoError(t, err)
	assert.Empty(t, recs)
	recs, err = app.Save(ctx, nil, (*Dog)(nil))
	require.NoError(t, err)
	assert.Empty(t, recs, "nil aggregates are ignored")

	a := NewDog("a")
	recs, err = app.Save(ctx, a)
	require.NoError(t, err)
	assert.Equal(t, []int64{1}, ids(recs))
	assert.Equal(t, "dogschool:Dog", recs[0].Event.OriginatorTopic)
	assert.Empty(t, a.PendingEvents(), "saved events are no longer pending")

	a.AddTrick("sit")
	recs, err = app.Save(ctx, a)
	require.NoError(t, err)
	assert.Equal(t, []int64{2}, ids(recs))

	b, c := NewDog("b"), NewDog("c")
	recs, err = app.Save(ctx, b, nil, c)
	require.NoError(t, err)
	assert.Equal(t, []int64{3, 4}, ids(recs))

	// The recordings hold the events as they read back from the log.
	ns, err := app.Log().Select(ctx, recorder.NotificationQuery{Limit: 10})
	require.NoError(t, err)
	require.Len(t, ns, 4)
	for i, n := range ns {
		e, err := app.Mapper().ToEvent(n.StoredEvent)
		require.NoError(t, err)
		assert.Equal(t, int64(i+1), n.ID)
		if i == 3 {
			assert.Equal(t, recs[1].Event, e)
		}
	}
}

func TestRepositoryGet(t *testing.T) {
	ctx := context.Background()
	school := newSchool(t, es.Options{})
	id, err := school.RegisterDog(ctx, "Fido")
	require.NoError(t, err)
	for _, trick := range []string{"sit", "roll over", "play dead"} {
		require.NoError(t, school.AddTrick(ctx, id, trick))
	}

	dog, err := es.Get[Dog](ctx, school, id)
	require.NoError(t, err)
	assert.Equal(t, int64(4), dog.Version())
	assert.Equal(t, []string{"sit", "roll over", "play dead"}, dog.Tricks)
	assert.Empty(t, dog.PendingEvents())

	for v, want := range map[int64][]string{1: nil, 2: {"sit"}, 3: {"sit", "roll over"}, 99: {"sit", "roll over", "play dead"}} {
		dog, err := es.Get[Dog](ctx, school, id, es.AtVersion(v))
		require.NoError(t, err)
		assert.Equal(t, want, dog.Tricks, "version %d", v)
		assert.Equal(t, min(v, 4), dog.Version())
	}

	_, err = es.Get[Dog](ctx, school, es.NewID())
	assert.ErrorIs(t, err, es.ErrAggregateNotFound)
	ok, err := school.Repository().Contains(ctx, id)
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = school.Repository().Contains(ctx, es.NewID())
	require.NoError(t, err)
	assert.False(t, ok)

	// Asking for the wrong type is an error, not a half-filled value.
	types := school.Types()
	es.MustRegister[Counter](types, "counters:Counter")
	_, err = es.Get[Counter](ctx, school, id)
	assert.ErrorIs(t, err, es.ErrAggregateType)
}

func TestSaveConflict(t *testing.T) {
	ctx := context.Background()
	types := dogTypes()
	es.MustRegister[Counter](types, "counters:Counter")
	es.MustRegister[CounterStarted](types, "counters:Counter.Started")
	es.MustRegister[CounterIncremented](types, "counters:Counter.Incremented")
	app := newApp(t, es.Options{Name: "Counters", Types: types})

	const n = 20
	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		errs     = make([]error, n)
		recorded = make([][]es.Recording, n)
	)
	for i := range n {
		wg.Go(func() {
			c := NewCounter("fetch ball")
			<-start
			recorded[i], errs[i] = app.Save(ctx, c)
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for i, err := range errs {
		if err == nil {
			wins++
			assert.Len(t, recorded[i], 1)
			continue
		}
		assert.ErrorIs(t, err, es.ErrIntegrity, "only conflicts, never another error")
		assert.ErrorIs(t, err, recorder.ErrIntegrity)
	}
	assert.Equal(t, 1, wins)

	// A stale copy conflicts; Update retries from a fresh copy.
	id := es.NameID("/counters/fetch ball")
	c1, err := es.Get[Counter](ctx, app, id)
	require.NoError(t, err)
	c2, err := es.Get[Counter](ctx, app, id)
	require.NoError(t, err)
	es.Trigger(c1, CounterIncremented{})
	es.Trigger(c2, CounterIncremented{})
	_, err = app.Save(ctx, c1)
	require.NoError(t, err)
	_, err = app.Save(ctx, c2)
	require.ErrorIs(t, err, es.ErrIntegrity)
	assert.Len(t, c2.PendingEvents(), 1, "a failed save keeps the events pending")

	var wg2 sync.WaitGroup
	for range 10 {
		wg2.Go(func() {
			_, err := es.Update(ctx, app, id, func(c *Counter) error {
				es.Trigger(c, CounterIncremented{})
				return nil
			})
			assert.NoError(t, err)
		})
	}
	wg2.Wait()
	c, err := es.Get[Counter](ctx, app, id)
	require.NoError(t, err)
	assert.Equal(t, 11, c.Count)
	assert.Equal(t, int64(11), c.Version(), "counters start at version 0")
}

func TestAutomaticSnapshotting(t *testing.T) {
	ctx := context.Background()
	types := dogTypes()
	es.MustRegister[Counter](types, "counters:Counter")
	es.MustRegister[CounterStarted](types, "counters:Counter.Started")
	es.MustRegister[CounterIncremented](types, "counters:Counter.Incremented")
	app := newApp(t, es.Options{Name: "App", Types: types, SnapshotIntervals: map[reflect.Type]int64{reflect.TypeFor[Dog](): 5}})

	dog := NewDog("Fido")
	for i := range 12 {
		dog.AddTrick(fmt.Sprint(i))
		if i%3 == 0 {
			_, err := app.Save(ctx, dog)
			require.NoError(t, err)
		}
	}
	_, err := app.Save(ctx, dog)
	require.NoError(t, err)
	require.Equal(t, int64(13), dog.Version())
	c := NewCounter("x")
	for range 12 {
		es.Trigger(c, CounterIncremented{})
	}
	_, err = app.Save(ctx, c)
	require.NoError(t, err)

	snaps, err := app.Repository().Snapshots().SelectEvents(ctx, dog.ID().String(), recorder.EventQuery{})
	require.NoError(t, err)
	var versions []int64
	for _, s := range snaps {
		versions = append(versions, s.OriginatorVersion)
		assert.Equal(t, es.SnapshotTopic, s.Topic)
	}
	assert.Equal(t, []int64{5, 10}, versions)
	snaps, err = app.Repository().Snapshots().SelectEvents(ctx, c.ID().String(), recorder.EventQuery{})
	require.NoError(t, err)
	assert.Empty(t, snaps, "other types are not snapshotted")

	// Snapshots never enter the notification log.
	maxID, _, err := app.Recorder().MaxNotificationID(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(13+13), maxID)

	for _, v := range []int64{4, 5, 7, 10, 13} {
		got, err := es.Get[Dog](ctx, app, dog.ID(), es.AtVersion(v))
		require.NoError(t, err)
		assert.Equal(t, v, got.Version())
		assert.Equal(t, dog.Tricks[:v-1], got.Tricks)
		assert.Equal(t, dog.CreatedOn(), got.CreatedOn())
	}
	got, err := es.Get[Dog](ctx, app, dog.ID())
	require.NoError(t, err)
	assert.Equal(t, dog.Tricks, got.Tricks)
	assert.Equal(t, dog.ModifiedOn(), got.ModifiedOn())
}

func TestSnapshottingDisabled(t *testing.T) {
	ctx := context.Background()
	school := newSchool(t, es.Options{})
	id, err := school.RegisterDog(ctx, "Fido")
	require.NoError(t, err)
	assert.ErrorIs(t, es.TakeSnapshot[Dog](ctx, school, id), es.ErrSnapshotting)
	assert.Nil(t, school.Repository().Snapshots())

	// The environment turns it on, under the application's name first.
	on := newSchool(t, es.Options{Lookup: func(k string) (string, bool) {
		if k == "DOGSCHOOL_IS_SNAPSHOTTING_ENABLED" {
			return "yes", true
		}
		return "", false
	}})
	assert.NotNil(t, on.Repository().Snapshots())
	_, err = es.NewApplication(ctx, es.Options{Name: "x", Lookup: es.NoEnvironment, Env: map[string]string{"IS_SNAPSHOTTING_ENABLED": "maybe"}})
	assert.ErrorIs(t, err, es.ErrConfiguration)
}

// BankAccount is the reference library's bank accounts example.
type BankAccount struct {
	es.Aggregate
	FullName       string
	EmailAddress   string
	Balance        decimal.Decimal
	OverdraftLimit decimal.Decimal
}

type (
	AccountOpened struct {
		FullName     string
		EmailAddress string
	}
	TransactionAppended struct{ Amount decimal.Decimal }
)

var errInsufficientFunds = errors.New("insufficient funds")

func (a *BankAccount) Apply(data any) {
	switch e := data.(type) {
	case AccountOpened:
		a.FullName, a.EmailAddress = e.FullName, e.EmailAddress
		a.Balance = decimal.RequireFromString("0.00")
		a.OverdraftLimit = decimal.RequireFromString("0.00")
	case TransactionAppended:
		a.Balance = a.Balance.Add(e.Amount)
	}
}

func (a *BankAccount) AppendTransaction(amount decimal.Decimal) error {
	if a.Balance.Add(amount).LessThan(a.OverdraftLimit.Neg()) {
		return errInsufficientFunds
	}
	es.Trigger(a, TransactionAppended{Amount: amount})
	return nil
}

type BankAccounts struct{ *es.Application }

func (b BankAccounts) OpenAccount(ctx context.Context, name, email string) (uuid.UUID, error) {
	a := new(BankAccount)
	es.Create(a, es.NewID(), AccountOpened{FullName: name, EmailAddress: email})
	_, err := b.Save(ctx, a)
	return a.ID(), err
}

func (b BankAccounts) Credit(ctx context.Context, id uuid.UUID, amount string) error {
	_, err := es.Update(ctx, b, id, func(a *BankAccount) error {
		return a.AppendTransaction(decimal.RequireFromString(amount))
	})
	return err
}

func (b BankAccounts) Balance(ctx context.Context, id uuid.UUID, opts ...es.GetOption) (string, error) {
	a, err := es.Get[BankAccount](ctx, b, id, opts...)
	if err != nil {
		return "", err
	}
	return a.Balance.StringFixed(2), nil
}

func TestBankAccounts(t *testing.T) {
	ctx := context.Background()
	types := es.NewTypes()
	es.MustRegister[BankAccount](types, "bankaccounts:BankAccount")
	es.MustRegister[AccountOpened](types, "bankaccounts:BankAccount.Opened")
	es.MustRegister[TransactionAppended](types, "bankaccounts:BankAccount.TransactionAppended")
	key, err := es.CreateKey(32)
	require.NoError(t, err)
	accounts := BankAccounts{newApp(t, es.Options{Name: "BankAccounts", Types: types, Snapshotting: true,
		Env: map[string]string{"CIPHER_KEY": key, "COMPRESSOR_TOPIC": "zlib"}})}

	_, err = accounts.Balance(ctx, es.NewID())
	assert.ErrorIs(t, err, es.ErrAggregateNotFound)

	id, err := accounts.OpenAccount(ctx, "Alice", "alice@example.com")
	require.NoError(t, err)
	for _, amount := range []string{"10.00", "25.00", "30.00"} {
		require.NoError(t, accounts.Credit(ctx, id, amount))
	}
	balance, err := accounts.Balance(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "65.00", balance)
	assert.ErrorIs(t, accounts.Credit(ctx, id, "-100"), errInsufficientFunds)

	section, err := accounts.Log().Section(ctx, "1,10")
	require.NoError(t, err)
	assert.Len(t, section.Items, 4)
	assert.Equal(t, "1,4", section.ID)
	assert.Empty(t, section.Next)

	initial := es.DefaultInitialVersion
	require.NoError(t, es.TakeSnapshot[BankAccount](ctx, accounts, id, es.AtVersion(initial+1)))
	balance, err = accounts.Balance(ctx, id, es.AtVersion(initial+2))
	require.NoError(t, err)
	assert.Equal(t, "35.00", balance)
	require.NoError(t, es.TakeSnapshot[BankAccount](ctx, accounts, id, es.AtVersion(initial+3)))
	balance, err = accounts.Balance(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "65.00", balance)

	a, err := es.Get[BankAccount](ctx, accounts, id)
	require.NoError(t, err)
	assert.Equal(t, "Alice", a.FullName)
	assert.Equal(t, "alice@example.com", a.EmailAddress)
	assert.Equal(t, int64(4), a.Version())
}

func TestNotificationLog(t *testing.T) {
	ctx := context.Background()
	app := newApp(t, es.Options{Name: "App", SectionSize: 5})
	for i := range 12 {
		_, err := app.Save(ctx, NewDog(fmt.Sprint(i)))
		require.NoError(t, err)
	}
	log := app.Log()
	assert.Equal(t, 5, log.SectionSize())
	_, err := log.Select(ctx, recorder.NotificationQuery{Limit: 6})
	assert.ErrorIs(t, err, es.ErrArgument)

	tests := []struct {
		id, wantID, wantNext string
		n                    int
	}{
		{"1,5", "1,5", "6,10", 5},
		{"0,4", "1,4", "5,8", 4},
		{"6,100", "6,10", "11,15", 5},
		{"11,15", "11,12", "", 2},
		{"13,20", "", "", 0},
		{"5,3", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			s, err := log.Section(ctx, tt.id)
			require.NoError(t, err)
			assert.Len(t, s.Items, tt.n)
			assert.Equal(t, tt.wantID, s.ID)
			assert.Equal(t, tt.wantNext, s.Next)
		})
	}
	_, err = log.Section(ctx, "x")
	assert.ErrorIs(t, err, es.ErrArgument)

	var got []int64
	for n, err := range log.Read(ctx, recorder.NotificationQuery{After: recorder.After(3)}) {
		require.NoError(t, err)
		got = append(got, n.ID)
	}
	assert.Equal(t, []int64{4, 5, 6, 7, 8, 9, 10, 11, 12}, got)
}

func TestSaveWithTrackingAndHooks(t *testing.T) {
	ctx := context.Background()
	plain := newApp(t, es.Options{Name: "Plain"})
	_, err := plain.SaveWithTracking(ctx, recorder.Tracking{ApplicationName: "Up", NotificationID: 1}, NewDog("x"))
	assert.ErrorIs(t, err, es.ErrProcessRecorder)
	_, ok := plain.ProcessRecorder()
	assert.False(t, ok)

	app := newApp(t, es.Options{Name: "Counters", Process: true})
	var seen [][]int64
	app.OnSave(func(_ context.Context, recs []es.Recording) error {
		seen = append(seen, ids(recs))
		return nil
	})
	recs, err := app.SaveWithTracking(ctx, recorder.Tracking{ApplicationName: "DogSchool", NotificationID: 1}, NewDog("x"))
	require.NoError(t, err)
	assert.Equal(t, []int64{1}, ids(recs))
	recs, err = app.SaveWithTracking(ctx, recorder.Tracking{ApplicationName: "DogSchool", NotificationID: 2})
	require.NoError(t, err)
	assert.Empty(t, recs, "tracking alone advances the position")

	pr, ok := app.ProcessRecorder()
	require.True(t, ok)
	pos, ok, err := pr.MaxTrackingID(ctx, "DogSchool")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, int64(2), pos)

	_, err = app.SaveWithTracking(ctx, recorder.Tracking{ApplicationName: "DogSchool", NotificationID: 2}, NewDog("y"))
	assert.ErrorIs(t, err, es.ErrIntegrity, "reprocessing is refused")
	maxID, _, err := app.Recorder().MaxNotificationID(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), maxID, "and nothing is written")
	assert.Equal(t, [][]int64{{1}}, seen, "hooks see saves that recorded events")

	boom := errors.New("follower failed")
	app.OnSave(func(context.Context, []es.Recording) error { return boom })
	recs, err = app.Save(ctx, NewDog("z"))
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, []int64{2}, ids(recs), "events stay recorded when a hook fails")
}
