package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An import that a longer path implies is not drawn; the others are.
func TestReduce(t *testing.T) {
	got := Reduce(map[string][]string{
		"cmd":      {"app", "root", "recorder"},
		"app":      {"root"},
		"root":     {"recorder"},
		"recorder": nil,
		"backend":  {"recorder"},
	})
	assert.Equal(t, map[string][]string{
		"cmd":     {"app"},
		"app":     {"root"},
		"root":    {"recorder"},
		"backend": {"recorder"},
	}, got)
}

// Each module is a subgraph (its internal packages one inside it), each
// kept import an arrow from the importer; imports of packages outside the
// project, and internal packages that nothing imports (helpers of tests),
// are left out.
func TestRender(t *testing.T) {
	out := Render([]Package{
		{ImportPath: Root, Imports: []string{"context", Root + "/recorder", Root + "/internal/codec"}, Module: Root},
		{ImportPath: Root + "/internal/codec", Imports: []string{Root + "/recorder"}, Module: Root},
		{ImportPath: Root + "/internal/testhelper", Imports: []string{Root + "/recorder"}, Module: Root},
		{ImportPath: Root + "/recorder", Module: Root},
		{ImportPath: Root + "/recorder/sqlite", Imports: []string{Root + "/recorder", "modernc.org/sqlite"}, Module: Root + "/recorder/sqlite"},
	})
	assert.Equal(t, "```mermaid\nflowchart TD\n"+
		"  subgraph m_root[\"module "+Root+" (the core)\"]\n"+
		"    p_root[\"eventsourcing\"]\n"+
		"    p_recorder[\"recorder\"]\n"+
		"    subgraph m_root_internal[\"internal\"]\n"+
		"      p_internal_codec[\"internal/codec\"]\n"+
		"    end\n"+
		"  end\n"+
		"  subgraph m_recorder_sqlite[\"module recorder/sqlite\"]\n"+
		"    p_recorder_sqlite[\"recorder/sqlite\"]\n"+
		"  end\n"+
		"  p_root --> p_internal_codec\n"+
		"  p_internal_codec --> p_recorder\n"+
		"  p_recorder_sqlite --> p_recorder\n"+
		"```\n", out)
}

func TestSplice(t *testing.T) {
	doc := "# A\n\n" + startMarker + "\nold\n" + endMarker + "\nafter\n"
	got, err := Splice(doc, "new\n")
	require.NoError(t, err)
	assert.Equal(t, "# A\n\n"+startMarker+"\nnew\n"+endMarker+"\nafter\n", got)
	section, ok := Section(got)
	assert.True(t, ok)
	assert.Equal(t, "new\n", section)

	_, err = Splice("# no markers\n", "new\n")
	assert.ErrorContains(t, err, startMarker)
}

// The diagram in docs/architecture.md is the one the packages draw now:
// after a change of imports or packages, run make arch.
func TestDocumentCurrent(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH: the diagram is not checked")
	}
	root := filepath.Join("..", "..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.work")); err == nil {
		out, err := exec.Command("go", "env", "GOWORK").Output()
		require.NoError(t, err)
		if strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == "off" {
			t.Skip("GOWORK=off: the other modules' packages are not listed, the diagram is not checked")
		}
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	require.NoError(t, err)
	committed, ok := Section(string(doc))
	require.True(t, ok, "docs/architecture.md has no %s ... %s section", startMarker, endMarker)
	pkgs, err := List(t.Context(), "go", root)
	require.NoError(t, err)
	if committed != Render(pkgs) {
		t.Fatal("the diagram in docs/architecture.md is stale: run make arch")
	}
}
