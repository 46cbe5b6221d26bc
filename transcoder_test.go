package eventsourcing_test

import (
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

var fidoTime = time.Date(2026, 11, 28, 11, 55, 0, 385840000, time.UTC)

func TestMapperCreationEventExactBytes(t *testing.T) {
	m := es.NewMapper(dogTypes())
	id := uuid.MustParse("11111111-2222-3333-4444-555555555555")
	s, err := m.FromEvent(es.Event{
		OriginatorID: id, OriginatorVersion: 1, Timestamp: fidoTime,
		OriginatorTopic: "dogschool:Dog", Data: Registered{Name: "Fido"},
	})
	require.NoError(t, err)
	assert.Equal(t, id.String(), s.OriginatorID)
	assert.Equal(t, int64(1), s.OriginatorVersion)
	assert.Equal(t, "dogschool:Dog.Registered", s.Topic)
	assert.Equal(t, `{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-28T11:55:00.385840+00:00"},"originator_topic":"dogschool:Dog","name":"Fido"}`, string(s.State))

	e, err := m.ToEvent(s)
	require.NoError(t, err)
	assert.Equal(t, id, e.OriginatorID)
	assert.Equal(t, fidoTime, e.Timestamp)
	assert.Equal(t, "dogschool:Dog", e.OriginatorTopic)
	assert.True(t, e.IsCreation())
	assert.Equal(t, Registered{Name: "Fido"}, e.Data)
}

type Money struct {
	Amount   decimal.Decimal
	Currency string
}

type Everything struct {
	ID       uuid.UUID
	Amount   decimal.Decimal
	At       time.Time
	Local    time.Time
	Ptr      *int
	NilPtr   *string
	Items    []Money
	Nil      []string
	Empty    []string
	Tags     map[string]uuid.UUID
	Any      any
	AnyList  []any
	Float    float64
	Whole    float64
	Small    int8
	Big      uint64
	Text     string
	OrderID  string
	Renamed  string `json:"other_name"`
	Ignored  string `json:"-"`
	Fixed    [2]int
	Nested   struct{ When time.Time }
	Bytes    []byte
	MaybeAmt *decimal.Decimal
}

func TestTranscoderRoundTrip(t *testing.T) {
	types := es.NewTypes()
	seven := 7
	amt := decimal.RequireFromString("-0.001")
	v := Everything{
		ID:      es.NameID("/x"),
		Amount:  decimal.RequireFromString("1.50"),
		At:      fidoTime,
		Local:   time.Date(2020, 1, 2, 3, 4, 5, 123456789, time.FixedZone("", 5*3600+30*60)),
		Ptr:     &seven,
		Items:   []Money{{decimal.RequireFromString("10.00"), "EUR"}, {decimal.NewFromBigInt(big.NewInt(12345), -3), "GBP"}},
		Empty:   []string{},
		Tags:    map[string]uuid.UUID{"b": es.NameID("/b"), "a": es.NameID("/a")},
		Any:     map[string]any{"n": int64(1), "f": 1.5, "id": es.NameID("/y"), "l": []any{"s", true, nil}},
		AnyList: []any{int64(-3), 2.0, "x"},
		Float:   3.25, Whole: 2, Small: -8, Big: 1 << 63,
		Text:    "quote \" backslash \\ newline \n tab \t nul \x00 é ✓ 😀 <&>",
		OrderID: "o1", Renamed: "r", Ignored: "not stored",
		Fixed:    [2]int{1, 2},
		Bytes:    []byte{0, 255},
		MaybeAmt: &amt,
	}
	v.Nested.When = fidoTime
	b, err := types.Encode(v)
	require.NoError(t, err)
	s := string(b)
	for _, want := range []string{
		`"amount":{"_type_":"decimal_str","_data_":"1.50"}`,
		`"id":{"_type_":"uuid_hex","_data_":"` + strings.ReplaceAll(es.NameID("/x").String(), "-", "") + `"}`,
		`"local":{"_type_":"datetime_iso","_data_":"2020-01-02T03:04:05.123456789+05:30"}`,
		`"nil_ptr":null`, `"nil":null`, `"empty":[]`, `"whole":2.0`, `"float":3.25`,
		`"order_id":"o1"`, `"other_name":"r"`,
		`é ✓ 😀 <&>"`, `quote \" backslash \\ newline \n tab \t nul \u0000`,
		`"tags":{"a":{"_type_":"uuid_hex"`,
	} {
		assert.Contains(t, s, want)
	}
	assert.NotContains(t, s, "not stored")
	assert.NotContains(t, s, " :")

	var got Everything
	require.NoError(t, types.Decode(b, &got))
	v.Ignored = ""
	assert.True(t, v.Local.Equal(got.Local))
	got.Local, v.Local = time.Time{}, time.Time{}
	assert.Equal(t, v, got)
	assert.Equal(t, "1.50", got.Amount.StringFixed(2))
	assert.Equal(t, int32(-2), got.Amount.Exponent(), "scale kept")
}

func TestTranscoderTaggedObjects(t *testing.T) {
	types := es.NewTypes()
	tests := []struct {
		name string
		in   string
		want any
		err  error
	}{
		{"one of two keys stays plain", `{"_type_":"uuid_hex"}`, map[string]any{"_type_": "uuid_hex"}, nil},
		{"three keys stay plain", `{"_type_":"x","_data_":1,"y":2}`, map[string]any{"_type_": "x", "_data_": int64(1), "y": int64(2)}, nil},
		{"tagged uuid", `{"_type_":"uuid_hex","_data_":"3b1d60bde7425dc1a743a05f3d78043b"}`, es.NameID("/counters/x"), nil},
		{"Z accepted", `{"_type_":"datetime_iso","_data_":"2026-11-28T11:55:00.385840Z"}`, fidoTime, nil},
		{"no fraction", `{"_data_":"2026-11-28T11:55:00+00:00","_type_":"datetime_iso"}`, fidoTime.Truncate(time.Second), nil},
		{"unknown tag", `{"_type_":"complex","_data_":"1+2j"}`, nil, es.ErrTranscodingNotRegistered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got any
			err := types.Decode([]byte(tt.in), &got)
			if tt.err != nil {
				assert.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}

	_, err := types.Encode(struct{ C complex128 }{1})
	assert.ErrorIs(t, err, es.ErrTranscodingNotRegistered)
	_, err = types.Encode([]any{map[string]any{"deep": make(chan int)}})
	assert.ErrorIs(t, err, es.ErrTranscodingNotRegistered, "unregistered type at any depth")
}

// Point is a custom type stored through a registered transcoding.
type Point struct{ X, Y int }

type Shape struct {
	Corners []Point
	Centre  any
}

func TestCustomTranscoding(t *testing.T) {
	types := es.NewTypes()
	require.NoError(t, es.RegisterTranscoding(types, "point",
		func(p Point) (any, error) { return []any{p.X, p.Y}, nil },
		func(data any) (Point, error) {
			xy, ok := data.([]any)
			if !ok || len(xy) != 2 {
				return Point{}, errors.New("want [x, y]")
			}
			return Point{int(xy[0].(int64)), int(xy[1].(int64))}, nil
		}))
	assert.ErrorIs(t, es.RegisterTranscoding(types, "uuid_hex",
		func(uuid.UUID) (any, error) { return nil, nil }, func(any) (uuid.UUID, error) { return uuid.Nil, nil }), es.ErrArgument)

	v := Shape{Corners: []Point{{1, 2}, {3, 4}}, Centre: Point{2, 3}}
	b, err := types.Encode(v)
	require.NoError(t, err)
	assert.Equal(t, `{"corners":[{"_type_":"point","_data_":[1,2]},{"_type_":"point","_data_":[3,4]}],"centre":{"_type_":"point","_data_":[2,3]}}`, string(b))
	var got Shape
	require.NoError(t, types.Decode(b, &got))
	assert.Equal(t, v, got)
}

func TestUnknownTopicOnRead(t *testing.T) {
	m := es.NewMapper(dogTypes())
	_, err := m.ToEvent(recorder.StoredEvent{OriginatorID: es.NewID().String(), OriginatorVersion: 1, Topic: "gone:Type", State: []byte(`{}`)})
	assert.ErrorIs(t, err, es.ErrDeserialisation)
	assert.ErrorIs(t, err, es.ErrTopicNotRegistered)
	assert.Contains(t, err.Error(), `"gone:Type"`)

	_, err = m.ToEvent(recorder.StoredEvent{OriginatorID: es.NewID().String(), OriginatorVersion: 2, Topic: "dogschool:Dog.TrickAdded", State: []byte(`{"trick":`)})
	assert.ErrorIs(t, err, es.ErrDeserialisation)
}

func TestAliasesReadRenamedTypes(t *testing.T) {
	// History written when the type was called "dogschool:Dog.Trick".
	old := es.NewTypes()
	es.MustRegister[TrickAdded](old, "dogschool:Dog.Trick")
	s, err := es.NewMapper(old).FromEvent(es.Event{OriginatorID: es.NewID(), OriginatorVersion: 2, Timestamp: fidoTime, Data: TrickAdded{"sit"}})
	require.NoError(t, err)

	types := es.NewTypes()
	es.MustRegister[TrickAdded](types, "dogschool:Dog.TrickAdded", es.Aliases("dogschool:Dog.Trick"))
	e, err := es.NewMapper(types).ToEvent(s)
	require.NoError(t, err)
	assert.Equal(t, TrickAdded{"sit"}, e.Data)
}

// Upcasting: TrickAddedV3 was {trick} (v1), then gained "times" (v2), then
// "learned" (v3).
type TrickAddedV3 struct {
	Trick   string
	Times   int
	Learned bool
}

func TestUpcasting(t *testing.T) {
	v1 := es.NewTypes()
	es.MustRegister[TrickAdded](v1, "dogschool:Dog.TrickAdded")
	s, err := es.NewMapper(v1).FromEvent(es.Event{OriginatorID: es.NewID(), OriginatorVersion: 2, Timestamp: fidoTime, Data: TrickAdded{"sit"}})
	require.NoError(t, err)
	assert.NotContains(t, string(s.State), "class_version")

	v3 := es.NewTypes()
	es.MustRegister[TrickAddedV3](v3, "dogschool:Dog.TrickAdded", es.Upcasters(
		func(st map[string]any) error { st["times"] = int64(1); return nil },
		func(st map[string]any) error { st["learned"] = st["times"].(int64) > 0; return nil },
	))
	m3 := es.NewMapper(v3)
	e, err := m3.ToEvent(s)
	require.NoError(t, err)
	assert.Equal(t, TrickAddedV3{Trick: "sit", Times: 1, Learned: true}, e.Data)
	assert.Equal(t, fidoTime, e.Timestamp)

	s3, err := m3.FromEvent(es.Event{OriginatorID: es.NewID(), OriginatorVersion: 2, Timestamp: fidoTime, Data: TrickAddedV3{"roll", 0, false}})
	require.NoError(t, err)
	assert.Contains(t, string(s3.State), `"class_version":3`)
	e, err = m3.ToEvent(s3)
	require.NoError(t, err)
	assert.Equal(t, TrickAddedV3{"roll", 0, false}, e.Data, "current state is not upcast")
}

func TestEnvelopeTimestampForms(t *testing.T) {
	m := es.NewMapper(dogTypes())
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-11-28T11:55:00.385840+00:00", fidoTime, true},
		{"2026-11-28T11:55:00.385840Z", fidoTime, true},
		{"2026-11-28T11:55:00+00:00", fidoTime.Truncate(time.Second), true},
		{"2026-11-28T11:55:00.5+00:00", fidoTime.Truncate(time.Second).Add(500 * time.Millisecond), true},
		{"2026-11-28T17:25:00.385840+05:30", fidoTime, true},
		{"2026-02-30T11:55:00+00:00", time.Time{}, false},
		{"2026-11-28 11:55:00", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			state := `{"timestamp":{"_type_":"datetime_iso","_data_":"` + tt.in + `"},"trick":"sit"}`
			e, err := m.ToEvent(recorder.StoredEvent{OriginatorID: es.NewID().String(), OriginatorVersion: 2, Topic: "dogschool:Dog.TrickAdded", State: []byte(state)})
			if !tt.ok {
				assert.ErrorIs(t, err, es.ErrDeserialisation)
				return
			}
			require.NoError(t, err)
			assert.True(t, tt.want.Equal(e.Timestamp), "got %v", e.Timestamp)
		})
	}
}
