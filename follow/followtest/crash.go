package followtest

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/follow"
)

// CrashHarness is a source whose upstream and view are kept in a
// directory, so that another process can open them too.
type CrashHarness struct {
	Name string
	// Open opens the upstream application and the view kept in dir,
	// creating them when dir is new, with opts as Harness.Open has them.
	// The harness releases them with tb.Cleanup.
	Open func(tb testing.TB, opts eventsourcing.Options, dir string) (*eventsourcing.Application, View)
}

// The settings of a follower process started by RunCrash.
const (
	crashDirEnv  = "FOLLOWTEST_CRASH_DIR"
	crashHeldEnv = "FOLLOWTEST_CRASH_HELD"
)

// crashEvents is how many events the follower process catches up with, in
// pages of crashPage; the first process is held at event crashHold, in the
// middle of a page (a batch under way, with a view that batches).
const (
	crashEvents = 5000
	crashPage   = 50
	crashHold   = crashEvents/2 + crashPage/2
)

// RunCrash checks exactly-once processing through a crash: it writes
// events to the upstream, starts this test binary again as a follower
// process (running only the calling test, which must call RunCrash before
// anything else), kills it with SIGKILL in the middle of catching up (held
// in its handler half-way through a page, a batch under way), starts it
// again, and checks that the view holds every event once.
func RunCrash(t *testing.T, h CrashHarness) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(t, h, dir, os.Getenv(crashHeldEnv) != "")
		return
	}
	if testing.Short() {
		t.Skip("starts follower processes")
	}
	ctx := t.Context()
	dir := t.TempDir()
	app, view := h.Open(t, crashOptions(testLogger(t)), dir)
	last := Fill(t, app, crashEvents)
	position := func() int64 {
		id, _, err := view.MaxTrackingID(ctx, app.Name())
		require.NoError(t, err)
		return id
	}

	// The first process is held in the middle of catching up.
	child := startCrashChild(t, dir, true)
	fx := &fixture{tb: t, app: app, view: view}
	fx.eventually("the follower process to record half of the events", func() bool { return len(fx.seen(ctx)) >= crashEvents/2 })
	require.NoError(t, child.Process.Kill())
	_ = child.Wait()
	at := position()
	require.Less(t, at, last, "killed in the middle")
	t.Logf("killed at position %d of %d", at, last)

	child = startCrashChild(t, dir, false)
	require.NoError(t, view.Wait(ctx, app.Name(), last, Timeout), "the restarted follower process catches up")
	require.NoError(t, child.Process.Kill())
	_ = child.Wait()
	seen := fx.requireExactlyOnce(ctx)
	require.Equal(t, count(0, crashEvents), seqs(seen))
}

func crashOptions(logger *slog.Logger) eventsourcing.Options {
	return eventsourcing.Options{Name: "FollowTestUpstream", Types: Types(), Logger: logger}
}

// startCrashChild starts this test binary as a follower process on dir.
func startCrashChild(t *testing.T, dir string, held bool) *exec.Cmd {
	t.Helper()
	parts := strings.Split(t.Name(), "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	cmd := exec.Command(os.Args[0], "-test.run", strings.Join(parts, "/"), "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	if held {
		cmd.Env = append(cmd.Env, crashHeldEnv+"=1")
	}
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// crashChild is the follower process: it follows the upstream in dir into
// its view until it is killed (or, as a safeguard, for Timeout).
func crashChild(t *testing.T, h CrashHarness, dir string, held bool) {
	app, view := h.Open(t, crashOptions(testLogger(t)), dir)
	hd := &handler{view: view}
	if held {
		// Held in the middle, so that it is killed there.
		hd.hook = func(ctx context.Context, e eventsourcing.Event) {
			if w, ok := e.Data.(Wanted); ok && w.Seq == crashHold {
				<-ctx.Done()
			}
		}
	}
	f, err := follow.New(follow.Config{
		Name: "FollowTestCrash", Upstream: app.Name(), Source: app.Recorder(), Mapper: app.Mapper(),
		Handler: hd, Tracker: view, PageSize: crashPage, Logger: testLogger(t),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), Timeout)
	defer cancel()
	require.NoError(t, f.Run(ctx))
}
