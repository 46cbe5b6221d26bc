package codec

import (
	"encoding/hex"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
)

// The JSON transcoder. State is compact UTF-8 JSON with non-ASCII characters
// written raw, as the reference writes it. Struct fields are stored under their
// `json` tag name, else their Go name in snake_case (OrderID → "order_id"), so
// that Go and Python applications can read each other's events. Values that
// JSON cannot hold are stored as tagged objects {"_type_": name, "_data_": data}:
// uuid.UUID ("uuid_hex"), decimal.Decimal ("decimal_str", scale kept) and
// time.Time ("datetime_iso") are built in; applications add more with
// RegisterTranscoding. Encoding and decoding go straight between Go values and
// bytes through per-type plans built once, with no intermediate tree.
//
// Go-specific choices: a nil slice or map is stored as null and read back as
// nil, an empty one as [] or {} (so round trips are exact); map keys are sorted;
// numbers decoded without a Go type (into `any`) are int64 when integral and
// float64 otherwise, and floats are always written with a decimal point or
// exponent so that they stay floats.

// Built-in tag names.
const (
	TagUUID     = "uuid_hex"
	TagDecimal  = "decimal_str"
	TagDatetime = "datetime_iso"
)

var (
	uuidType    = reflect.TypeFor[uuid.UUID]()
	decimalType = reflect.TypeFor[decimal.Decimal]()
	timeType    = reflect.TypeFor[time.Time]()
)

func builtinTag(name string) bool {
	return name == TagUUID || name == TagDecimal || name == TagDatetime
}

func builtinTagType(t reflect.Type) bool {
	return t == uuidType || t == decimalType || t == timeType
}

// Names the envelope uses in stored state; payload fields may not take them.
var (
	eventEnvelopeNames     = []string{"timestamp", "originator_topic", "originator_id", "originator_version", "class_version"}
	aggregateEnvelopeNames = []string{"_created_on", "_modified_on", "created_on", "modified_on", "class_version"}
)

// checkEnvelopeFields checks that t's fields take no name of the envelope
// of an aggregate's snapshot (aggregate) or of an event (otherwise).
func checkEnvelopeFields(t reflect.Type, aggregate bool) error {
	reserved := eventEnvelopeNames
	if aggregate {
		reserved = aggregateEnvelopeNames
	}
	for _, f := range fieldsOf(t).fields {
		if slices.Contains(reserved, f.name) {
			return fmt.Errorf("%w: field %q is reserved for the event envelope", ErrArgument, f.name)
		}
	}
	return nil
}

// ---- struct field plans ----

type fieldInfo struct {
	name  string
	key   []byte // `"name":`
	index []int
	typ   reflect.Type
}

type structPlan struct {
	fields []fieldInfo
	byName map[string]int
}

var plans sync.Map // reflect.Type -> *structPlan

func fieldsOf(t reflect.Type) *structPlan {
	if p, ok := plans.Load(t); ok {
		return p.(*structPlan)
	}
	p := &structPlan{byName: map[string]int{}}
	collectFields(t, nil, p)
	actual, _ := plans.LoadOrStore(t, p)
	return actual.(*structPlan)
}

func collectFields(t reflect.Type, index []int, p *structPlan) {
	for i := range t.NumField() {
		f := t.Field(i)
		idx := append(slices.Clip(index), i)
		if f.Anonymous {
			// An embedded struct without a json tag is flattened; the
			// aggregate base (eventsourcing.Aggregate), whose fields are all
			// unexported, so contributes nothing: the envelope stores it.
			ft := f.Type
			if ft.Kind() == reflect.Struct && f.Tag.Get("json") == "" && !builtinTagType(ft) {
				collectFields(ft, idx, p) // flatten embedded structs, as encoding/json does
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		var name string
		if tag, ok := f.Tag.Lookup("json"); ok {
			tagName, _, _ := strings.Cut(tag, ",")
			if tagName == "-" {
				continue
			}
			if tagName != "" {
				name = tagName
			} else {
				name = snakeCase(f.Name)
			}
		} else {
			name = snakeCase(f.Name)
		}
		if _, dup := p.byName[name]; dup {
			continue // the shallower field wins
		}
		key := appendString(nil, name)
		key = append(key, ':')
		p.byName[name] = len(p.fields)
		p.fields = append(p.fields, fieldInfo{name: name, key: key, index: idx, typ: f.Type})
	}
}

// snakeCase turns a Go field name into the reference's attribute style:
// Name → name, OrderID → order_id, HTTPServer → http_server.
func snakeCase(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 {
				prev := rs[i-1]
				nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
				if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
					b.WriteByte('_')
				}
			}
			b.WriteRune(unicode.ToLower(r))
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// ---- encoding ----

type encodeFunc func(t *Registry, b []byte, v reflect.Value) ([]byte, error)

func (t *Registry) encoderFor(rt reflect.Type) encodeFunc {
	if f, ok := t.enc.Load(rt); ok {
		return f.(encodeFunc)
	}
	// Recursive types: publish an indirection first, as encoding/json does.
	var (
		wg sync.WaitGroup
		f  encodeFunc
	)
	wg.Add(1)
	fi, loaded := t.enc.LoadOrStore(rt, encodeFunc(func(t *Registry, b []byte, v reflect.Value) ([]byte, error) {
		wg.Wait()
		return f(t, b, v)
	}))
	if loaded {
		return fi.(encodeFunc)
	}
	f = t.newEncoder(rt)
	wg.Done()
	t.enc.Store(rt, f)
	return f
}

func unsupported(rt reflect.Type) encodeFunc {
	return func(_ *Registry, b []byte, _ reflect.Value) ([]byte, error) {
		return b, fmt.Errorf("%w: type %s", ErrTranscodingNotRegistered, rt)
	}
}

func (t *Registry) newEncoder(rt reflect.Type) encodeFunc {
	if tc := t.transcodingFor(rt); tc != nil {
		return func(t *Registry, b []byte, v reflect.Value) ([]byte, error) {
			data, err := tc.encode(v)
			if err != nil {
				return b, fmt.Errorf("transcoding %q: %w", tc.name, err)
			}
			b = appendTagHead(b, tc.name)
			if data == nil {
				b = append(b, "null"...)
			} else if b, err = t.encoderFor(reflect.TypeOf(data))(t, b, reflect.ValueOf(data)); err != nil {
				return b, err
			}
			return append(b, '}'), nil
		}
	}
	switch rt {
	case uuidType:
		return func(_ *Registry, b []byte, v reflect.Value) ([]byte, error) {
			id := v.Interface().(uuid.UUID)
			b = appendTagHead(b, TagUUID)
			b = append(b, '"')
			b = hex.AppendEncode(b, id[:])
			return append(b, '"', '}'), nil
		}
	case decimalType:
		return func(_ *Registry, b []byte, v reflect.Value) ([]byte, error) {
			b = appendTagHead(b, TagDecimal)
			b = appendString(b, decimalString(v.Interface().(decimal.Decimal)))
			return append(b, '}'), nil
		}
	case timeType:
		return func(_ *Registry, b []byte, v reflect.Value) ([]byte, error) {
			return appendTime(b, v.Interface().(time.Time)), nil
		}
	}
	switch rt.Kind() {
	case reflect.Bool:
		return func(_ *Registry, b []byte, v reflect.Value) ([]byte, error) {
			return strconv.AppendBool(b, v.Bool()), nil
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return func(_ *Registry, b []byte, v reflect.Value) ([]byte, error) {
			return strconv.AppendInt(b, v.Int(), 10), nil
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return func(_ *Registry, b []byte, v reflect.Value) ([]byte, error) {
			return strconv.AppendUint(b, v.Uint(), 10), nil
		}
	case reflect.Float32, reflect.Float64:
		bits := rt.Bits()
		return func(_ *Registry, b []byte, v reflect.Value) ([]byte, error) {
			return appendFloat(b, v.Float(), bits)
		}
	case reflect.String:
		return func(_ *Registry, b []byte, v reflect.Value) ([]byte, error) {
			return appendString(b, v.String()), nil
		}
	case reflect.Pointer:
		elem := rt.Elem()
		return func(t *Registry, b []byte, v reflect.Value) ([]byte, error) {
			if v.IsNil() {
				return append(b, "null"...), nil
			}
			return t.encoderFor(elem)(t, b, v.Elem())
		}
	case reflect.Interface:
		return func(t *Registry, b []byte, v reflect.Value) ([]byte, error) {
			if v.IsNil() {
				return append(b, "null"...), nil
			}
			e := v.Elem()
			return t.encoderFor(e.Type())(t, b, e)
		}
	case reflect.Slice, reflect.Array:
		elem := rt.Elem()
		isSlice := rt.Kind() == reflect.Slice
		return func(t *Registry, b []byte, v reflect.Value) ([]byte, error) {
			if isSlice && v.IsNil() {
				return append(b, "null"...), nil
			}
			enc := t.encoderFor(elem)
			b = append(b, '[')
			var err error
			for i := range v.Len() {
				if i > 0 {
					b = append(b, ',')
				}
				if b, err = enc(t, b, v.Index(i)); err != nil {
					return b, err
				}
			}
			return append(b, ']'), nil
		}
	case reflect.Map:
		if rt.Key().Kind() != reflect.String {
			return unsupported(rt)
		}
		elem := rt.Elem()
		return func(t *Registry, b []byte, v reflect.Value) ([]byte, error) {
			if v.IsNil() {
				return append(b, "null"...), nil
			}
			keys := v.MapKeys()
			slices.SortFunc(keys, func(x, y reflect.Value) int { return strings.Compare(x.String(), y.String()) })
			enc := t.encoderFor(elem)
			b = append(b, '{')
			var err error
			for i, k := range keys {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendString(b, k.String())
				b = append(b, ':')
				if b, err = enc(t, b, v.MapIndex(k)); err != nil {
					return b, err
				}
			}
			return append(b, '}'), nil
		}
	case reflect.Struct:
		c := t.codecOf(rt)
		return func(t *Registry, b []byte, v reflect.Value) ([]byte, error) {
			b = append(b, '{')
			b, err := t.appendFields(b, v, c, false)
			if err != nil {
				return b, err
			}
			return append(b, '}'), nil
		}
	}
	return unsupported(rt)
}

// appendFields appends the codec's fields of v as `"name":value` pairs,
// starting with a comma when comma is set.
func (t *Registry) appendFields(b []byte, v reflect.Value, c *structCodec, comma bool) ([]byte, error) {
	for i := range c.fields {
		f := &c.fields[i]
		if comma || i > 0 {
			b = append(b, ',')
		}
		b = append(b, f.key...)
		fv := v
		for _, x := range f.index {
			fv = fv.Field(x)
		}
		// Strings are most fields of most payloads: append them without
		// the call through the encoder.
		if f.kind == inlineString {
			b = appendString(b, fv.String())
			continue
		}
		var err error
		if b, err = f.enc(t, b, fv); err != nil {
			return b, fmt.Errorf("field %q: %w", f.name, err)
		}
	}
	return b, nil
}

func appendTagHead(b []byte, name string) []byte {
	b = append(b, `{"_type_":`...)
	b = appendString(b, name)
	return append(b, `,"_data_":`...)
}

// appendTime appends t as a datetime_iso tagged value.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, `{"_type_":"datetime_iso","_data_":"`...)
	b = appendISO(b, t)
	return append(b, `"}`...)
}

// appendISO appends YYYY-MM-DDTHH:MM:SS[.ffffff]+HH:MM, the reference's
// isoformat; nanoseconds are kept (nine digits) when they are not whole
// microseconds, so that Go values round-trip exactly.
func appendISO(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		b = t.AppendFormat(b, "2006-01-02T15:04:05")
	} else {
		// Every event has a timestamp: writing the digits directly is
		// several times cheaper than parsing a layout.
		hour, minute, sec := t.Clock()
		b = append(b, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-')
		b = append2(b, int(month))
		b = append(b, '-')
		b = append2(b, day)
		b = append(b, 'T')
		b = append2(b, hour)
		b = append(b, ':')
		b = append2(b, minute)
		b = append(b, ':')
		b = append2(b, sec)
	}
	if ns := t.Nanosecond(); ns != 0 {
		if ns%1000 == 0 {
			b = append(b, '.')
			b = appendPadded(b, ns/1000, 6)
		} else {
			b = append(b, '.')
			b = appendPadded(b, ns, 9)
		}
	}
	// The offset in minutes as the layout "-07:00" writes it: seconds are
	// dropped, and an offset of less than a minute is +00:00.
	_, offset := t.Zone()
	zone := offset / 60
	if zone < 0 {
		b = append(b, '-')
		zone = -zone
	} else {
		b = append(b, '+')
	}
	b = append2(b, zone/60)
	b = append(b, ':')
	return append2(b, zone%60)
}

// append2 appends n (0 ≤ n < 100) as two digits.
func append2(b []byte, n int) []byte {
	return append(b, byte('0'+n/10), byte('0'+n%10))
}

func appendPadded(b []byte, n, width int) []byte {
	var buf [9]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, buf[:width]...)
}

func parseISO(s string) (time.Time, error) {
	t, err := time.Parse("2006-01-02T15:04:05.999999999Z07:00", s)
	if err != nil {
		return time.Time{}, err
	}
	if _, off := t.Zone(); off == 0 {
		t = t.UTC()
	}
	return t, nil
}

// decimalString keeps the scale: 1.50 stays "1.50".
func decimalString(d decimal.Decimal) string {
	if exp := d.Exponent(); exp < 0 {
		return d.StringFixed(-exp)
	}
	return d.String()
}

func appendFloat(b []byte, f float64, bits int) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, fmt.Errorf("%w: %v is not a JSON number", ErrTranscodingNotRegistered, f)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, bits)
	// Keep floats recognisable as floats, as the reference writes 1.0.
	for _, c := range b[start:] {
		if c == '.' || c == 'e' || c == 'E' {
			return b, nil
		}
	}
	return append(b, '.', '0'), nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string: quotes, backslashes and control
// characters escaped, everything else (including non-ASCII) raw; invalid UTF-8
// becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\ufffd"...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Encode encodes v with the application's transcodings, as event state is
// encoded. It is exported for tools and tests that store values by the same rules.
func (t *Registry) Encode(v any) ([]byte, error) {
	if v == nil {
		return []byte("null"), nil
	}
	return t.encoderFor(reflect.TypeOf(v))(t, nil, reflect.ValueOf(v))
}

// Decode decodes data into the value ptr points to, by the rules of Encode.
func (t *Registry) Decode(data []byte, ptr any) error {
	v := reflect.ValueOf(ptr)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("decode: %w: want a non-nil pointer, got %T", ErrArgument, ptr)
	}
	d := &decoder{t: t, data: data}
	d.heap = d
	if err := t.decoderFor(v.Elem().Type())(d, v.Elem()); err != nil {
		return err
	}
	return d.end()
}
