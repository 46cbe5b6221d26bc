package eventsourcing_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// An application whose construction failed is nil: closing it and calling
// its methods do not panic, and saves and reads say why they cannot work.
func TestApplicationNotConstructed(t *testing.T) {
	ctx := context.Background()
	app, err := es.NewApplication(ctx, es.Options{Name: "Broken", Env: map[string]string{"PERSISTENCE_MODULE": "nosuchmodule"}, Lookup: es.NoEnvironment})
	require.ErrorIs(t, err, recorder.ErrInfrastructureFactory)
	require.Nil(t, app)

	require.NotPanics(t, func() {
		assert.NoError(t, app.Close())
		assert.NoError(t, app.Close())
		assert.Empty(t, app.Name())
		assert.NotNil(t, app.Types())
		assert.Nil(t, app.Recorder())
		assert.Nil(t, app.Factory())
		assert.Empty(t, app.PersistenceModule())
		assert.NotNil(t, app.Logger())
		app.OnSave(func(context.Context, []es.Recording) error { return nil })
		_, ok := app.ProcessRecorder()
		assert.False(t, ok)

		_, err := app.Save(ctx)
		assert.ErrorIs(t, err, es.ErrNotConstructed)
		_, err = app.Log().Section(ctx, "1,10")
		assert.ErrorIs(t, err, es.ErrNotConstructed)
		_, err = es.Get[Counter](ctx, app, es.NewID())
		assert.ErrorIs(t, err, es.ErrNotConstructed)
	})
}

// The module's name is matched regardless of case, with a warning, and the
// application says which module it records with.
func TestPersistenceModuleName(t *testing.T) {
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	ctx := context.Background()
	app, err := es.NewApplication(ctx, es.Options{Name: "Cased", Env: map[string]string{"PERSISTENCE_MODULE": "Memory"}, Lookup: es.NoEnvironment})
	require.NoError(t, err)
	defer app.Close()
	assert.Equal(t, "memory", app.PersistenceModule())
	assert.Contains(t, logs.String(), "regardless of case")
	assert.Contains(t, logs.String(), "given=Memory")

	// A misspelt key is ignored, so the default module is used, and said so.
	logs.Reset()
	app2, err := es.NewApplication(ctx, es.Options{Name: "Misspelt", Env: map[string]string{"MISSPELT_PERSISTANCE_MODULE": "sqlite"}, Lookup: es.NoEnvironment})
	require.NoError(t, err)
	defer app2.Close()
	assert.Equal(t, "memory", app2.PersistenceModule())
	assert.Contains(t, logs.String(), "key=MISSPELT_PERSISTANCE_MODULE")
	assert.Contains(t, logs.String(), "did_you_mean=MISSPELT_PERSISTENCE_MODULE")

	// Other settings too.
	logs.Reset()
	app3, err := es.NewApplication(ctx, es.Options{Name: "Other", Env: map[string]string{"IS_SNAPSHOTING_ENABLED": "y", "CIPHER_TOPIC": ""}, Lookup: es.NoEnvironment})
	require.NoError(t, err)
	defer app3.Close()
	assert.Contains(t, logs.String(), "key=IS_SNAPSHOTING_ENABLED")
	assert.Contains(t, logs.String(), "did_you_mean=IS_SNAPSHOTTING_ENABLED")
	assert.NotContains(t, logs.String(), "key=CIPHER_TOPIC", "a key spelt right is not warned about")

	// A known module that the binary does not link: the error names the
	// package to import.
	_, err = es.NewApplication(ctx, es.Options{Name: "Unlinked", Env: map[string]string{"PERSISTENCE_MODULE": "SQLite"}, Lookup: es.NoEnvironment})
	require.ErrorIs(t, err, recorder.ErrInfrastructureFactory)
	assert.Contains(t, err.Error(), `import _ "github.com/eventsourcing-go/eventsourcing/recorder/sqlite"`)
	_, err = es.NewApplication(ctx, es.Options{Name: "Typo", Env: map[string]string{"PERSISTENCE_MODULE": "memroy"}, Lookup: es.NoEnvironment})
	require.ErrorIs(t, err, recorder.ErrInfrastructureFactory)
	assert.Contains(t, err.Error(), `did you mean "memory"?`)
}
