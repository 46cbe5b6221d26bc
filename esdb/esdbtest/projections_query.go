package esdbtest

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dop251/goja"
)

// Time limits of the JavaScript of a projection, like the server's
// projection compilation and execution timeouts: a query that loops is
// interrupted and the projection faults, the server goes on.
var (
	jsCompileTimeout = 2 * time.Second
	jsExecTimeout    = time.Second
)

// jsMaxCallStack bounds the recursion of a query's functions.
const jsMaxCallStack = 4096

// errJSTimeout is the interrupt value of a handler that ran too long.
var errJSTimeout = errors.New("the projection's JavaScript did not finish in time")

// handler is one JavaScript function of the query.
type handler = goja.Callable

// querySource is what a query's selectors and options define.
type querySource struct {
	all           bool
	streams       []string
	categories    []string
	foreachStream bool
	partitionBy   handler
	handlers      map[string]handler
	any           handler
	init          handler
	created       handler
	// transforms run on a copy of the state to make the result; a filter
	// that answers false makes the result null.
	transforms      []transform
	producesResults bool
	includeLinks    bool
	resultStream    string
	defined         bool
}

type transform struct {
	fn     handler
	filter bool
}

// emitted is one event a handler asked to write.
type emitted struct {
	stream string
	typ    string
	data   string
	meta   map[string]any // extra metadata, may be nil
	isJSON bool
}

// jsQuery is a compiled query in its own runtime. It is used by one
// goroutine at a time (the projection's runner).
type jsQuery struct {
	vm        *goja.Runtime
	src       querySource
	stringify handler
	parse     handler
	// emits collects emit() and linkTo() calls of the running handler.
	emits []emitted

	// mu guards armed: the watchdog interrupts only a call still running.
	mu    sync.Mutex
	armed bool
}

// compileQuery runs the query's definition and returns what it defines.
func compileQuery(query string) (q *jsQuery, err error) {
	q = &jsQuery{vm: goja.New(), src: querySource{handlers: map[string]handler{}}}
	q.vm.SetMaxCallStackSize(jsMaxCallStack)
	defer func() {
		if r := recover(); r != nil {
			q, err = nil, fmt.Errorf("compile the query: %v", r)
		}
	}()
	vm := q.vm
	jsonObj := vm.Get("JSON").ToObject(vm)
	q.stringify, _ = goja.AssertFunction(jsonObj.Get("stringify"))
	q.parse, _ = goja.AssertFunction(jsonObj.Get("parse"))
	q.define()
	if _, err := q.bounded(jsCompileTimeout, func() (goja.Value, error) { return vm.RunString(query) }); err != nil {
		return nil, fmt.Errorf("compile the query: %w", err)
	}
	if !q.src.defined {
		return nil, errors.New("compile the query: no source is defined (fromAll, fromStream, fromStreams or fromCategory)")
	}
	return q, nil
}

// bounded runs f, interrupting it after d, and turns panics into errors.
func (q *jsQuery) bounded(d time.Duration, f func() (goja.Value, error)) (v goja.Value, err error) {
	q.mu.Lock()
	q.armed = true
	q.mu.Unlock()
	t := time.AfterFunc(d, func() { q.interrupt(errJSTimeout) })
	defer func() {
		q.mu.Lock()
		q.armed = false
		q.mu.Unlock()
		t.Stop()
		q.vm.ClearInterrupt()
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("javascript: %v", r)
		}
	}()
	v, err = f()
	var ie *goja.InterruptedError
	if errors.As(err, &ie) {
		if v, ok := ie.Value().(error); ok {
			return nil, v
		}
		return nil, errJSTimeout
	}
	return v, err
}

// interrupt stops the running call, if any, with v.
func (q *jsQuery) interrupt(v error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.armed {
		q.vm.Interrupt(v)
	}
}

// call runs one handler with a bounded time.
func (q *jsQuery) call(fn handler, args ...goja.Value) (goja.Value, error) {
	return q.bounded(jsExecTimeout, func() (goja.Value, error) { return fn(goja.Undefined(), args...) })
}

func (q *jsQuery) throw(format string, args ...any) {
	panic(q.vm.NewTypeError(fmt.Sprintf(format, args...)))
}

func (q *jsQuery) fn(v goja.Value, what string) handler {
	f, ok := goja.AssertFunction(v)
	if !ok {
		q.throw("%s: a function is expected", what)
	}
	return f
}

// chain returns an object offering the given methods of the query API.
func (q *jsQuery) chain(names ...string) *goja.Object {
	o := q.vm.NewObject()
	for _, n := range names {
		_ = o.Set(n, q.methods()[n])
	}
	return o
}

func (q *jsQuery) methods() map[string]func(goja.FunctionCall) goja.Value {
	src := &q.src
	return map[string]func(goja.FunctionCall) goja.Value{
		"when": func(c goja.FunctionCall) goja.Value {
			obj := c.Argument(0).ToObject(q.vm)
			for _, k := range obj.Keys() {
				f := q.fn(obj.Get(k), "when: handler "+k)
				switch k {
				case "$init":
					src.init = f
				case "$any":
					src.any = f
				case "$created":
					src.created = f
				case "$initShared", "$deleted":
					// Accepted; shared state and deletion notifications
					// are not emulated.
				default:
					src.handlers[k] = f
				}
			}
			return q.chain("transformBy", "filterBy", "outputState", "outputTo", "$defines_state_transform")
		},
		"partitionBy": func(c goja.FunctionCall) goja.Value {
			src.partitionBy = q.fn(c.Argument(0), "partitionBy")
			return q.chain("when")
		},
		"foreachStream": func(goja.FunctionCall) goja.Value {
			src.foreachStream = true
			return q.chain("when")
		},
		"outputState": func(goja.FunctionCall) goja.Value {
			src.producesResults = true
			return q.chain("transformBy", "filterBy", "outputTo")
		},
		"transformBy": func(c goja.FunctionCall) goja.Value {
			src.transforms = append(src.transforms, transform{fn: q.fn(c.Argument(0), "transformBy")})
			src.producesResults = true
			return q.chain("transformBy", "filterBy", "outputState", "outputTo")
		},
		"filterBy": func(c goja.FunctionCall) goja.Value {
			src.transforms = append(src.transforms, transform{fn: q.fn(c.Argument(0), "filterBy"), filter: true})
			src.producesResults = true
			return q.chain("transformBy", "filterBy", "outputState", "outputTo")
		},
		"outputTo": func(c goja.FunctionCall) goja.Value {
			src.resultStream = c.Argument(0).String()
			src.producesResults = true
			return q.chain()
		},
		"$defines_state_transform": func(goja.FunctionCall) goja.Value {
			src.producesResults = true
			return q.chain()
		},
	}
}

// define installs the query API in the runtime.
func (q *jsQuery) define() {
	vm, src := q.vm, &q.src
	set := func(name string, f func(goja.FunctionCall) goja.Value) { _ = vm.Set(name, f) }
	selected := func() {
		if src.defined {
			q.throw("only one source can be defined")
		}
		src.defined = true
	}
	strs := func(c goja.FunctionCall, what string) []string {
		var out []string
		for _, a := range c.Arguments {
			if arr, ok := a.Export().([]any); ok {
				for _, e := range arr {
					out = append(out, fmt.Sprint(e))
				}
				continue
			}
			if goja.IsUndefined(a) || goja.IsNull(a) {
				q.throw("%s: a name is expected", what)
			}
			out = append(out, a.String())
		}
		if len(out) == 0 {
			q.throw("%s: a name is expected", what)
		}
		return out
	}
	set("fromAll", func(goja.FunctionCall) goja.Value {
		selected()
		src.all = true
		return q.chain("when", "partitionBy", "outputState", "foreachStream")
	})
	set("fromStream", func(c goja.FunctionCall) goja.Value {
		selected()
		src.streams = strs(c, "fromStream")[:1]
		return q.chain("when", "partitionBy", "outputState")
	})
	set("fromStreams", func(c goja.FunctionCall) goja.Value {
		selected()
		src.streams = strs(c, "fromStreams")
		return q.chain("when", "partitionBy", "outputState")
	})
	fromCategory := func(c goja.FunctionCall) goja.Value {
		selected()
		src.categories = strs(c, "fromCategory")
		return q.chain("when", "partitionBy", "outputState", "foreachStream")
	}
	set("fromCategory", fromCategory)
	set("fromCategories", fromCategory)
	set("options", func(c goja.FunctionCall) goja.Value {
		o := c.Argument(0).ToObject(vm)
		for _, k := range o.Keys() {
			v := o.Get(k)
			switch k {
			case "$includeLinks":
				src.includeLinks = v.ToBoolean()
			case "resultStreamName":
				src.resultStream = v.String()
			case "reorderEvents", "processingLag", "biState":
			default:
				q.throw("options: unknown option %s", k)
			}
		}
		return goja.Undefined()
	})
	set("log", func(goja.FunctionCall) goja.Value { return goja.Undefined() })
	set("emit", func(c goja.FunctionCall) goja.Value {
		stream, typ := q.str(c.Argument(0), "streamId"), q.str(c.Argument(1), "eventName")
		body := c.Argument(2)
		if goja.IsUndefined(body) || goja.IsNull(body) {
			q.throw("emit: eventBody is expected")
		}
		q.emits = append(q.emits, emitted{stream: stream, typ: typ, data: q.json(body), meta: q.meta(c.Argument(3)), isJSON: true})
		return goja.Undefined()
	})
	link := func(c goja.FunctionCall) goja.Value {
		stream := q.str(c.Argument(0), "streamId")
		ev := c.Argument(1).ToObject(vm)
		seq, sid := ev.Get("sequenceNumber"), ev.Get("streamId")
		if seq == nil || sid == nil || goja.IsUndefined(seq) || goja.IsUndefined(sid) {
			q.throw("linkTo: an event with streamId and sequenceNumber is expected")
		}
		q.emits = append(q.emits, emitted{stream: stream, typ: "$>", data: fmt.Sprintf("%d@%s", seq.ToInteger(), sid.String()), meta: q.meta(c.Argument(2))})
		return goja.Undefined()
	}
	set("linkTo", link)
	set("linkStreamTo", func(c goja.FunctionCall) goja.Value {
		stream, target := q.str(c.Argument(0), "streamId"), q.str(c.Argument(1), "linkedStreamId")
		q.emits = append(q.emits, emitted{stream: stream, typ: "$@", data: target, meta: q.meta(c.Argument(2))})
		return goja.Undefined()
	})
}

func (q *jsQuery) str(v goja.Value, what string) string {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		q.throw("%s is expected", what)
	}
	return v.String()
}

func (q *jsQuery) meta(v goja.Value) map[string]any {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil
	}
	m, ok := v.Export().(map[string]any)
	if !ok {
		q.throw("metadata: an object is expected")
	}
	return m
}

// json is JSON.stringify of v ("" for undefined).
func (q *jsQuery) json(v goja.Value) string {
	s, err := q.stringify(goja.Undefined(), v)
	if err != nil {
		panic(err)
	}
	if goja.IsUndefined(s) {
		return ""
	}
	return s.String()
}

// toJSON stringifies v outside a handler call, bounded.
func (q *jsQuery) toJSON(v goja.Value) (string, error) {
	var out string
	_, err := q.bounded(jsExecTimeout, func() (goja.Value, error) {
		out = q.json(v)
		return nil, nil
	})
	return out, err
}

// fromJSON parses s into the runtime (undefined for "").
func (q *jsQuery) fromJSON(s string) (goja.Value, error) {
	if s == "" {
		return goja.Undefined(), nil
	}
	return q.bounded(jsExecTimeout, func() (goja.Value, error) {
		return q.parse(goja.Undefined(), q.vm.ToValue(s))
	})
}
