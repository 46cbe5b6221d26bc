package esdb

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestWithTraceContext(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const members = `"$traceId":"4bf92f3577b34da6a3ce929d0e0e4736","$spanId":"00f067aa0ba902b7"`
	for _, c := range []struct {
		name, md, traceParent, want string
	}{
		{"empty object", `{}`, tp, `{` + members + `}`},
		{"beside members", `{"app":"Orders"}`, tp, `{"app":"Orders",` + members + `}`},
		{"no metadata", ``, tp, ``},
		{"not an object", `[1]`, tp, `[1]`},
		{"no trace", `{"app":"Orders"}`, "", `{"app":"Orders"}`},
		{"not sampled", `{}`, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", `{}`},
		{"malformed", `{}`, "00-zz-00f067aa0ba902b7-01", `{}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			shared := []byte(c.md)
			got := withTraceContext(shared, c.traceParent)
			assert.Equal(t, c.want, string(got))
			assert.Equal(t, c.md, string(shared), "the shared metadata is not changed")
			if c.want != c.md {
				assert.Equal(t, c.traceParent, traceParentOf(got), "round trip")
			}
		})
	}
	for _, md := range []string{``, `{}`, `{"app":"Orders"}`, `{"$traceId":"nothex","$spanId":"00f067aa0ba902b7"}`, `{"$traceId":`} {
		assert.Empty(t, traceParentOf([]byte(md)), md)
	}
}
