package codec

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
)

// Money and Everything are values of every kind the codec knows, as
// payloads hold them.
type money struct {
	Amount   decimal.Decimal
	Currency string
}

type everything struct {
	ID       uuid.UUID
	Amount   decimal.Decimal
	At       time.Time
	Local    time.Time
	Ptr      *int
	NilPtr   *string
	Items    []money
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

// fuzzValue is a value built from fuzz input, of the kinds the codec writes.
type fuzzValue struct {
	ID     uuid.UUID
	Amount decimal.Decimal
	At     time.Time
	Text   string
	N      int64
	U      uint64
	Small  int8
	F      float64
	Bytes  []byte
	Ptr    *int64
	List   []string
	Tags   map[string]string
	Nested struct{ Name string }
}

// FuzzCodecRoundTrip encodes values built from fuzz input and decodes them:
// what the JSON codec writes it reads back unchanged.
func FuzzCodecRoundTrip(f *testing.F) {
	f.Add("Fido", int64(-3), uint64(math.MaxUint64), int8(-8), 1.5, []byte{0, 255}, int64(150), int32(-2), int64(1764330900385840000), "k")
	f.Add("quote \" backslash \\ nul \x00 é ✓ 😀 <&>\u2028", int64(math.MinInt64), uint64(0), int8(127), math.Copysign(0, -1), []byte(nil), int64(0), int32(0), int64(0), "")
	f.Add("", int64(1), uint64(1), int8(0), 1e300, []byte("x"), int64(-1), int32(-30), int64(-1), "\t")
	f.Fuzz(func(t *testing.T, text string, n int64, u uint64, small int8, fl float64, b []byte, coef int64, exp int32, nanos int64, key string) {
		if math.IsNaN(fl) || math.IsInf(fl, 0) {
			return // JSON has no such numbers
		}
		text, key = strings.ToValidUTF8(text, "\uFFFD"), strings.ToValidUTF8(key, "\uFFFD")
		v := fuzzValue{
			ID:     uuid.NewSHA1(uuid.NameSpaceOID, []byte(text)),
			Amount: decimal.New(coef, exp%40),
			At:     time.Unix(0, nanos).UTC(),
			Text:   text, N: n, U: u, Small: small, F: fl, Bytes: b,
			Ptr:  &n,
			List: []string{text, key},
			Tags: map[string]string{key: text},
		}
		v.Nested.Name = key
		types := New()
		data, err := types.Encode(v)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		var got fuzzValue
		if err := types.Decode(data, &got); err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		if !got.At.Equal(v.At) || !got.Amount.Equal(v.Amount) {
			t.Fatalf("time or decimal changed: %v %v, got %v %v", v.At, v.Amount, got.At, got.Amount)
		}
		got.At, v.At, got.Amount, v.Amount = time.Time{}, time.Time{}, decimal.Decimal{}, decimal.Decimal{}
		if len(v.Bytes) == 0 && len(got.Bytes) == 0 {
			got.Bytes, v.Bytes = nil, nil
		}
		if got.ID != v.ID || got.Text != v.Text || got.N != v.N || got.U != v.U || got.Small != v.Small ||
			got.F != v.F || !bytes.Equal(got.Bytes, v.Bytes) || got.Ptr == nil || *got.Ptr != *v.Ptr ||
			len(got.List) != 2 || got.List[0] != text || got.List[1] != key || got.Tags[key] != text || len(got.Tags) != 1 ||
			got.Nested != v.Nested {
			t.Fatalf("round trip changed the value:\n%s\nwant %+v\ngot  %+v", data, v, got)
		}
	})
}

// FuzzCodecDecode decodes arbitrary bytes into a struct of every kind the
// codec knows, and into an interface: an error or a value, never a panic;
// what decodes into an interface encodes again.
func FuzzCodecDecode(f *testing.F) {
	f.Add([]byte(`{"id":{"_type_":"uuid_hex","_data_":"00000000000000000000000000000001"},"amount":{"_type_":"decimal_str","_data_":"1.50"},"at":{"_type_":"datetime_iso","_data_":"2026-11-28T11:55:00.385840+00:00"}}`))
	f.Add([]byte(`{"items":[{"amount":{"_type_":"decimal_str","_data_":"-0.001"},"currency":"EUR"}],"tags":{"a":{"_type_":"uuid_hex","_data_":"0123456789abcdef0123456789abcdef"}},"any":{"n":1,"l":[true,null,"s",1.5e3]}}`))
	f.Add([]byte(`{"text":"\u00e9\ud83d\ude00\\\"","fixed":[1,2],"bytes":"AP8=","small":-8,"big":18446744073709551615,"whole":2.0}`))
	f.Add([]byte(`[[[[[[[[[[]]]]]]]]]]`))
	f.Add([]byte(`{"local":{"_type_":"datetime_iso","_data_":"2020-01-02T03:04:05.123456789+05:30"},"maybe_amt":null,"nested":{"when":{"_type_":"datetime_iso","_data_":"0001-01-01T00:00:00"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		types := New()
		var v everything
		_ = types.Decode(data, &v)
		var a any
		if err := types.Decode(data, &a); err == nil {
			if _, err := types.Encode(a); err != nil {
				t.Logf("decoded value does not encode again: %v", err)
			}
		}
		var m map[string]any
		_ = types.Decode(data, &m)
	})
}
