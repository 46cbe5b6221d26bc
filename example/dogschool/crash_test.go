package dogschool_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/example/dogschool"
	"github.com/eventsourcing-go/eventsourcing/persistence"
	"github.com/eventsourcing-go/eventsourcing/system"
)

// crashChildEnv makes the test binary run crashChild instead of the tests.
const crashChildEnv = "DOGSCHOOL_CRASH_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) == "1" {
		os.Exit(crashChild())
	}
	os.Exit(m.Run())
}

// SlowCounters is Counters taking a little longer per event, so that the
// parent can kill it mid-stream.
type SlowCounters struct{ *dogschool.Counters }

func (c *SlowCounters) Policy(ctx context.Context, e eventsourcing.Event, p *system.ProcessingEvent) error {
	time.Sleep(500 * time.Microsecond)
	return c.Counters.Policy(ctx, e, p)
}

// crashChild runs the DogSchool → Counters system on the SQLite files named
// in the environment until Counters has processed the DogSchool's last event.
func crashChild() int {
	ctx := context.Background()
	slow := system.NewApp("Counters", func(ctx context.Context, env map[string]string) (*SlowCounters, error) {
		c, err := dogschool.NewCounters(ctx, env)
		return &SlowCounters{c}, err
	})
	sys, err := system.New(system.Pipe(dogschool.SchoolApp(), slow))
	if err == nil {
		r := system.NewMultiThreadedRunner(sys, nil, system.WithPageSize(7))
		if err = r.Start(ctx); err == nil {
			var last int64
			last, _, err = system.MustGet[*dogschool.DogSchool](r).Recorder().MaxNotificationID(ctx)
			if err == nil {
				err = system.Wait(ctx, r, "Counters", "DogSchool", last, time.Minute)
			}
			if serr := r.Stop(); err == nil {
				err = serr
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 1
	}
	return 0
}

// A follower in another process is killed (SIGKILL) twice while processing,
// then restarted: the counts are exact, nothing lost and nothing twice.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ctx := t.Context()
	dir := t.TempDir()
	env := map[string]string{
		"PERSISTENCE_MODULE":      "sqlite",
		"DOGSCHOOL_SQLITE_DBNAME": filepath.Join(dir, "dogschool.db"),
		"COUNTERS_SQLITE_DBNAME":  filepath.Join(dir, "counters.db"),
	}
	tricks := []string{"sit", "stay", "roll over", "fetch", "play dead"}
	want := map[string]int{}
	school, err := dogschool.NewDogSchool(ctx, env)
	require.NoError(t, err)
	const dogs, adds = 10, 400
	ids := make([]uuid.UUID, dogs)
	for i := range ids {
		ids[i], err = school.RegisterDog(ctx, fmt.Sprint("dog", i))
		require.NoError(t, err)
	}
	for i := range adds {
		trick := tricks[(i*7)%len(tricks)]
		require.NoError(t, school.AddTrick(ctx, ids[i%dogs], trick))
		want[trick]++
	}
	last, _, err := school.Recorder().MaxNotificationID(ctx)
	require.NoError(t, err)
	require.NoError(t, school.Close())

	trackingRec, err := persistence.Open(ctx, config.NewEnvFrom("Counters", env, nil))
	require.NoError(t, err)
	defer trackingRec.Close()
	tr, err := trackingRec.TrackingRecorder(ctx)
	require.NoError(t, err)
	position := func() int64 {
		id, _, err := tr.MaxTrackingID(ctx, "DogSchool")
		require.NoError(t, err)
		return id
	}

	child := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), crashChildEnv+"=1")
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stderr = os.Stderr
		return cmd
	}

	killed := 0
	for _, at := range []int64{last / 4, last / 2} {
		cmd := child()
		require.NoError(t, cmd.Start())
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		deadline := time.After(60 * time.Second)
	poll:
		for position() < at {
			select {
			case err := <-exited:
				t.Logf("the follower finished before it could be killed at %d (%v)", at, err)
				break poll
			case <-deadline:
				_ = cmd.Process.Kill()
				t.Fatalf("the follower did not reach position %d within 60s (at %d)", at, position())
			case <-time.After(time.Millisecond):
			}
		}
		if err := cmd.Process.Kill(); err == nil {
			<-exited
			killed++
			t.Logf("killed the follower at position %d of %d", position(), last)
		}
	}
	assert.Less(t, position(), last, "the follower was killed before the end")

	cmd := child()
	require.NoError(t, cmd.Run(), "the restarted follower finishes")
	require.Equal(t, last, position())

	counters, err := dogschool.NewCounters(ctx, env)
	require.NoError(t, err)
	defer counters.Close()
	for _, trick := range tricks {
		n, err := counters.GetCount(ctx, trick)
		require.NoError(t, err)
		assert.Equal(t, want[trick], n, "count of %q after %d kills", trick, killed)
	}
}
