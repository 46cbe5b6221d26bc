package postgres_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/recorder/postgres"
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
	base := "POSTGRES_DBNAME=es\nPOSTGRES_HOST=127.0.0.1\nPOSTGRES_USER=es\nPOSTGRES_PASSWORD=\n"
	f.Add("App", base)
	f.Add("App", base+"POSTGRES_PORT=65536\nPOSTGRES_POOL_SIZE=-1")
	f.Add("App", base+"APP_POSTGRES_CONNECT_TIMEOUT=1e300\nPOSTGRES_SCHEMA= \nPOSTGRES_SSLMODE=verify-full\nORIGINATOR_ID_TYPE=text")
	f.Add("", base+"POSTGRES_LOCK_TIMEOUT=-0.5\nPOSTGRES_POLL_INTERVAL=1h\nCREATE_TABLE=maybe")
	f.Add("App", "POSTGRES_HOST=")
	f.Fuzz(func(t *testing.T, name, settings string) {
		c, err := postgres.ParseConfig(fuzzEnv(name, settings))
		if err != nil {
			if !errors.Is(err, config.ErrConfiguration) {
				t.Fatalf("error does not match ErrConfiguration: %v", err)
			}
			return
		}
		if c.Port <= 0 || c.Port > 65535 || c.PoolSize < 0 || c.MaxOverflow < 0 || c.ConnectTimeout < 0 || c.PollInterval < 0 {
			t.Fatalf("accepted an invalid configuration: %+v", c)
		}
	})
}
