package dogschool_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	_ "github.com/eventsourcing-go/eventsourcing/recorder/postgres"
	_ "github.com/eventsourcing-go/eventsourcing/recorder/sqlite"
)

// pgDefaults are the settings of .ci/postgres.sh; the process environment wins.
var pgDefaults = map[string]string{
	"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "5432", "POSTGRES_USER": "eventsourcing",
	"POSTGRES_PASSWORD": "eventsourcing", "POSTGRES_DBNAME": "eventsourcing",
}

func pgSetting(key string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return pgDefaults[key]
}

func pgDSN() string {
	return fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=%s connect_timeout=5",
		pgSetting("POSTGRES_HOST"), pgSetting("POSTGRES_PORT"), pgSetting("POSTGRES_USER"),
		pgSetting("POSTGRES_PASSWORD"), pgSetting("POSTGRES_DBNAME"))
}

var (
	pgOnce sync.Once
	pgErr  error
)

// postgresEnv returns settings for PostgreSQL in a schema of the test's own,
// dropped at the end. It skips the test when the server is unreachable,
// unless CI=true, where it fails.
func postgresEnv(t testing.TB) map[string]string {
	t.Helper()
	pgOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, pgDSN())
		if err == nil {
			err = conn.Ping(ctx)
			_ = conn.Close(ctx)
		}
		pgErr = err
	})
	if pgErr != nil {
		msg := fmt.Sprintf("PostgreSQL not reachable (%v); run eval \"$(bash .ci/postgres.sh)\" to enable", pgErr)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	schema := "es_sys_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, pgDSN()); err == nil {
			_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
			_ = conn.Close(ctx)
		}
	})
	env := map[string]string{"PERSISTENCE_MODULE": "postgres", "POSTGRES_SCHEMA": schema}
	for k := range pgDefaults {
		env[k] = pgSetting(k)
	}
	return env
}

// sqliteEnv gives each application of a system its own database file.
func sqliteEnv(t testing.TB, apps ...string) map[string]string {
	dir := t.TempDir()
	env := map[string]string{"PERSISTENCE_MODULE": "sqlite"}
	for _, a := range apps {
		env[strings.ToUpper(a)+"_SQLITE_DBNAME"] = filepath.Join(dir, strings.ToLower(a)+".db")
	}
	return env
}
