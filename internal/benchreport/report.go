// Package benchreport runs the project's workloads beside their substrates
// (the raw cost each is measured against), interleaved over several rounds,
// and writes the medians, spreads and ratios as a Markdown table, with the
// raw benchmark output in the format benchstat reads.
//
// The rows are the declarative list that Rows returns. Each names a benchmark of a
// package for the workload and, for a ratio, one for the substrate; a row
// with an absolute target has no substrate. The command is
// internal/cmd/benchreport (`make bench-report`).
package benchreport

import (
	"fmt"
	"math"
	"slices"
)

// Metric is a figure a benchmark reports: its unit as printed (ns/op,
// events/s) and whether it is a rate (a count per second, higher is better)
// or a time per operation (lower is better). Time is, for a time, the
// nanoseconds one unit stands for (1 for ns/op, 1000 for a figure in µs),
// and the table writes it in ns, µs, ms or s; 0 for any other figure.
type Metric struct {
	Unit string
	Rate bool
	Time float64
}

// Side is one measured benchmark of a row.
type Side struct {
	Pkg    string  // package pattern, relative to the module root: "./recorder/postgres"
	Bench  string  // full benchmark name without the -GOMAXPROCS suffix: "BenchmarkRecorder/InsertOne"
	Metric Metric  // the figure read from its result line
	Scale  float64 // units of work one figure stands for in a ratio (0 means 1), e.g. 2 saves per command

	// Benchtime overrides the report's -benchtime for this benchmark.
	Benchtime string
	// Also is a second figure of the same result shown beside the workload's
	// (such as the CPU per operation, steadier than wall time on a shared
	// machine); zero for none.
	Also Metric
}

// Target is what a row must reach; exactly one field is set.
type Target struct {
	MaxRatio float64 // the median ratio of workload cost to substrate cost is at most this
	AtLeast  float64 // the workload's median rate is at least this
	AtMost   float64 // the workload's median time is at most this
}

// Row is one line of the report.
type Row struct {
	Name      string
	Workload  Side
	Substrate *Side // nil: the row has an absolute target
	Target    Target
	Needs     string // a service the benchmarks need ("postgres"), checked before the rounds
}

// cost converts a figure of s to the time of one unit of work in
// nanoseconds, so that a rate and a time compare.
func (s Side) cost(v float64) float64 {
	scale := s.Scale
	if scale == 0 {
		scale = 1
	}
	if s.Metric.Rate {
		if v == 0 {
			return math.Inf(1)
		}
		return 1e9 / v * scale
	}
	return v * scale
}

// Median returns the median of xs (the mean of the two middle values for an
// even count) without changing xs; NaN for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Spread returns the smallest and largest of xs; NaNs for none.
func Spread(xs []float64) (lo, hi float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	return slices.Min(xs), slices.Max(xs)
}

// Ratios returns, for each round measured on both sides, the workload's cost
// over the substrate's: above 1 the workload is slower. A round that
// measured one side only gives none.
func Ratios(w, s Side, wv, sv []float64) []float64 {
	var r []float64
	for i := range min(len(wv), len(sv)) {
		if math.IsNaN(wv[i]) || math.IsNaN(sv[i]) {
			continue
		}
		if c := s.cost(sv[i]); c > 0 {
			r = append(r, w.cost(wv[i])/c)
		}
	}
	return r
}

// Result is a row's outcome over the rounds.
type Result struct {
	Row Row
	// Per round, NaN where a round produced no figure.
	Workload, Substrate []float64
	Ratios              []float64
	Also                []float64 // the workload's Also figure, per round
	Note                string    // why a figure is missing, if one is
}

// Status says whether the row meets its target.
type Status int

// The statuses of a row.
const (
	NotMeasured Status = iota
	Met
	NotMet
)

func (s Status) String() string {
	switch s {
	case Met:
		return "met"
	case NotMet:
		return "not met"
	}
	return "not measured"
}

func measured(xs []float64) []float64 {
	return slices.DeleteFunc(slices.Clone(xs), math.IsNaN)
}

// Status judges the row's medians against its target.
func (r Result) Status() Status {
	w := measured(r.Workload)
	if len(w) == 0 {
		return NotMeasured
	}
	t := r.Row.Target
	var ok bool
	switch {
	case t.MaxRatio > 0:
		if len(r.Ratios) == 0 {
			return NotMeasured
		}
		ok = Median(r.Ratios) <= t.MaxRatio
	case t.AtLeast > 0:
		ok = Median(w) >= t.AtLeast
	case t.AtMost > 0:
		ok = Median(w) <= t.AtMost
	default:
		return NotMeasured
	}
	if ok {
		return Met
	}
	return NotMet
}

// String writes the target as the table shows it.
func (t Target) String(m Metric) string {
	switch {
	case t.MaxRatio > 0:
		return fmt.Sprintf("≤ %s×", trim(t.MaxRatio))
	case t.AtLeast > 0:
		return "≥ " + Format(t.AtLeast, m)
	case t.AtMost > 0:
		return "≤ " + Format(t.AtMost, m)
	}
	return "—"
}
