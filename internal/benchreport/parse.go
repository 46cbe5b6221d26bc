package benchreport

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Line is one benchmark result line of `go test -bench` output:
//
//	BenchmarkRecorder/InsertOne-2   878   2691611 ns/op   371.5 events/s   4478 B/op   104 allocs/op
type Line struct {
	Name   string             // as printed, with the -GOMAXPROCS suffix if any
	N      int64              // iterations
	Values map[string]float64 // by unit
	Text   string             // the line as printed
}

// ParseLine parses a result line; ok is false for any other line.
func ParseLine(s string) (l Line, ok bool) {
	f := strings.Fields(s)
	// A name, the iterations, then value-unit pairs.
	if len(f) < 4 || len(f)%2 != 0 || !strings.HasPrefix(f[0], "Benchmark") {
		return Line{}, false
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || n < 0 {
		return Line{}, false
	}
	l = Line{Name: f[0], N: n, Values: make(map[string]float64, len(f)/2-1), Text: strings.TrimRight(s, "\r\n")}
	for i := 2; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return Line{}, false
		}
		l.Values[f[i+1]] = v
	}
	return l, true
}

// Is reports whether the line is the result of benchmark name: the name as
// printed, or followed by the -GOMAXPROCS suffix.
func (l Line) Is(name string) bool {
	if l.Name == name {
		return true
	}
	rest, ok := strings.CutPrefix(l.Name, name+"-")
	if !ok || rest == "" {
		return false
	}
	_, err := strconv.Atoi(rest)
	return err == nil
}

// Output is the parsed output of one benchmark run.
type Output struct {
	Config  []string // "goos: linux", "pkg: ...", "cpu: ..." lines, in order
	Results []Line
	Failure string // the first "--- FAIL" line (or panic) and the message after it, if any
	Skip    string // the first "--- SKIP" line and the message after it, if any
}

// configKeys are the header lines benchstat reads as configuration.
var configKeys = []string{"goos", "goarch", "pkg", "cpu"}

// Parse reads `go test -bench` output.
func Parse(r io.Reader) (Output, error) {
	var o Output
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	// A skip or failure message is printed before the "--- SKIP" line
	// with -test.v, after the "--- FAIL" line without it.
	var logged string // the last log line, indented, since an unindented line
	var more *string  // the SKIP or FAIL line whose message may follow
	for sc.Scan() {
		s := sc.Text()
		t := strings.TrimSpace(s)
		indented := t != "" && (s[0] == ' ' || s[0] == '\t')
		if l, ok := ParseLine(s); ok {
			o.Results = append(o.Results, l)
			logged, more = "", nil
			continue
		}
		switch {
		case indented && more != nil:
			*more += " " + t
			more = nil
		case indented:
			logged = t
			continue
		case isConfig(s):
			o.Config = append(o.Config, s)
		case strings.HasPrefix(t, "--- SKIP"), strings.HasPrefix(t, "--- FAIL"), strings.HasPrefix(t, "panic:"):
			dst := &o.Failure
			if strings.HasPrefix(t, "--- SKIP") {
				dst = &o.Skip
			}
			switch {
			case *dst != "":
				more = nil
			case logged != "":
				*dst, more = t+" "+logged, nil
			default:
				*dst, more = t, dst
			}
		case t == "FAIL" && o.Failure == "":
			o.Failure = t
		}
		logged = ""
	}
	if err := sc.Err(); err != nil {
		return o, fmt.Errorf("reading benchmark output: %w", err)
	}
	return o, nil
}

func isConfig(s string) bool {
	k, _, ok := strings.Cut(s, ": ")
	if !ok {
		return false
	}
	for _, c := range configKeys {
		if k == c {
			return true
		}
	}
	return false
}

// Find returns the result of benchmark name.
func (o Output) Find(name string) (Line, bool) {
	for _, l := range o.Results {
		if l.Is(name) {
			return l, true
		}
	}
	return Line{}, false
}

// Format writes a figure in its unit for the table: times in ns, µs, ms or
// s; other figures of 1,000 or more grouped in thousands.
func Format(v float64, m Metric) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case m.Time > 0:
		return formatDuration(v * m.Time)
	case math.Abs(v) >= 1000:
		return group(int64(math.Round(v))) + " " + m.Unit
	default:
		return trim3(v) + " " + m.Unit
	}
}

func formatDuration(ns float64) string {
	switch a := math.Abs(ns); {
	case a >= 1e9:
		return trim3(ns/1e9) + " s"
	case a >= 1e6:
		return trim3(ns/1e6) + " ms"
	case a >= 1e3:
		return trim3(ns/1e3) + " µs"
	}
	return trim3(ns) + " ns"
}

// trim3 writes v with three significant digits, never in exponent form.
func trim3(v float64) string {
	if v == 0 {
		return "0"
	}
	decimals := max(0, 2-int(math.Floor(math.Log10(math.Abs(v)))))
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// trim writes v as short as it reads back.
func trim(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// group writes n with commas between thousands.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// FormatRatio writes a ratio with two decimals.
func FormatRatio(r float64) string {
	if math.IsNaN(r) {
		return "—"
	}
	return strconv.FormatFloat(r, 'f', 2, 64)
}
