package grpcapp

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/system"
)

// method is one callable command or query of an application.
type method struct {
	name    string
	fn      reflect.Value // bound to the application value
	in      []reflect.Type
	out     []reflect.Type // without the trailing error
	hasErr  bool
	query   bool
	inNames []string
}

var (
	contextType = reflect.TypeFor[context.Context]()
	errorType   = reflect.TypeFor[error]()
	frameworkT  = reflect.TypeFor[*eventsourcing.Application]()
	// A process application's Policy is for its runner, not for callers.
	processT = reflect.TypeFor[system.ProcessApplication]()
)

// QueryDeclarer is implemented by an application, or by a projection's
// view, that has queries: the methods it names are queries, which clients
// may send again when a call fails without an answer (a missed deadline, a
// lost connection). Every other method is a command and is never re-sent
// once the server may have run it, whatever its name. Naming a method that
// is not callable fails the server's construction. QueryMethods counts
// only as a method of the application's own type: promoted from an
// embedded field, it is left out, as the embedded type's methods are.
//
//	func (*Orders) QueryMethods() []string { return []string{"GetOrder", "IsOrderPaid"} }
//
// WithQueries declares more queries for one server.
type QueryDeclarer interface {
	QueryMethods() []string
}

// methodsOf builds the allow-list of app's callable methods: the exported
// methods of its own type whose first parameter is a context.Context.
// Methods promoted from embedded fields (the framework's Save, Close,
// Repository, Log ...) are left out, because they were written for the
// process that owns the application, not for its remote callers. The
// methods app declares as queries (QueryDeclarer), and those named in
// queries, are marked as queries; the others are commands.
func methodsOf(app any, only, queries []string, exclude ...reflect.Type) (map[string]*method, error) {
	v := reflect.ValueOf(app)
	if !v.IsValid() {
		return nil, fmt.Errorf("%w: nil application", eventsourcing.ErrArgument)
	}
	t := v.Type()
	excluded := map[string]bool{}
	for _, ft := range append([]reflect.Type{frameworkT, processT}, exclude...) {
		for i := range ft.NumMethod() {
			excluded[ft.Method(i).Name] = true
		}
	}
	st := t
	if st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	if st.Kind() == reflect.Struct {
		for i := range st.NumField() {
			f := st.Field(i)
			if !f.Anonymous {
				continue
			}
			ft := f.Type
			for _, et := range []reflect.Type{ft, reflect.PointerTo(ft)} {
				for j := range et.NumMethod() {
					excluded[et.Method(j).Name] = true
				}
			}
		}
	}
	methods := map[string]*method{}
	for i := range t.NumMethod() {
		m := t.Method(i)
		if excluded[m.Name] {
			continue
		}
		mt := m.Type // includes the receiver
		if mt.NumIn() < 2 || mt.In(1) != contextType {
			continue
		}
		me := &method{name: m.Name, fn: v.Method(i)}
		for j := 2; j < mt.NumIn(); j++ {
			me.in = append(me.in, mt.In(j))
			me.inNames = append(me.inNames, mt.In(j).String())
		}
		if mt.IsVariadic() {
			continue // a JSON array cannot say where the variadic part starts
		}
		for j := range mt.NumOut() {
			o := mt.Out(j)
			if j == mt.NumOut()-1 && o == errorType {
				me.hasErr = true
				break
			}
			me.out = append(me.out, o)
		}
		methods[m.Name] = me
	}
	for _, name := range only {
		if methods[name] == nil {
			return nil, fmt.Errorf("%w: %s has no callable method %q (exported, context first, own type)", eventsourcing.ErrArgument, t, name)
		}
	}
	// Like the callable methods, the declaration must be the type's own: a
	// type that embeds an application serves none of its methods, so it
	// does not inherit its declaration either.
	if d, ok := app.(QueryDeclarer); ok && !excluded["QueryMethods"] {
		queries = append(slices.Clip(queries), d.QueryMethods()...)
	}
	for _, name := range queries {
		m := methods[name]
		if m == nil {
			return nil, fmt.Errorf("%w: %s declares %q a query, but has no callable method of that name (exported, context first, own type)", eventsourcing.ErrArgument, t, name)
		}
		m.query = true
	}
	if len(only) > 0 {
		maps.DeleteFunc(methods, func(name string, _ *method) bool { return !slices.Contains(only, name) })
	}
	return methods, nil
}

// decodeArgs decodes a JSON array into the method's parameter values. Each
// element is decoded by the application's transcoding first (tagged UUIDs,
// decimals, times, registered types), then, failing that, by encoding/json,
// so that a command line can pass a UUID as a plain string.
func (m *method) decodeArgs(types *eventsourcing.Types, data []byte) ([]reflect.Value, error) {
	if d := jsonDepth(data, MaxArgumentDepth); d > MaxArgumentDepth {
		return nil, fmt.Errorf("%w: %s: arguments nested more than %d levels deep", eventsourcing.ErrArgument, m.name, MaxArgumentDepth)
	}
	var spare [4][]byte
	raw, ok := splitArray(data, spare[:0])
	if !ok {
		// Let encoding/json say what is wrong (or decode what the quick
		// split refused).
		var msgs []json.RawMessage
		if trimmed := strings.TrimSpace(string(data)); trimmed != "" && trimmed != "null" {
			if err := json.Unmarshal(data, &msgs); err != nil {
				return nil, fmt.Errorf("%w: %s: arguments must be a JSON array: %v", eventsourcing.ErrArgument, m.name, err)
			}
		}
		raw = raw[:0]
		for _, r := range msgs {
			raw = append(raw, r)
		}
	}
	if len(raw) != len(m.in) {
		return nil, fmt.Errorf("%w: %s takes %d argument(s) %v, got %d", eventsourcing.ErrArgument, m.name, len(m.in), m.inNames, len(raw))
	}
	// The first value is left for the context (see invoke).
	vals := make([]reflect.Value, len(m.in)+1)
	for i, t := range m.in {
		p := reflect.New(t)
		if err := types.Decode(raw[i], p.Interface()); err != nil {
			p = reflect.New(t)
			if jerr := json.Unmarshal(raw[i], p.Interface()); jerr != nil {
				return nil, fmt.Errorf("%w: %s argument %d: want %s, got %s (%v)", eventsourcing.ErrArgument, m.name, i+1, t, describeJSON(raw[i]), jerr)
			}
		}
		vals[i+1] = p.Elem()
	}
	return vals, nil
}

// MaxArgumentDepth is how deeply a call's arguments may nest arrays and
// objects (the argument array itself is the first level); deeper is
// InvalidArgument.
const MaxArgumentDepth = 1000

// jsonDepth returns how deeply data nests arrays and objects, counting no
// further than past limit. Brackets inside strings do not count.
func jsonDepth(data []byte, limit int) int {
	depth, deepest := 0, 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			i = skipString(data, i)
		case '[', '{':
			depth++
			if depth > deepest {
				if deepest = depth; deepest > limit {
					return deepest
				}
			}
		case ']', '}':
			depth--
		}
	}
	return deepest
}

// describeJSON names the kind of a JSON value and shows its start, for
// argument errors: `number 42`, `string "abc"`, `object {"a":...`.
func describeJSON(v []byte) string {
	v = v[skipSpace(v, 0):skipSpaceBack(v)]
	kind := "invalid JSON"
	if len(v) > 0 {
		switch c := v[0]; {
		case c == '{':
			kind = "object"
		case c == '[':
			kind = "array"
		case c == '"':
			kind = "string"
		case c == 't' || c == 'f':
			kind = "boolean"
		case c == 'n':
			kind = "null"
		case c == '-' || c >= '0' && c <= '9':
			kind = "number"
		}
	}
	// At most the first 40 bytes, as valid UTF-8 (status messages are
	// protobuf strings).
	const most = 40
	if len(v) > most {
		return fmt.Sprintf("%s %s... (%d bytes)", kind, strings.ToValidUTF8(string(v[:most]), "\uFFFD"), len(v))
	}
	return fmt.Sprintf("%s %s", kind, strings.ToValidUTF8(string(v), "\uFFFD"))
}

// splitArray appends the elements of the JSON array data to out, without
// copying or decoding them (their decoders check them); empty data and null
// are no elements. It reports false for anything it does not recognise as
// an array, which the caller then hands to encoding/json.
func splitArray(data []byte, out [][]byte) ([][]byte, bool) {
	i := skipSpace(data, 0)
	if i == len(data) {
		return out, true
	}
	if data[i] == 'n' {
		return out, string(data[i:skipSpaceBack(data)]) == "null"
	}
	if data[i] != '[' {
		return out, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return out, skipSpace(data, i+1) == len(data)
	}
	for {
		start, depth := i, 0
	scan:
		for ; i < len(data); i++ {
			switch data[i] {
			case '"':
				i = skipString(data, i)
			case '[', '{':
				depth++
			case ']':
				if depth == 0 {
					break scan
				}
				depth--
			case '}':
				if depth == 0 {
					return out, false
				}
				depth--
			case ',':
				if depth == 0 {
					break scan
				}
			}
		}
		if i >= len(data) {
			return out, false
		}
		end := i
		for end > start && isSpace(data[end-1]) {
			end--
		}
		if end == start {
			return out, false
		}
		out = append(out, data[start:end:end])
		if data[i] == ']' {
			return out, skipSpace(data, i+1) == len(data)
		}
		i = skipSpace(data, i+1)
	}
}

// skipString returns the index of the quote that ends the string starting
// at data[i] (a quote), or len(data) when it does not end.
func skipString(data []byte, i int) int {
	for i++; i < len(data) && data[i] != '"'; i++ {
		if data[i] == '\\' {
			i++
		}
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// skipSpaceBack returns the length of data without trailing white space.
func skipSpaceBack(data []byte) int {
	n := len(data)
	for n > 0 && isSpace(data[n-1]) {
		n--
	}
	return n
}

// invoke runs the method, turning a panic into an error: a bug in one
// command must not take the server, and every other caller, down with it.
func (m *method) invoke(ctx context.Context, args []reflect.Value) (out []reflect.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{method: m.name, value: r}
		}
	}()
	// args[0] is the context's place (see decodeArgs).
	args[0] = reflect.ValueOf(ctx)
	out = m.fn.Call(args)
	if m.hasErr {
		if e := out[len(out)-1]; !e.IsNil() {
			return nil, e.Interface().(error)
		}
		out = out[:len(out)-1]
	}
	return out, nil
}

type panicError struct {
	method string
	value  any
}

func (e *panicError) Error() string { return fmt.Sprintf("%s panicked: %v", e.method, e.value) }

// encodeResult encodes the results: null for none, the value for one, an
// array for several.
func encodeResult(types *eventsourcing.Types, out []reflect.Value) ([]byte, error) {
	switch len(out) {
	case 0:
		return []byte("null"), nil
	case 1:
		return types.Encode(out[0].Interface())
	}
	vals := make([]any, len(out))
	for i, o := range out {
		vals[i] = o.Interface()
	}
	return types.Encode(vals)
}
