// Command archdiagram draws the project's packages and their imports as a
// Mermaid flowchart and writes it into docs/architecture.md between the
// markers <!-- arch:start --> and <!-- arch:end --> (`make arch`).
//
//	go run ./internal/cmd/archdiagram                 # rewrite the document
//	go run ./internal/cmd/archdiagram -doc -          # print the diagram
//
// Run it from the repository's root. It asks `go list` for every package of
// every module of the workspace (go.work), test files left out, and keeps the
// project's own packages. An arrow points at what a package imports; an
// import that another path already implies (a imports b, b imports c, a
// imports c) is not drawn, so that the picture shows the layers. Each module
// is a subgraph, its internal packages a subgraph inside it. The development
// tools (internal/cmd/..., internal/benchreport) and the internal packages
// that only tests import are left out.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// Root is the module path of the project's core; every project package's
// import path starts with it.
const Root = "github.com/eventsourcing-go/eventsourcing"

// The markers around the generated part of the document.
const (
	startMarker = "<!-- arch:start -->"
	endMarker   = "<!-- arch:end -->"
)

func main() {
	doc := flag.String("doc", "docs/architecture.md", "the document to rewrite, or - to print the diagram")
	goCmd := flag.String("go", "go", "the go command")
	flag.Parse()
	if err := run(context.Background(), *goCmd, *doc, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "archdiagram:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, goCmd, doc string, stdout io.Writer) error {
	pkgs, err := List(ctx, goCmd, ".")
	if err != nil {
		return err
	}
	diagram := Render(pkgs)
	if doc == "-" {
		_, err := io.WriteString(stdout, diagram)
		return err
	}
	old, err := os.ReadFile(doc)
	if err != nil {
		return err
	}
	updated, err := Splice(string(old), diagram)
	if err != nil {
		return fmt.Errorf("%s: %w", doc, err)
	}
	if updated == string(old) {
		return nil
	}
	return os.WriteFile(doc, []byte(updated), 0o644)
}

// Package is what the diagram needs of one package.
type Package struct {
	ImportPath string
	Imports    []string
	Module     string // the module's path
}

// List returns the project's packages in every module that `go list -m`
// names from dir (every module of the workspace, or the one module without
// one), without the development tools.
func List(ctx context.Context, goCmd, dir string) ([]Package, error) {
	out, err := goOutput(ctx, goCmd, dir, "list", "-m", "-f", "{{.Dir}}")
	if err != nil {
		return nil, err
	}
	args := []string{"list", "-e", "-json=ImportPath,Imports,Module,Error"}
	for _, d := range strings.Fields(string(out)) {
		args = append(args, d+"/...")
	}
	out, err = goOutput(ctx, goCmd, dir, args...)
	if err != nil {
		return nil, err
	}
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
			Module     *struct{ Path string }
			Error      *struct{ Err string }
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list: %w", err)
		}
		if p.Error != nil {
			return nil, fmt.Errorf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		if !project(p.ImportPath) || tool(p.ImportPath) || p.Module == nil {
			continue
		}
		pkgs = append(pkgs, Package{ImportPath: p.ImportPath, Imports: p.Imports, Module: p.Module.Path})
	}
	return pkgs, nil
}

func goOutput(ctx context.Context, goCmd, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", goCmd, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

func project(path string) bool { return path == Root || strings.HasPrefix(path, Root+"/") }

// tool reports the development tools, which no framework package imports.
func tool(path string) bool {
	rel := rel(path)
	return strings.HasPrefix(rel, "internal/cmd/") || rel == "internal/benchreport"
}

// internal reports a package under an internal directory of the project.
func internal(path string) bool {
	r := rel(path)
	return strings.HasPrefix(r, "internal/") || strings.Contains(r, "/internal/")
}

// rel is a project path relative to the root module ("." for the root).
func rel(path string) string {
	if path == Root {
		return "."
	}
	return strings.TrimPrefix(path, Root+"/")
}

// Reduce returns the edges of the import graph that no longer path implies:
// for each package the imports (within the graph) not reachable through
// another of its imports. The import graph of Go packages has no cycles.
func Reduce(imports map[string][]string) map[string][]string {
	reach := map[string]map[string]bool{}
	var visit func(p string) map[string]bool
	visit = func(p string) map[string]bool {
		if r, ok := reach[p]; ok {
			return r
		}
		r := map[string]bool{}
		reach[p] = r
		for _, q := range imports[p] {
			r[q] = true
			for s := range visit(q) {
				r[s] = true
			}
		}
		return r
	}
	out := map[string][]string{}
	for p, qs := range imports {
		for _, q := range qs {
			implied := false
			for _, w := range qs {
				if w != q && visit(w)[q] {
					implied = true
					break
				}
			}
			if !implied {
				out[p] = append(out[p], q)
			}
		}
		slices.Sort(out[p])
	}
	return out
}

// Render draws pkgs as a Mermaid flowchart, a subgraph per module, in a
// stable order so that the document changes only when the layout does.
func Render(pkgs []Package) string {
	in := map[string]bool{}
	for _, p := range pkgs {
		in[p.ImportPath] = true
	}
	imports := map[string][]string{}
	imported := map[string]bool{}
	for _, p := range pkgs {
		imports[p.ImportPath] = nil
		for _, q := range p.Imports {
			if in[q] {
				imports[p.ImportPath] = append(imports[p.ImportPath], q)
				imported[q] = true
			}
		}
	}
	modules := map[string][]string{}
	for _, p := range pkgs {
		if internal(p.ImportPath) && !imported[p.ImportPath] {
			delete(imports, p.ImportPath) // a helper of tests only
			continue
		}
		modules[p.Module] = append(modules[p.Module], p.ImportPath)
	}
	edges := Reduce(imports)

	var b strings.Builder
	b.WriteString("```mermaid\nflowchart TD\n")
	for _, m := range slices.Sorted(maps.Keys(modules)) {
		label := "module " + rel(m)
		if m == Root {
			label = "module " + Root + " (the core)"
		}
		sub := "m" + strings.TrimPrefix(id(m), "p")
		fmt.Fprintf(&b, "  subgraph %s[\"%s\"]\n", sub, label)
		ps := modules[m]
		slices.Sort(ps)
		var internals []string
		for _, p := range ps {
			if internal(p) {
				internals = append(internals, p)
				continue
			}
			name := rel(p)
			if p == Root {
				name = "eventsourcing"
			}
			fmt.Fprintf(&b, "    %s[\"%s\"]\n", id(p), name)
		}
		if len(internals) > 0 {
			fmt.Fprintf(&b, "    subgraph %s_internal[\"internal\"]\n", sub)
			for _, p := range internals {
				fmt.Fprintf(&b, "      %s[\"%s\"]\n", id(p), rel(p))
			}
			b.WriteString("    end\n")
		}
		b.WriteString("  end\n")
	}
	for _, p := range slices.Sorted(maps.Keys(edges)) {
		for _, q := range edges[p] {
			fmt.Fprintf(&b, "  %s --> %s\n", id(p), id(q))
		}
	}
	b.WriteString("```\n")
	return b.String()
}

// id is a Mermaid node id for a project path. The prefix keeps an id from
// starting with o or x, which Mermaid would read as an arrow's end after
// "--" (operate), or from being a keyword (end).
func id(path string) string {
	r := rel(path)
	if r == "." {
		return "p_root"
	}
	return "p_" + strings.NewReplacer("/", "_", "-", "_", ".", "_").Replace(r)
}

// Splice puts diagram between the markers of doc.
func Splice(doc, diagram string) (string, error) {
	i, j, ok := section(doc)
	if !ok {
		return "", fmt.Errorf("no %s ... %s section", startMarker, endMarker)
	}
	return doc[:i] + "\n" + diagram + doc[j:], nil
}

// Section returns what lies between the markers of doc, as Splice writes it.
func Section(doc string) (string, bool) {
	i, j, ok := section(doc)
	if !ok {
		return "", false
	}
	return strings.TrimPrefix(doc[i:j], "\n"), true
}

// section returns where the generated part of doc starts (after the start
// marker) and ends (at the end marker).
func section(doc string) (start, end int, ok bool) {
	i := strings.Index(doc, startMarker)
	j := strings.Index(doc, endMarker)
	if i < 0 || j < i {
		return 0, 0, false
	}
	return i + len(startMarker), j, true
}
