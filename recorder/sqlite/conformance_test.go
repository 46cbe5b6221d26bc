package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/recordertest"
	"github.com/eventsourcing-go/eventsourcing/recorder/sqlite"
)

func factory(dbname func(tb testing.TB) string, kv ...string) recordertest.Factory {
	return recordertest.Factory{
		Name: "sqlite",
		Open: func(tb testing.TB) recorder.Factory {
			m := map[string]string{"SQLITE_DBNAME": dbname(tb)}
			for i := 0; i+1 < len(kv); i += 2 {
				m[kv[i]] = kv[i+1]
			}
			f, err := sqlite.Open(tb.Context(), config.NewEnvFrom("", m, nil))
			require.NoError(tb, err)
			return f
		},
		Caps: recordertest.DefaultCapabilities(),
	}
}

func fileDB(tb testing.TB) string { return filepath.Join(tb.TempDir(), "app.db") }
func memoryDB(testing.TB) string  { return ":memory:" }

func TestConformance(t *testing.T) {
	t.Run("File", func(t *testing.T) { recordertest.Run(t, factory(fileDB)) })
	t.Run("Memory", func(t *testing.T) { recordertest.Run(t, factory(memoryDB)) })
}
