package grpcapp

import (
	"context"
	"encoding/json"
	"fmt"
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

// DefaultQueryPrefixes are the method-name prefixes that mark a query when no
// Queries option says otherwise. Queries may be retried by clients; every
// other method is a command and is never re-sent once the server may have
// run it.
var DefaultQueryPrefixes = []string{"Get", "Is", "Has", "List", "Find", "Count", "Select"}

// methodsOf builds the allow-list of app's callable methods: the exported
// methods of its own type whose first parameter is a context.Context.
// Methods promoted from embedded fields (the framework's Save, Close,
// Repository, Log ...) are left out, because they were written for the
// process that owns the application, not for its remote callers.
func methodsOf(app any, only, queries []string) (map[string]*method, error) {
	v := reflect.ValueOf(app)
	if !v.IsValid() {
		return nil, fmt.Errorf("%w: nil application", eventsourcing.ErrArgument)
	}
	t := v.Type()
	excluded := map[string]bool{}
	for _, ft := range []reflect.Type{frameworkT, processT} {
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
		if excluded[m.Name] || (len(only) > 0 && !slices.Contains(only, m.Name)) {
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
		if len(queries) > 0 {
			me.query = slices.Contains(queries, m.Name)
		} else {
			me.query = slices.ContainsFunc(DefaultQueryPrefixes, func(p string) bool { return hasWordPrefix(m.Name, p) })
		}
		methods[m.Name] = me
	}
	for _, name := range only {
		if methods[name] == nil {
			return nil, fmt.Errorf("%w: %s has no callable method %q (exported, context first, own type)", eventsourcing.ErrArgument, t, name)
		}
	}
	return methods, nil
}

// hasWordPrefix reports whether name starts with the word p: "GetOrder" and
// "Get" do, "Getaway" does not.
func hasWordPrefix(name, p string) bool {
	if !strings.HasPrefix(name, p) {
		return false
	}
	rest := name[len(p):]
	return rest == "" || (rest[0] >= 'A' && rest[0] <= 'Z')
}

// decodeArgs decodes a JSON array into the method's parameter values. Each
// element is decoded by the application's transcoding first (tagged UUIDs,
// decimals, times, registered types), then, failing that, by encoding/json,
// so that a command line can pass a UUID as a plain string.
func (m *method) decodeArgs(types *eventsourcing.Types, data []byte) ([]reflect.Value, error) {
	var raw []json.RawMessage
	if trimmed := strings.TrimSpace(string(data)); trimmed != "" && trimmed != "null" {
		if err := json.Unmarshal(data, &raw); err != nil {
			return nil, fmt.Errorf("%w: %s: arguments must be a JSON array: %v", eventsourcing.ErrArgument, m.name, err)
		}
	}
	if len(raw) != len(m.in) {
		return nil, fmt.Errorf("%w: %s takes %d argument(s) %v, got %d", eventsourcing.ErrArgument, m.name, len(m.in), m.inNames, len(raw))
	}
	vals := make([]reflect.Value, len(m.in))
	for i, t := range m.in {
		p := reflect.New(t)
		if err := types.Decode(raw[i], p.Interface()); err != nil {
			p = reflect.New(t)
			if jerr := json.Unmarshal(raw[i], p.Interface()); jerr != nil {
				return nil, fmt.Errorf("%w: %s argument %d (%s): %v", eventsourcing.ErrArgument, m.name, i+1, t, err)
			}
		}
		vals[i] = p.Elem()
	}
	return vals, nil
}

// invoke runs the method, turning a panic into an error: a bug in one
// command must not take the server, and every other caller, down with it.
func (m *method) invoke(ctx context.Context, args []reflect.Value) (out []reflect.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{method: m.name, value: r}
		}
	}()
	in := make([]reflect.Value, 0, len(args)+1)
	in = append(in, reflect.ValueOf(ctx))
	in = append(in, args...)
	out = m.fn.Call(in)
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
