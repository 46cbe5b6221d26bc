package followtest

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

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
	crashSlowEnv = "FOLLOWTEST_CRASH_SLOW"
)

// crashEvents is how many events the follower process catches up with.
const crashEvents = 5000

// RunCrash checks exactly-once processing through a crash: it writes
// events to the upstream, starts this test binary again as a follower
// process (running only the calling test, which must call RunCrash before
// anything else), kills it with SIGKILL in the middle of catching up,
// starts it again, and checks that the view holds every event once.
func RunCrash(t *testing.T, h CrashHarness) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(t, h, dir, os.Getenv(crashSlowEnv) != "")
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

	// The first process is slow, so that it is killed in the middle.
	child := startCrashChild(t, dir, true)
	fx := &fixture{tb: t}
	fx.eventually("the follower process to record a part of the events", func() bool { return position() >= last/4 })
	require.NoError(t, child.Process.Kill())
	_ = child.Wait()
	at := position()
	require.Less(t, at, last, "killed before the end")
	t.Logf("killed at position %d of %d", at, last)

	child = startCrashChild(t, dir, false)
	require.NoError(t, view.Wait(ctx, app.Name(), last, Timeout), "the restarted follower process catches up")
	require.NoError(t, child.Process.Kill())
	_ = child.Wait()
	fx.app, fx.view = app, view
	seen := fx.requireExactlyOnce(ctx)
	require.Equal(t, count(0, crashEvents), seqs(seen))
}

func crashOptions(logger *slog.Logger) eventsourcing.Options {
	return eventsourcing.Options{Name: "FollowTestUpstream", Types: Types(), Logger: logger}
}

// startCrashChild starts this test binary as a follower process on dir.
func startCrashChild(t *testing.T, dir string, slow bool) *exec.Cmd {
	t.Helper()
	parts := strings.Split(t.Name(), "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	cmd := exec.Command(os.Args[0], "-test.run", strings.Join(parts, "/"), "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	if slow {
		cmd.Env = append(cmd.Env, crashSlowEnv+"=1")
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
func crashChild(t *testing.T, h CrashHarness, dir string, slow bool) {
	app, view := h.Open(t, crashOptions(testLogger(t)), dir)
	hd := &handler{view: view}
	if slow {
		hd.hook = func(context.Context, eventsourcing.Event) { time.Sleep(200 * time.Microsecond) }
	}
	f, err := follow.New(follow.Config{
		Name: "FollowTestCrash", Upstream: app.Name(), Source: app.Recorder(), Mapper: app.Mapper(),
		Handler: hd, Tracker: view, PageSize: 50, Logger: testLogger(t),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), Timeout)
	defer cancel()
	require.NoError(t, f.Run(ctx))
}
