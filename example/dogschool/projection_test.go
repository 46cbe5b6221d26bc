package dogschool_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/example/dogschool"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

type viewCase struct {
	name string
	// open opens the view; calling it again opens the same view anew.
	open func(t *testing.T) dogschool.CountView
}

func viewCases(t *testing.T) []viewCase {
	return []viewCase{
		{"Memory", func(t *testing.T) dogschool.CountView { return dogschool.NewMemoryCountView() }},
		{"SQLite", func(t *testing.T) dogschool.CountView {
			path := filepath.Join(t.TempDir(), "view.db")
			v, err := dogschool.OpenSQLiteCountView(t.Context(), config.NewEnvFrom("CountProjection",
				map[string]string{"SQLITE_DBNAME": path}, nil))
			require.NoError(t, err)
			t.Cleanup(func() { _ = v.Close() })
			return v
		}},
		{"Postgres", func(t *testing.T) dogschool.CountView {
			env := postgresEnv(t)
			v, err := dogschool.OpenPostgresCountView(t.Context(), config.NewEnvFrom("CountProjection", env, nil))
			require.NoError(t, err)
			t.Cleanup(func() { _ = v.Close() })
			return v
		}},
	}
}

func counts(t *testing.T, v dogschool.CountView) [2]int {
	t.Helper()
	d, err := v.DogCounter(t.Context())
	require.NoError(t, err)
	tr, err := v.TrickCounter(t.Context())
	require.NoError(t, err)
	return [2]int{d, tr}
}

// The seed's materialised-view flow on each view base: catch up, then follow.
func TestCountProjection(t *testing.T) {
	for _, vc := range viewCases(t) {
		t.Run(vc.name, func(t *testing.T) {
			ctx := t.Context()
			view := vc.open(t)
			runner := projection.NewRunner(dogschool.NewTrainingSchool, dogschool.CountProjection{View: view}, view, nil,
				projection.WithPageSize(2))
			require.NoError(t, runner.Start(ctx))
			defer func() { require.NoError(t, runner.Stop()) }()
			assert.ErrorIs(t, runner.Start(ctx), projection.ErrAlreadyStarted)
			school := runner.App()

			_, err := school.Register(ctx, "Fido")
			require.NoError(t, err)
			_, err = school.Register(ctx, "Rex")
			require.NoError(t, err)
			var last int64
			for _, trick := range []string{"roll over", "play dead", "sit", "stay"} {
				last, err = school.AddTrick(ctx, "Fido", trick)
				require.NoError(t, err)
			}
			require.NoError(t, runner.Wait(ctx, last, 10*time.Second))
			assert.Equal(t, [2]int{2, 4}, counts(t, view))

			err = runner.Wait(ctx, last+1, 50*time.Millisecond)
			assert.ErrorIs(t, err, recorder.ErrTimeout)
		})
	}
}

// A restarted runner resumes after the view's position: nothing twice.
func TestCountProjectionResumes(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	appEnv := map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": filepath.Join(dir, "school.db")}
	viewEnv := config.NewEnvFrom("CountProjection", map[string]string{"SQLITE_DBNAME": filepath.Join(dir, "view.db")}, nil)
	for round := 1; round <= 3; round++ {
		view, err := dogschool.OpenSQLiteCountView(ctx, viewEnv)
		require.NoError(t, err)
		runner := projection.NewRunner(dogschool.NewTrainingSchool, dogschool.CountProjection{View: view}, view, appEnv)
		require.NoError(t, runner.Start(ctx))
		school := runner.App()
		if round == 1 {
			_, err = school.Register(ctx, "Fido")
			require.NoError(t, err)
		}
		last, err := school.AddTrick(ctx, "Fido", "trick")
		require.NoError(t, err)
		require.NoError(t, runner.Wait(ctx, last, 10*time.Second))
		assert.Equal(t, [2]int{1, round}, counts(t, view), "round %d", round)
		require.NoError(t, runner.Stop())
		require.NoError(t, view.Close())
	}
}

var errRefused = errors.New("refused")

// FailingProjection fails on the tricks named "fail".
type FailingProjection struct{ dogschool.CountProjection }

func (p FailingProjection) Process(ctx context.Context, e eventsourcing.Event, t recorder.Tracking) (bool, error) {
	if d, ok := e.Data.(dogschool.TrickAdded); ok && d.Trick == "fail" {
		return false, errRefused
	}
	return p.CountProjection.Process(ctx, e, t)
}

// A processing error stops the runner; Wait and Stop return it; the events
// before it are recorded (also when they were in one batch with it).
func TestProjectionError(t *testing.T) {
	for _, vc := range viewCases(t) {
		t.Run(vc.name, func(t *testing.T) {
			ctx := t.Context()
			school, err := dogschool.NewTrainingSchool(ctx, nil)
			require.NoError(t, err)
			defer school.Close()
			_, err = school.Register(ctx, "Fido")
			require.NoError(t, err)
			_, err = school.AddTrick(ctx, "Fido", "sit")
			require.NoError(t, err)
			bad, err := school.AddTrick(ctx, "Fido", "fail")
			require.NoError(t, err)
			last, err := school.AddTrick(ctx, "Fido", "stay")
			require.NoError(t, err)

			view := vc.open(t)
			runner := projection.NewRunnerFor(school, FailingProjection{dogschool.CountProjection{View: view}}, view)
			require.NoError(t, runner.Start(ctx))
			err = runner.Wait(ctx, last, 10*time.Second)
			require.ErrorIs(t, err, errRefused)
			var pe *projection.ProcessingError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, bad, pe.NotificationID)
			assert.Equal(t, [2]int{1, 1}, counts(t, view), "the events before the failing one are recorded")
			ok, err := view.HasTrackingID(ctx, "TrainingSchool", bad)
			require.NoError(t, err)
			assert.False(t, ok, "the failing event is not tracked")
			require.ErrorIs(t, runner.Stop(), errRefused)
			require.ErrorIs(t, runner.Stop(), errRefused, "Stop is idempotent")
		})
	}
}

// Wait after Stop reports the stop, not a timeout.
func TestProjectionWaitAfterStop(t *testing.T) {
	ctx := t.Context()
	view := dogschool.NewMemoryCountView()
	runner := projection.NewRunner(dogschool.NewTrainingSchool, dogschool.CountProjection{View: view}, view, nil)
	assert.ErrorIs(t, runner.Wait(ctx, 1, time.Millisecond), projection.ErrNotStarted)
	require.NoError(t, runner.Start(ctx))
	require.NoError(t, runner.Stop())
	assert.ErrorIs(t, runner.Wait(ctx, 1, 10*time.Second), projection.ErrStopped)
	assert.ErrorIs(t, runner.Start(ctx), projection.ErrAlreadyStarted)
}
