package benchreport

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		ok     bool
		bench  string
		n      int64
		values map[string]float64
	}{
		{"custom metrics", "BenchmarkRecorder/InsertOne-2   \t  878\t   2691611 ns/op\t       371.5 events/s\t    4478 B/op\t     104 allocs/op",
			true, "BenchmarkRecorder/InsertOne-2", 878, map[string]float64{"ns/op": 2691611, "events/s": 371.5, "B/op": 4478, "allocs/op": 104}},
		{"fractional ns", "BenchmarkToEvent-2 5000000 235.4 ns/op", true, "BenchmarkToEvent-2", 5000000, map[string]float64{"ns/op": 235.4}},
		{"zero ns/op", "BenchmarkDogSchoolCounters/SingleThreaded/memory/nocache-2 76 68000 cmds/s 0 ns/op",
			true, "BenchmarkDogSchoolCounters/SingleThreaded/memory/nocache-2", 76, map[string]float64{"cmds/s": 68000, "ns/op": 0}},
		{"exponent", "BenchmarkX 10 1.5e+06 events/s", true, "BenchmarkX", 10, map[string]float64{"events/s": 1.5e6}},
		{"header", "goos: linux", false, "", 0, nil},
		{"a name alone", "BenchmarkRecorder/InsertOne-2", false, "", 0, nil},
		{"a log line", "BenchmarkX: setting up 3 things", false, "", 0, nil},
		{"odd fields", "BenchmarkX 10 5 ns/op 7", false, "", 0, nil},
		{"not a number", "BenchmarkX 10 fast ns/op", false, "", 0, nil},
		{"PASS", "PASS", false, "", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, ok := ParseLine(tt.line)
			require.Equal(t, tt.ok, ok)
			if !ok {
				return
			}
			assert.Equal(t, tt.bench, l.Name)
			assert.Equal(t, tt.n, l.N)
			assert.Equal(t, tt.values, l.Values)
			assert.Equal(t, tt.line, l.Text)
		})
	}
}

func TestLineIs(t *testing.T) {
	tests := []struct {
		printed, name string
		want          bool
	}{
		{"BenchmarkRaw/InsertOne-2", "BenchmarkRaw/InsertOne", true},
		{"BenchmarkRaw/InsertOne", "BenchmarkRaw/InsertOne", true},
		{"BenchmarkRaw/InsertOne-16", "BenchmarkRaw/InsertOne", true},
		{"BenchmarkRaw/InsertOne8Savers-2", "BenchmarkRaw/InsertOne", false},
		{"BenchmarkRaw/InsertOne-x", "BenchmarkRaw/InsertOne", false},
		{"BenchmarkRaw/InsertOne-", "BenchmarkRaw/InsertOne", false},
		{"BenchmarkRaw/InsertOne/sub-2", "BenchmarkRaw/InsertOne", false},
	}
	for _, tt := range tests {
		t.Run(tt.printed, func(t *testing.T) {
			assert.Equal(t, tt.want, Line{Name: tt.printed}.Is(tt.name))
		})
	}
}

func TestParse(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/eventsourcing-go/eventsourcing/recorder/postgres
cpu: Intel(R) Xeon(R) CPU @ 2.20GHz
BenchmarkRecorder/InsertOne-2   	     878	   2691611 ns/op	       371.5 events/s
BenchmarkRawInsert
    harness_test.go:60: PostgreSQL not reachable
--- SKIP: BenchmarkRawInsert
PASS
ok  	github.com/eventsourcing-go/eventsourcing/recorder/postgres	3.1s
`
	o, err := Parse(strings.NewReader(out))
	require.NoError(t, err)
	assert.Equal(t, []string{"goos: linux", "goarch: amd64", "pkg: github.com/eventsourcing-go/eventsourcing/recorder/postgres",
		"cpu: Intel(R) Xeon(R) CPU @ 2.20GHz"}, o.Config)
	require.Len(t, o.Results, 1)
	l, ok := o.Find("BenchmarkRecorder/InsertOne")
	require.True(t, ok)
	assert.InDelta(t, 2691611, l.Values["ns/op"], 0)
	_, ok = o.Find("BenchmarkRawInsert/Tx")
	assert.False(t, ok)
	assert.Equal(t, "--- SKIP: BenchmarkRawInsert harness_test.go:60: PostgreSQL not reachable", o.Skip)
	assert.Empty(t, o.Failure)

	// Without -test.v a failure's message follows it.
	o, err = Parse(strings.NewReader("--- FAIL: BenchmarkX\n    x_test.go:3: boom\nFAIL\n"))
	require.NoError(t, err)
	assert.Equal(t, "--- FAIL: BenchmarkX x_test.go:3: boom", o.Failure)
	assert.Equal(t, "--- FAIL: BenchmarkX x_test.go:3: boom", noResult(o))
}

func TestMedianSpread(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name           string
		xs             []float64
		median, lo, hi float64
	}{
		{"none", nil, nan, nan, nan},
		{"one", []float64{3}, 3, 3, 3},
		{"odd, unsorted", []float64{5, 1, 3}, 3, 1, 5},
		{"even: mean of the middle two", []float64{4, 1, 3, 2}, 2.5, 1, 4},
		{"six rounds", []float64{1.39, 0.99, 1.4, 1.05, 1.02, 1.1}, 1.075, 0.99, 1.4},
		{"ties", []float64{2, 2, 2, 9}, 2, 2, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := append([]float64(nil), tt.xs...)
			m := Median(tt.xs)
			lo, hi := Spread(tt.xs)
			assert.Equal(t, before, tt.xs, "Median must not reorder its input")
			for _, c := range []struct{ got, want float64 }{{m, tt.median}, {lo, tt.lo}, {hi, tt.hi}} {
				if math.IsNaN(c.want) {
					assert.True(t, math.IsNaN(c.got))
				} else {
					assert.InDelta(t, c.want, c.got, 1e-12)
				}
			}
		})
	}
}

func TestRatios(t *testing.T) {
	nan := math.NaN()
	ns := Side{Metric: nsPerOp}
	rate := Side{Metric: eventsPerSec}
	tests := []struct {
		name string
		w, s Side
		wv   []float64
		sv   []float64
		want []float64
	}{
		{"times: workload over substrate", ns, ns, []float64{110, 300}, []float64{100, 200}, []float64{1.1, 1.5}},
		{"rates: the cost is the inverse", rate, rate, []float64{500, 1000}, []float64{1000, 1000}, []float64{2, 1}},
		{"a rate against a time", Side{Metric: cmdsPerSec}, Side{Metric: nsPerOp, Scale: 2}, []float64{1000}, []float64{400_000}, []float64{1.25}},
		{"a round missing on one side gives none", ns, ns, []float64{100, nan, 300}, []float64{100, 200, nan}, []float64{1}},
		{"unequal lengths pair the first rounds", ns, ns, []float64{100, 200, 300}, []float64{100}, []float64{1}},
		{"a zero substrate gives none", ns, ns, []float64{100}, []float64{0}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Ratios(tt.w, tt.s, tt.wv, tt.sv)
			require.Len(t, got, len(tt.want))
			for i := range got {
				assert.InDelta(t, tt.want[i], got[i], 1e-12)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		res  Result
		want Status
	}{
		{"ratio met at the bound", Result{Row: Row{Target: Target{MaxRatio: 1.1}}, Workload: []float64{1}, Ratios: []float64{1.0, 1.1, 1.2}}, Met},
		{"ratio not met", Result{Row: Row{Target: Target{MaxRatio: 1.1}}, Workload: []float64{1}, Ratios: []float64{1.2, 1.3, 1.0}}, NotMet},
		{"ratio without substrate figures", Result{Row: Row{Target: Target{MaxRatio: 1.1}}, Workload: []float64{1}}, NotMeasured},
		{"rate met", Result{Row: Row{Target: Target{AtLeast: 1000}}, Workload: []float64{900, 1000, 1100}}, Met},
		{"rate not met", Result{Row: Row{Target: Target{AtLeast: 1000}}, Workload: []float64{900, 999, 1100}}, NotMet},
		{"rounds without a figure are left out", Result{Row: Row{Target: Target{AtLeast: 1000}}, Workload: []float64{nan, 1000, nan}}, Met},
		{"time at most", Result{Row: Row{Target: Target{AtMost: 50}}, Workload: []float64{40, 60, 45}}, Met},
		{"nothing measured", Result{Row: Row{Target: Target{AtLeast: 1}}, Workload: []float64{nan, nan}}, NotMeasured},
		{"no target", Result{Workload: []float64{1}}, NotMeasured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.res.Status())
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		v    float64
		m    Metric
		want string
	}{
		{2691611, nsPerOp, "2.69 ms"},
		{235.4, nsPerOp, "235 ns"},
		{1730, nsPerOp, "1.73 µs"},
		{999.7, nsPerOp, "1000 ns"},
		{2.5e9, nsPerOp, "2.50 s"},
		{371.5, eventsPerSec, "372 events/s"},
		{3.14159, eventsPerSec, "3.14 events/s"},
		{1_234_567.8, eventsPerSec, "1,234,568 events/s"},
		{150_000, cmdsPerSec, "150,000 cmds/s"},
		{math.NaN(), nsPerOp, "—"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, Format(tt.v, tt.m))
		})
	}
	assert.Equal(t, "≤ 1.1×", Target{MaxRatio: 1.1}.String(nsPerOp))
	assert.Equal(t, "≥ 1,000,000 events/s", Target{AtLeast: 1e6}.String(eventsPerSec))
	assert.Equal(t, "1.08", FormatRatio(1.076))
	assert.Equal(t, "996 – 1,057 events/s", formatSpread(996, 1057, eventsPerSec))
	assert.Equal(t, "4.29 – 6.64 ms", formatSpread(4.29e6, 6.64e6, nsPerOp))
	assert.Equal(t, "950 µs – 1.20 ms", formatSpread(950e3, 1.2e6, nsPerOp))
	assert.Equal(t, "41.0 µs", Format(41, bareUs))
}

func TestSplice(t *testing.T) {
	tests := []struct {
		name, doc, want string
		err             bool
	}{
		{"appends a section", "# Benchmarks\n\ntext\n", "# Benchmarks\n\ntext\n\n## Report\n\n" + StartMarker + "\nT\n" + EndMarker + "\n", false},
		{"replaces between the markers only", "a\n" + StartMarker + "\nold\nold\n" + EndMarker + "\nb\n", "a\n" + StartMarker + "\nT\n" + EndMarker + "\nb\n", false},
		{"an end marker alone", "a\n" + EndMarker + "\n", "", true},
		{"markers out of order", EndMarker + "\n" + StartMarker + "\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Splice(tt.doc, "## Report", "T\n")
			if tt.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			again, err := Splice(got, "## Report", "T\n")
			require.NoError(t, err)
			assert.Equal(t, got, again, "splicing twice changes nothing")
		})
	}
}

func TestBenchPattern(t *testing.T) {
	assert.Equal(t, "^BenchmarkSave$", BenchPattern("BenchmarkSave"))
	assert.Equal(t, `^BenchmarkRecorder$/^NORMAL$/^InsertOne$`, BenchPattern("BenchmarkRecorder/NORMAL/InsertOne"))
	assert.Equal(t, `^BenchmarkX$/^a\.b\+$`, BenchPattern("BenchmarkX/a.b+"))
}

func TestRowsAreWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Rows() {
		assert.False(t, seen[r.Name], "duplicate row %q", r.Name)
		seen[r.Name] = true
		set := 0
		for _, v := range []float64{r.Target.MaxRatio, r.Target.AtLeast, r.Target.AtMost} {
			if v > 0 {
				set++
			}
		}
		assert.Equal(t, 1, set, "row %q: exactly one target", r.Name)
		if r.Target.MaxRatio > 0 {
			assert.NotNil(t, r.Substrate, "row %q: a ratio needs a substrate", r.Name)
		}
		if r.Target.AtLeast > 0 {
			assert.True(t, r.Workload.Metric.Rate, "row %q: an at-least target is a rate", r.Name)
		}
		for _, s := range []*Side{&r.Workload, r.Substrate} {
			if s != nil {
				assert.True(t, strings.HasPrefix(s.Bench, "Benchmark"), "row %q: %q", r.Name, s.Bench)
				assert.NotEmpty(t, s.Metric.Unit)
			}
		}
	}
}
