package sqlite_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/recorder/sqlite"
)

// fuzzEnv reads settings written one KEY=VALUE a line.
func fuzzEnv(name, settings string) config.Env {
	kv := map[string]string{}
	for _, line := range strings.Split(settings, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			kv[k] = v
		}
	}
	return config.NewEnvFrom(name, kv, nil)
}

// FuzzParseConfig parses arbitrary settings: a valid configuration or an
// error matching ErrConfiguration, never a panic.
func FuzzParseConfig(f *testing.F) {
	f.Add("App", "SQLITE_DBNAME=:memory:")
	f.Add("App", "APP_SQLITE_DBNAME=file:x.db?mode=memory\nSQLITE_LOCK_TIMEOUT=2.5\nSQLITE_SYNCHRONOUS= normal \nSQLITE_POOL_SIZE=0\nSQLITE_MAX_OVERFLOW=1")
	f.Add("", "SQLITE_DBNAME=db\nSQLITE_POLL_INTERVAL=250ms\nCREATE_TABLE=no\nSQLITE_LOCK_TIMEOUT=-1")
	f.Add("App", "SQLITE_DBNAME=db\nSQLITE_LOCK_TIMEOUT=inf\nSQLITE_SYNCHRONOUS=sometimes")
	f.Fuzz(func(t *testing.T, name, settings string) {
		c, err := sqlite.ParseConfig(fuzzEnv(name, settings))
		if err != nil {
			if !errors.Is(err, config.ErrConfiguration) {
				t.Fatalf("error does not match ErrConfiguration: %v", err)
			}
			return
		}
		if c.DBName == "" || c.LockTimeout < 0 || c.PoolSize < 0 || c.MaxOverflow < 0 || c.PoolSize+c.MaxOverflow < 1 {
			t.Fatalf("accepted an invalid configuration: %+v", c)
		}
	})
}
