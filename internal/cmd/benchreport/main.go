// Command benchreport runs every workload of the benchmark report beside its
// substrate, interleaved over several rounds, and writes the table into the
// benchmarks document between its report markers, with the raw output
// beside it (`make bench-report`).
//
//	go run ./internal/cmd/benchreport -rounds 6 -benchtime 1s
//	go run ./internal/cmd/benchreport -rows PostgreSQL -rounds 2   # some rows, to stdout
//
// Run it from the module's root. Rows that need PostgreSQL are skipped, with
// a note, unless a server answers at POSTGRES_HOST:POSTGRES_PORT: start one
// first with eval "$(bash .ci/postgres.sh)". The report starts nothing itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/eventsourcing-go/eventsourcing/internal/benchreport"
)

func main() {
	if err := run(); err != nil {
		slog.Error("benchreport", "err", err)
		os.Exit(1)
	}
}

func run() error {
	rounds := flag.Int("rounds", 6, "interleaved rounds (each runs every benchmark once)")
	benchtime := flag.String("benchtime", "1s", "-test.benchtime of each run")
	timeout := flag.Duration("timeout", 5*time.Minute, "limit of one benchmark run; one that times out is not run again")
	doc := flag.String("doc", "docs/benchmarks.md", "the document whose report section is rewritten")
	raw := flag.String("raw", "docs/bench/raw.txt", "the raw, benchstat-compatible output")
	goCmd := flag.String("go", "go", "the go command")
	only := flag.String("rows", "", "run only the rows whose name matches this regular expression, print their table and write no file")
	flag.Parse()

	rows := benchreport.Rows()
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			return fmt.Errorf("-rows: %w", err)
		}
		rows = slices.DeleteFunc(slices.Clone(rows), func(r benchreport.Row) bool { return !re.MatchString(r.Name) })
		if len(rows) == 0 {
			return fmt.Errorf("-rows %q matches no row", *only)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	rep, err := benchreport.Run(ctx, benchreport.Config{
		Root: root, Go: *goCmd, Rounds: *rounds, Benchtime: *benchtime, Timeout: *timeout,
		Rows: rows, Progress: os.Stderr,
	})
	if err != nil {
		return err
	}
	if *only != "" {
		_, err := os.Stdout.WriteString(rep.Markdown(*raw) + "\n" + rep.RawText())
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*raw), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(*raw, []byte(rep.RawText()), 0o644); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(*doc), *raw)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(*doc)
	if err != nil {
		return err
	}
	text, err := benchreport.Splice(string(old), "## The report (`make bench-report`)", rep.Markdown(filepath.ToSlash(rel)))
	if err != nil {
		return err
	}
	if err := os.WriteFile(*doc, []byte(text), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s and %s in %s\n", *doc, *raw, rep.End.Sub(rep.Start).Round(time.Second))
	return nil
}
