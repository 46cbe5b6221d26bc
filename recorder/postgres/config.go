package postgres

import (
	"fmt"
	"strings"
	"time"

	"github.com/eventsourcing-go/eventsourcing/config"
)

// Config is the module's configuration, read from an application's Env by ParseConfig.
type Config struct {
	DBName, Host, User, Password string
	Port                         int
	PoolSize, MaxOverflow        int
	ConnectTimeout               time.Duration
	ConnMaxAge                   time.Duration
	IdleInTransactionTimeout     time.Duration
	LockTimeout                  time.Duration // 0 = no limit
	Schema                       string
	PollInterval                 time.Duration
	SSLMode                      string // empty = pgx's default
	OriginatorIDType             string // "uuid" or "text"
	CreateTable                  bool
	// Name is the application's name: it prefixes the table names.
	Name string
}

// Configuration keys.
const (
	KeyDBName                   = "POSTGRES_DBNAME"
	KeyHost                     = "POSTGRES_HOST"
	KeyPort                     = "POSTGRES_PORT"
	KeyUser                     = "POSTGRES_USER"
	KeyPassword                 = "POSTGRES_PASSWORD"
	KeyPoolSize                 = "POSTGRES_POOL_SIZE"
	KeyMaxOverflow              = "POSTGRES_MAX_OVERFLOW"
	KeyConnectTimeout           = "POSTGRES_CONNECT_TIMEOUT"
	KeyConnMaxAge               = "POSTGRES_CONN_MAX_AGE"
	KeyIdleInTransactionTimeout = "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT"
	KeyLockTimeout              = "POSTGRES_LOCK_TIMEOUT"
	KeySchema                   = "POSTGRES_SCHEMA"
	KeyPollInterval             = "POSTGRES_POLL_INTERVAL"
	KeySSLMode                  = "POSTGRES_SSLMODE"
	KeyOriginatorIDType         = "ORIGINATOR_ID_TYPE"
	KeyCreateTable              = "CREATE_TABLE"
)

// ParseConfig reads the configuration from env. Missing or malformed settings
// are errors matching config.ErrConfiguration that name the keys.
func ParseConfig(env config.Env) (Config, error) {
	c := Config{
		Port: 5432, PoolSize: 5, MaxOverflow: 10,
		ConnectTimeout: 30 * time.Second, ConnMaxAge: time.Hour, IdleInTransactionTimeout: 5 * time.Second,
		Schema: "public", PollInterval: time.Second, OriginatorIDType: "uuid", CreateTable: true,
		Name: env.Name(),
	}
	var missing []string
	for _, s := range []struct {
		key string
		dst *string
	}{{KeyDBName, &c.DBName}, {KeyHost, &c.Host}, {KeyUser, &c.User}, {KeyPassword, &c.Password}} {
		v, ok := env.Lookup(s.key)
		if !ok || (s.key != KeyPassword && strings.TrimSpace(v) == "") {
			missing = append(missing, env.Prefixed(s.key)+" or "+s.key)
			continue
		}
		*s.dst = v
	}
	if len(missing) > 0 {
		return Config{}, fmt.Errorf("%w: PostgreSQL settings missing: set %s", config.ErrConfiguration, strings.Join(missing, ", "))
	}
	var err error
	ints := []struct {
		key string
		dst *int
	}{{KeyPort, &c.Port}, {KeyPoolSize, &c.PoolSize}, {KeyMaxOverflow, &c.MaxOverflow}}
	for _, s := range ints {
		if *s.dst, err = env.Int(s.key, *s.dst); err != nil {
			return Config{}, err
		}
	}
	if c.Port <= 0 || c.Port > 65535 {
		return Config{}, fmt.Errorf("%w: %s=%d is not a port", config.ErrConfiguration, env.Prefixed(KeyPort), c.Port)
	}
	if c.PoolSize < 0 || c.MaxOverflow < 0 || c.PoolSize+c.MaxOverflow < 1 {
		return Config{}, fmt.Errorf("%w: %s and %s must not be negative and must allow at least one connection",
			config.ErrConfiguration, env.Prefixed(KeyPoolSize), env.Prefixed(KeyMaxOverflow))
	}
	durations := []struct {
		key string
		dst *time.Duration
	}{
		{KeyConnectTimeout, &c.ConnectTimeout}, {KeyConnMaxAge, &c.ConnMaxAge},
		{KeyIdleInTransactionTimeout, &c.IdleInTransactionTimeout}, {KeyLockTimeout, &c.LockTimeout},
		{KeyPollInterval, &c.PollInterval},
	}
	for _, s := range durations {
		if *s.dst, err = env.Seconds(s.key, *s.dst); err != nil {
			return Config{}, err
		}
		if *s.dst < 0 {
			return Config{}, fmt.Errorf("%w: %s must not be negative", config.ErrConfiguration, env.Prefixed(s.key))
		}
	}
	c.Schema = env.String(KeySchema, c.Schema)
	if strings.TrimSpace(c.Schema) == "" {
		c.Schema = "public"
	}
	c.SSLMode = env.String(KeySSLMode, c.SSLMode)
	c.OriginatorIDType = strings.ToLower(strings.TrimSpace(env.String(KeyOriginatorIDType, c.OriginatorIDType)))
	if c.OriginatorIDType != "uuid" && c.OriginatorIDType != "text" {
		return Config{}, fmt.Errorf("%w: %s=%q: use uuid or text", config.ErrConfiguration, env.Prefixed(KeyOriginatorIDType), c.OriginatorIDType)
	}
	if c.CreateTable, err = env.Bool(KeyCreateTable, c.CreateTable); err != nil {
		return Config{}, err
	}
	return c, nil
}
