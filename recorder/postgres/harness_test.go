package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/config"
)

// The tests connect with the POSTGRES_* variables that `bash .ci/postgres.sh`
// prints, defaulting to what it sets up.
var settings = map[string]string{
	"POSTGRES_HOST":     "127.0.0.1",
	"POSTGRES_PORT":     "5432",
	"POSTGRES_USER":     "eventsourcing",
	"POSTGRES_PASSWORD": "eventsourcing",
	"POSTGRES_DBNAME":   "eventsourcing",
}

func setting(key string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return settings[key]
}

var (
	reachOnce sync.Once
	reachErr  error
)

// requirePostgres skips the test (fails it when CI=true) if the server cannot
// be reached, saying how to enable the tests.
func requirePostgres(t testing.TB) {
	t.Helper()
	reachOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminDSN())
		if err != nil {
			reachErr = err
			return
		}
		reachErr = conn.Ping(ctx)
		_ = conn.Close(ctx)
	})
	if reachErr == nil {
		return
	}
	msg := unreachable()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// unreachable is the one line that says why the PostgreSQL tests skip and how
// to enable them.
func unreachable() string {
	cause := strings.Join(strings.Fields(reachErr.Error()), " ")
	return fmt.Sprintf("PostgreSQL not reachable at %s:%s as %s (%s); to run these tests: eval \"$(bash .ci/postgres.sh)\", or set POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DBNAME",
		setting("POSTGRES_HOST"), setting("POSTGRES_PORT"), setting("POSTGRES_USER"), cause)
}

// TestMain says once, on stderr, that the PostgreSQL tests are skipped (go test
// does not show skips without -v).
func TestMain(m *testing.M) {
	code := m.Run()
	if reachErr != nil && os.Getenv("CI") != "true" {
		fmt.Fprintln(os.Stderr, "recorder/postgres: skipped: "+unreachable())
	}
	os.Exit(code)
}

func adminDSN() string {
	return fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=%s connect_timeout=5",
		setting("POSTGRES_HOST"), setting("POSTGRES_PORT"), setting("POSTGRES_USER"), setting("POSTGRES_PASSWORD"), setting("POSTGRES_DBNAME"))
}

// testEnv returns the Env of an application whose tables live in a schema of
// the test's own, dropped when the test ends.
func testEnv(t testing.TB, name string, kv ...string) config.Env {
	t.Helper()
	requirePostgres(t)
	schema := "es_test_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	t.Cleanup(func() { dropSchema(t, schema) })
	return schemaEnv(name, schema, kv...)
}

func schemaEnv(name, schema string, kv ...string) config.Env {
	m := map[string]string{"POSTGRES_SCHEMA": schema}
	for _, k := range []string{"POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DBNAME"} {
		m[k] = setting(k)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return config.NewEnvFrom(name, m, nil)
}

func dropSchema(t testing.TB, schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminDSN())
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	require.NoError(t, err)
}

func adminExec(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminDSN())
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql, args...)
	require.NoError(t, err)
}
