package benchreport

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const fakeBench = `package fake

import (
	"testing"
	"time"
)

func spin(d time.Duration) {
	for t := time.Now(); time.Since(t) < d; {
	}
}

// The pair's work spins twice as long as its raw. The row compares the
// spins/op each reports rather than their ns/op, which a loaded machine
// can turn either way.
func BenchmarkPair(b *testing.B) {
	b.Run("work", func(b *testing.B) {
		for range b.N {
			spin(20 * time.Microsecond)
		}
		b.ReportMetric(2, "spins/op")
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("raw", func(b *testing.B) {
		for range b.N {
			spin(10 * time.Microsecond)
		}
		b.ReportMetric(1, "spins/op")
	})
}

func BenchmarkSkip(b *testing.B) { b.Skip("no server here") }

func BenchmarkFail(b *testing.B) { b.Fatal("boom") }

func BenchmarkSlow(b *testing.B) { time.Sleep(time.Minute) }
`

// spins is the figure the fake pair compares: a time per op, reported as is.
var spins = Metric{Unit: "spins/op", Time: 1}

// TestRun runs the report over a module of its own: a pair measured each
// round, and rows that are skipped, failing, missing, unbuildable or whose
// service is down, each "not measured" with its reason.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds test binaries")
	}
	root := t.TempDir()
	write := func(path, text string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(root, path)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, path), []byte(text), 0o644))
	}
	write("go.mod", "module example.com/fake\n\ngo 1.26\n")
	write("fake_test.go", fakeBench)
	write("broken/broken_test.go", "package broken\n\nfunc BenchmarkX(b *testing.B) {}\n")

	rows := []Row{
		{Name: "pair", Workload: Side{Pkg: ".", Bench: "BenchmarkPair/work", Metric: spins},
			Substrate: &Side{Pkg: ".", Bench: "BenchmarkPair/raw", Metric: spins}, Target: Target{MaxRatio: 10}},
		{Name: "rate", Workload: Side{Pkg: ".", Bench: "BenchmarkPair/work", Metric: eventsPerSec, Also: nsPerOp}, Target: Target{AtLeast: 1}},
		{Name: "skipped", Workload: Side{Pkg: ".", Bench: "BenchmarkSkip", Metric: nsPerOp}, Target: Target{AtMost: 1}},
		{Name: "failing", Workload: Side{Pkg: ".", Bench: "BenchmarkFail", Metric: nsPerOp}, Target: Target{AtMost: 1}},
		{Name: "missing", Workload: Side{Pkg: ".", Bench: "BenchmarkNone/x", Metric: nsPerOp}, Target: Target{AtMost: 1}},
		{Name: "unbuildable", Workload: Side{Pkg: "./broken", Bench: "BenchmarkX", Metric: nsPerOp}, Target: Target{AtMost: 1}},
		{Name: "timing out", Workload: Side{Pkg: ".", Bench: "BenchmarkSlow", Metric: nsPerOp}, Target: Target{AtMost: 1}},
		{Name: "service down", Workload: Side{Pkg: ".", Bench: "BenchmarkPair/work", Metric: nsPerOp}, Target: Target{AtMost: 1}, Needs: "db"},
	}
	var progress strings.Builder
	rep, err := Run(context.Background(), Config{
		Root: root, Rounds: 2, Benchtime: "20x", Timeout: 2 * time.Second, Rows: rows, Progress: &progress,
		Available: func(context.Context, string) error { return errors.New("no db at 127.0.0.1:1") },
	})
	require.NoError(t, err, progress.String())
	require.Len(t, rep.Results, len(rows))
	byName := map[string]Result{}
	for _, r := range rep.Results {
		byName[r.Row.Name] = r
	}

	pair := byName["pair"]
	require.Len(t, pair.Workload, 2)
	require.Len(t, pair.Ratios, 2, pair.Note)
	for _, r := range pair.Ratios {
		assert.InDelta(t, 2.0, r, 1e-9, "the work spins twice as long as the raw")
	}
	assert.Equal(t, Met, pair.Status())
	assert.Empty(t, pair.Note)
	assert.Equal(t, Met, byName["rate"].Status())
	require.Len(t, byName["rate"].Also, 2)
	assert.Greater(t, byName["rate"].Also[0], 0.0, "the Also figure is read from the same result")

	for name, note := range map[string]string{
		"skipped":      "no server here",
		"failing":      "boom",
		"missing":      "no such benchmark",
		"unbuildable":  "does not build",
		"service down": "skipped: no db",
		"timing out":   "timed out after 2s",
	} {
		r := byName[name]
		assert.Equal(t, NotMeasured, r.Status(), name)
		assert.Contains(t, r.Note, note, name)
		for _, v := range r.Workload {
			assert.True(t, math.IsNaN(v), name)
		}
	}
	if r := byName["failing"]; !strings.Contains(r.Note, "FAIL") {
		t.Errorf("failing: note %q does not say it failed", r.Note)
	}

	assert.Equal(t, 1, strings.Count(progress.String(), "BenchmarkSlow: timed out"), "a run that timed out is not run again:\n%s", progress.String())

	// Raw output: the headers once, then one line per run of the pair.
	raw := rep.RawText()
	assert.Equal(t, 1, strings.Count(raw, "pkg: example.com/fake\n"), raw)
	assert.Equal(t, 2, strings.Count(raw, "BenchmarkPair/work"), raw)
	assert.Equal(t, 2, strings.Count(raw, "BenchmarkPair/raw"), raw)
	for _, l := range strings.Split(strings.TrimSpace(raw), "\n") {
		_, isResult := ParseLine(l)
		assert.True(t, isResult || isConfig(l), "raw line %q", l)
	}

	md := rep.Markdown("bench/raw.txt")
	assert.Contains(t, md, "| pair |")
	assert.Regexp(t, `\| rate \| [0-9,]+ events/s \(ns/op: [0-9.]+ µs\) \|`, md)
	assert.Contains(t, md, "[bench/raw.txt](bench/raw.txt)")
	assert.Contains(t, md, rep.Machine.Go)
	assert.Contains(t, md, "not measured")
}
