package grpcapp

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/eventsourcing-go/eventsourcing"
)

// fuzzItem is a struct argument, as commands take them.
type fuzzItem struct {
	SKU    string
	Qty    int
	Price  decimal.Decimal
	Labels map[string]string
}

// fuzzApp has methods of no, one and several arguments of the kinds
// callers pass.
type fuzzApp struct{}

func (fuzzApp) Ping(context.Context) error                                        { return nil }
func (fuzzApp) GetOrder(context.Context, uuid.UUID) (string, error)               { return "", nil }
func (fuzzApp) Count(context.Context, int64, bool) (int, error)                   { return 0, nil }
func (fuzzApp) Place(context.Context, string, []fuzzItem, *time.Time) error       { return nil }
func (fuzzApp) Tag(context.Context, map[string]any, []byte, float64, uint8) error { return nil }

// FuzzDecodeArgs decodes arbitrary bytes as the arguments of methods of
// zero to four parameters: the values or an ErrArgument error, never a
// panic, and exactly one value per parameter.
func FuzzDecodeArgs(f *testing.F) {
	f.Add("GetOrder", []byte(`["0b1e6a3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"]`))
	f.Add("GetOrder", []byte(`[{"_type_":"uuid_hex","_data_":"0b1e6a3a1c2d4e5f8a9b0c1d2e3f4a5b"}]`))
	f.Add("Count", []byte(` [ 42 , true ] `))
	f.Add("Place", []byte(`["o1",[{"sku":"a","qty":2,"price":{"_type_":"decimal_str","_data_":"1.50"},"labels":{"k":"v"}}],null]`))
	f.Add("Tag", []byte(`[{"a":[1,{"b":null}]},"AP8=",1e308,255]`))
	f.Add("Ping", []byte(`null`))
	f.Add("Ping", []byte(``))
	f.Add("GetOrder", []byte(`42`))
	f.Add("Count", []byte(`[1,"\u0000",]`))
	f.Add("Place", []byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`))
	methods, err := methodsOf(fuzzApp{}, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	types := eventsourcing.NewTypes()
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		m := methods[name]
		if m == nil {
			m = methods["Place"]
		}
		vals, err := m.decodeArgs(types, data)
		if err != nil {
			if !errors.Is(err, eventsourcing.ErrArgument) {
				t.Fatalf("%s(%q): error does not match ErrArgument: %v", m.name, data, err)
			}
			return
		}
		if len(vals) != len(m.in)+1 {
			t.Fatalf("%s(%q): %d values for %d parameters", m.name, data, len(vals)-1, len(m.in))
		}
		for i, v := range vals[1:] {
			if !v.IsValid() || v.Type() != m.in[i] {
				t.Fatalf("%s(%q): argument %d is %v, want %s", m.name, data, i+1, v, m.in[i])
			}
		}
	})
}
