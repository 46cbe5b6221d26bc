package sqlite_test

import (
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"
)

// openRaw opens path with the driver directly, as another process would.
func openRaw(t testing.TB, path string) *sql.DB {
	db, err := sql.Open("sqlite", path+"?_busy_timeout=5000&_txlock=immediate")
	require.NoError(t, err)
	return db
}
