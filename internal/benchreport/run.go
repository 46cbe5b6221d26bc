package benchreport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Config says what Run runs and how.
type Config struct {
	Root      string        // the module's root directory
	Go        string        // the go command (default "go")
	Rounds    int           // interleaved rounds (at least 1)
	Benchtime string        // -test.benchtime of each run, unless a Side sets its own
	Timeout   time.Duration // of one benchmark run (default 5m); one that times out is not run again
	Rows      []Row
	Progress  io.Writer // one line per run; nil for none

	// Available reports whether a service a row needs answers; nil checks
	// "postgres" by dialling POSTGRES_HOST:POSTGRES_PORT.
	Available func(ctx context.Context, service string) error
}

// Report is what Run measured.
type Report struct {
	Results    []Result
	Raw        []string // benchstat-compatible lines, in the order run
	Machine    Machine
	Start, End time.Time
	Rounds     int
	Benchtime  string
}

// job is one benchmark run each round; rows sharing a benchmark share its job.
type job struct {
	pkg, bench, benchtime string
	bin                   string  // the test binary, once built
	lines                 []*Line // per round, nil when the run gave no result
	note                  string  // why it gives no figure, when it cannot run at all
	pkgNote               string  // the same, when it is the package's fault (it does not build)
	lastNote              string  // why the last run gave no result
}

func (j *job) key() string { return j.pkg + "\x00" + j.bench + "\x00" + j.benchtime }

// Run builds each package's test binary once, then runs every row's workload
// and substrate, alternately, in each of cfg.Rounds rounds (odd rounds in
// reverse order, so that neither side always runs first). A benchmark that is
// missing, skipped or failing leaves its rows "not measured" with a note
// rather than failing the report; so does a row whose service is down.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Go == "" {
		cfg.Go = "go"
	}
	if cfg.Rounds < 1 {
		return nil, fmt.Errorf("benchreport: rounds must be at least 1, got %d", cfg.Rounds)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	if cfg.Available == nil {
		cfg.Available = dialService
	}
	rep := &Report{Start: time.Now().UTC(), Rounds: cfg.Rounds, Benchtime: cfg.Benchtime}
	rep.Machine = machine(ctx, cfg.Go, cfg.Root)
	down := cfg.services(ctx)
	p := plan(cfg.Rows, down, cfg.Benchtime)

	binDir, err := os.MkdirTemp("", "benchreport-")
	if err != nil {
		return nil, fmt.Errorf("benchreport: %w", err)
	}
	defer os.RemoveAll(binDir)
	cfg.build(ctx, binDir, p.jobs)
	if err := cfg.rounds(ctx, p.jobs, rep); err != nil {
		return nil, err
	}

	for i, r := range cfg.Rows {
		res := Result{Row: r}
		if r.Needs != "" && down[r.Needs] != "" {
			res.Note = "skipped: " + down[r.Needs]
		} else {
			var wn, sn string
			res.Workload, wn = figures(p.rows[i].w, r.Workload)
			if r.Workload.Also.Unit != "" {
				res.Also, _ = figures(p.rows[i].w, Side{Pkg: r.Workload.Pkg, Bench: r.Workload.Bench, Metric: r.Workload.Also})
			}
			if r.Substrate != nil {
				res.Substrate, sn = figures(p.rows[i].s, *r.Substrate)
				res.Ratios = Ratios(r.Workload, *r.Substrate, res.Workload, res.Substrate)
			}
			res.Note = joinNotes(wn, sn)
		}
		rep.Results = append(rep.Results, res)
	}
	rep.End = time.Now().UTC()
	rep.Machine.LoadEnd = loadAverage()
	return rep, nil
}

// services checks, once each, the services the rows need, and returns why
// each that is down is down (empty for those that answer).
func (cfg *Config) services(ctx context.Context) map[string]string {
	down := map[string]string{}
	for _, r := range cfg.Rows {
		if _, seen := down[r.Needs]; r.Needs == "" || seen {
			continue
		}
		down[r.Needs] = ""
		if err := cfg.Available(ctx, r.Needs); err != nil {
			down[r.Needs] = err.Error()
			cfg.progress("skipping the rows that need %s: %v", r.Needs, err)
		}
	}
	return down
}

// runPlan is the jobs to run, in row order (workload before substrate), and
// each row's two jobs; rows that share a benchmark share its job.
type runPlan struct {
	jobs []*job
	rows []struct{ w, s *job }
}

func plan(rows []Row, down map[string]string, benchtime string) runPlan {
	var p runPlan
	byKey := map[string]*job{}
	sideJob := func(s Side) *job {
		bt := benchtime
		if s.Benchtime != "" {
			bt = s.Benchtime
		}
		j := &job{pkg: s.Pkg, bench: s.Bench, benchtime: bt}
		if old, ok := byKey[j.key()]; ok {
			return old
		}
		byKey[j.key()] = j
		p.jobs = append(p.jobs, j)
		return j
	}
	p.rows = make([]struct{ w, s *job }, len(rows))
	for i, r := range rows {
		if r.Needs != "" && down[r.Needs] != "" {
			continue
		}
		p.rows[i].w = sideJob(r.Workload)
		if r.Substrate != nil {
			p.rows[i].s = sideJob(*r.Substrate)
		}
	}
	return p
}

// rounds runs every job once per round, odd rounds in reverse order, and
// appends each result line to rep.Raw, with the header lines where they
// change.
func (cfg *Config) rounds(ctx context.Context, jobs []*job, rep *Report) error {
	for _, j := range jobs {
		j.lines = make([]*Line, cfg.Rounds)
	}
	var lastConfig []string
	for round := range cfg.Rounds {
		order := slices.Clone(jobs)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, j := range order {
			if err := ctx.Err(); err != nil {
				return err
			}
			if j.note != "" {
				if round == 0 {
					cfg.progress("%s %s: %s", j.pkg, j.bench, j.note)
				}
				continue
			}
			at := fmt.Sprintf("round %d/%d", round+1, cfg.Rounds)
			out, err := cfg.runOnce(ctx, j)
			if errors.Is(err, errTimedOut) {
				j.note = err.Error() // once is enough: the later rounds skip it
			}
			if err != nil {
				j.lastNote = err.Error()
				cfg.progress("%s %s %s: %v", at, j.pkg, j.bench, err)
				continue
			}
			l, ok := out.Find(j.bench)
			if !ok {
				j.lastNote = noResult(out)
				cfg.progress("%s %s %s: %s", at, j.pkg, j.bench, j.lastNote)
				continue
			}
			j.lines[round] = &l
			if !slices.Equal(out.Config, lastConfig) {
				rep.Raw = append(rep.Raw, out.Config...)
				lastConfig = out.Config
			}
			rep.Raw = append(rep.Raw, l.Text)
			cfg.progress("%s %s", at, l.Text)
		}
	}
	return nil
}

// figures returns s's figure in each round of j, and a note when some round
// has none.
func figures(j *job, s Side) ([]float64, string) {
	v := nanRounds(len(j.lines))
	missing := 0
	for i, l := range j.lines {
		x, ok := math.NaN(), false
		if l != nil {
			x, ok = l.Values[s.Metric.Unit]
		}
		if ok {
			v[i] = x
		} else {
			missing++
		}
	}
	switch {
	case j.pkgNote != "":
		return v, fmt.Sprintf("%s %s", s.Pkg, j.pkgNote)
	case j.note != "":
		return v, fmt.Sprintf("%s %s: %s", s.Pkg, s.Bench, j.note)
	case missing == len(v) && j.lastNote != "":
		return v, fmt.Sprintf("%s %s: %s", s.Pkg, s.Bench, j.lastNote)
	case missing == len(v):
		return v, fmt.Sprintf("%s %s reports no %s", s.Pkg, s.Bench, s.Metric.Unit)
	case missing > 0:
		return v, fmt.Sprintf("%s %s: %d of %d rounds without a figure", s.Pkg, s.Bench, missing, len(v))
	}
	return v, ""
}

func nanRounds(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = math.NaN()
	}
	return v
}

// joinNotes joins the notes that are not empty, each once.
func joinNotes(notes ...string) string {
	var keep []string
	for _, n := range notes {
		if n != "" && !slices.Contains(keep, n) {
			keep = append(keep, n)
		}
	}
	return strings.Join(keep, "; ")
}

func noResult(o Output) string {
	switch {
	case o.Skip != "":
		return o.Skip
	case o.Failure != "":
		return o.Failure
	}
	return "no result: the benchmark is missing or printed nothing (not measured)"
}

func (cfg *Config) progress(format string, args ...any) {
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, format+"\n", args...)
	}
}

// build compiles each package's test binary once and lists its top-level
// benchmarks; a job whose package does not build or that names no benchmark
// of it gets a note instead of a binary.
func (cfg *Config) build(ctx context.Context, dir string, jobs []*job) {
	type built struct {
		bin, err string
		benches  []string
	}
	pkgs := map[string]*built{}
	for _, j := range jobs {
		b, ok := pkgs[j.pkg]
		if !ok {
			b = &built{bin: filepath.Join(dir, binName(j.pkg))}
			pkgs[j.pkg] = b
			cfg.progress("building %s", j.pkg)
			cmd := exec.CommandContext(ctx, cfg.Go, "test", "-c", "-o", b.bin, j.pkg)
			cmd.Dir = cfg.Root
			if out, err := cmd.CombinedOutput(); err != nil {
				b.err = "does not build: " + firstLine(out, err)
			} else if b.benches, err = cfg.list(ctx, b.bin, j.pkg); err != nil {
				b.err = "cannot list its benchmarks: " + err.Error()
			}
		}
		top, _, _ := strings.Cut(j.bench, "/")
		switch {
		case b.err != "":
			j.note, j.pkgNote = b.err, b.err
		case !slices.Contains(b.benches, top):
			j.note = "no such benchmark (not measured)"
		default:
			j.bin = b.bin
		}
	}
}

func (cfg *Config) list(ctx context.Context, bin, pkg string) ([]string, error) {
	cmd := exec.CommandContext(ctx, bin, "-test.list", "^Benchmark")
	cmd.Dir = filepath.Join(cfg.Root, pkg)
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.New(firstLine(out, err))
	}
	return strings.Fields(string(out)), nil
}

// errTimedOut is the error of a run that took the whole Config.Timeout.
var errTimedOut = errors.New("timed out")

// runOnce runs j's benchmark alone, once.
func (cfg *Config) runOnce(ctx context.Context, j *job) (Output, error) {
	start := time.Now()
	// -test.timeout does not stop a benchmark stuck in its first run; the
	// context does.
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	args := []string{"-test.run", "^$", "-test.bench", BenchPattern(j.bench), "-test.count", "1",
		"-test.benchmem", "-test.v", "-test.timeout", cfg.Timeout.String()}
	if j.benchtime != "" {
		args = append(args, "-test.benchtime", j.benchtime)
	}
	cmd := exec.CommandContext(ctx, j.bin, args...)
	cmd.Dir = filepath.Join(cfg.Root, j.pkg)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out, perr := Parse(&stdout)
	if perr != nil {
		return out, perr
	}
	if err != nil {
		if _, ok := out.Find(j.bench); !ok {
			if time.Since(start) >= cfg.Timeout {
				return out, fmt.Errorf("%w after %s (-timeout)", errTimedOut, cfg.Timeout)
			}
			msg := out.Failure
			if msg == "" {
				msg = firstLine(stderr.Bytes(), err)
			}
			return out, fmt.Errorf("failed: %s", msg)
		}
	}
	return out, nil
}

// BenchPattern is the -test.bench pattern that selects benchmark name alone:
// each level of the name anchored and quoted.
func BenchPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

func binName(pkg string) string {
	s := strings.Trim(filepath.ToSlash(filepath.Clean(pkg)), "./")
	if s == "" {
		s = "root"
	}
	return strings.ReplaceAll(s, "/", "_") + ".test"
}

func firstLine(out []byte, err error) string {
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return l
		}
	}
	return err.Error()
}

// dialService checks the services rows may need.
func dialService(ctx context.Context, service string) error {
	switch service {
	case needsPostgres:
		host, port := os.Getenv("POSTGRES_HOST"), os.Getenv("POSTGRES_PORT")
		if host == "" {
			host = "127.0.0.1"
		}
		if port == "" {
			port = "5432"
		}
		addr := net.JoinHostPort(host, port)
		d := net.Dialer{Timeout: 3 * time.Second}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("no PostgreSQL answers at %s (start one with eval \"$(bash .ci/postgres.sh)\" before make bench-report)", addr)
		}
		return c.Close()
	}
	return fmt.Errorf("unknown service %q", service)
}

// Machine describes where the report ran.
type Machine struct {
	CPU                string
	Cores              int
	OS                 string
	Go                 string
	LoadStart, LoadEnd string // 1, 5 and 15-minute load averages
}

func machine(ctx context.Context, goCmd, root string) Machine {
	m := Machine{CPU: cpuModel(), Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, LoadStart: loadAverage()}
	if rel, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.OS = fmt.Sprintf("%s %s, %s", strings.ToUpper(runtime.GOOS[:1])+runtime.GOOS[1:], strings.TrimSpace(string(rel)), runtime.GOARCH)
	}
	cmd := exec.CommandContext(ctx, goCmd, "env", "GOVERSION")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		m.Go = strings.TrimSpace(string(out))
	} else {
		m.Go = runtime.Version()
	}
	return m
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
