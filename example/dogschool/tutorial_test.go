package dogschool_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/example/dogschool"
	"github.com/eventsourcing-go/eventsourcing/system"
)

type newRunner func(sys *system.System, env map[string]string) system.Runner

var runners = []struct {
	name string
	new  newRunner
}{
	{"SingleThreaded", func(s *system.System, env map[string]string) system.Runner {
		return system.NewSingleThreadedRunner(s, env)
	}},
	{"MultiThreaded", func(s *system.System, env map[string]string) system.Runner {
		return system.NewMultiThreadedRunner(s, env)
	}},
}

// tutorial is the test function of the tutorial (part 4): register three
// dogs, add tricks, and check the counts Counters derived from the events.
// Where the tutorial sleeps, it waits until Counters has processed the
// DogSchool's last notification.
func tutorial(t *testing.T, newRunner newRunner, env map[string]string) {
	t.Helper()
	ctx := t.Context()
	runner := newRunner(dogschool.System(), env)
	require.NoError(t, runner.Start(ctx))
	defer func() { require.NoError(t, runner.Stop()) }()

	school, err := system.Get[*dogschool.DogSchool](runner)
	require.NoError(t, err)
	counters, err := system.Get[*dogschool.Counters](runner)
	require.NoError(t, err)

	wait := func() {
		t.Helper()
		last, _, err := school.Recorder().MaxNotificationID(ctx)
		require.NoError(t, err)
		require.NoError(t, system.Wait(ctx, runner, "Counters", "DogSchool", last, 10*time.Second),
			"Counters did not process DogSchool's notification %d", last)
	}
	counts := func(rollOver, fetchBall, playDead int) {
		t.Helper()
		for trick, want := range map[string]int{"roll over": rollOver, "fetch ball": fetchBall, "play dead": playDead} {
			got, err := counters.GetCount(ctx, trick)
			require.NoError(t, err)
			require.Equal(t, want, got, "count of %q", trick)
		}
	}

	dog1, err := school.RegisterDog(ctx, "Billy")
	require.NoError(t, err)
	dog2, err := school.RegisterDog(ctx, "Milly")
	require.NoError(t, err)
	dog3, err := school.RegisterDog(ctx, "Scrappy")
	require.NoError(t, err)

	require.NoError(t, school.AddTrick(ctx, dog1, "roll over"))
	require.NoError(t, school.AddTrick(ctx, dog2, "roll over"))
	require.NoError(t, school.AddTrick(ctx, dog3, "roll over"))
	wait()
	counts(3, 0, 0)

	require.NoError(t, school.AddTrick(ctx, dog1, "fetch ball"))
	require.NoError(t, school.AddTrick(ctx, dog2, "fetch ball"))
	wait()
	counts(3, 2, 0)

	require.NoError(t, school.AddTrick(ctx, dog1, "play dead"))
	wait()
	counts(3, 2, 1)
}

func TestTutorialMemory(t *testing.T) {
	for _, r := range runners {
		t.Run(r.name, func(t *testing.T) { tutorial(t, r.new, nil) })
	}
}

func TestTutorialSQLite(t *testing.T) {
	for _, r := range runners {
		t.Run(r.name, func(t *testing.T) { tutorial(t, r.new, sqliteEnv(t, "DogSchool", "Counters")) })
	}
}

func TestTutorialPostgres(t *testing.T) {
	for _, r := range runners {
		t.Run(r.name, func(t *testing.T) {
			env := postgresEnv(t)
			// As in the tutorial: encrypted and compressed, which followers
			// decode with the leader's settings.
			key, err := eventsourcing.CreateKey(32)
			require.NoError(t, err)
			env["CIPHER_KEY"], env["COMPRESSOR_TOPIC"] = key, "eventsourcing.compressor:ZlibCompressor"
			tutorial(t, r.new, env)
		})
	}
}

// Each application can use another persistence module, chosen by its
// prefixed settings.
func TestTutorialMixedModules(t *testing.T) {
	for _, r := range runners {
		t.Run(r.name, func(t *testing.T) {
			env := sqliteEnv(t, "Counters")
			delete(env, "PERSISTENCE_MODULE")
			env["COUNTERS_PERSISTENCE_MODULE"] = "sqlite"
			tutorial(t, r.new, env)
		})
	}
}
