package sqlite

import (
	"fmt"
	"strings"
	"time"

	"github.com/eventsourcing-go/eventsourcing/config"
)

// Config is the module's configuration, read from an application's Env by
// ParseConfig. The zero values of the optional fields are not the defaults:
// build a Config with ParseConfig or DefaultConfig.
type Config struct {
	// DBName is a file path, ":memory:", or a "file:" URI.
	DBName string
	// LockTimeout is how long a connection waits for a lock (busy timeout).
	LockTimeout time.Duration
	// Synchronous is SQLite's synchronous pragma: OFF, NORMAL, FULL or EXTRA.
	Synchronous string
	// PollInterval is how often a caught-up subscription polls for commits
	// made by other processes; zero disables polling.
	PollInterval time.Duration
	// PoolSize and MaxOverflow bound the reader connections (their sum).
	PoolSize, MaxOverflow int
	// CreateTable creates the tables on Open.
	CreateTable bool
}

// Configuration keys.
const (
	KeyDBName       = "SQLITE_DBNAME"
	KeyLockTimeout  = "SQLITE_LOCK_TIMEOUT"
	KeySynchronous  = "SQLITE_SYNCHRONOUS"
	KeyPollInterval = "SQLITE_POLL_INTERVAL"
	KeyPoolSize     = "SQLITE_POOL_SIZE"
	KeyMaxOverflow  = "SQLITE_MAX_OVERFLOW"
	KeyCreateTable  = "CREATE_TABLE"
)

// DefaultConfig returns the defaults for a database name.
func DefaultConfig(dbname string) Config {
	return Config{
		DBName:       dbname,
		LockTimeout:  5 * time.Second,
		Synchronous:  "FULL",
		PollInterval: 100 * time.Millisecond,
		PoolSize:     5,
		MaxOverflow:  10,
		CreateTable:  true,
	}
}

// ParseConfig reads the configuration from env. Malformed or missing settings
// are errors matching config.ErrConfiguration that name the keys.
func ParseConfig(env config.Env) (Config, error) {
	name, ok := env.Lookup(KeyDBName)
	if !ok || strings.TrimSpace(name) == "" {
		return Config{}, fmt.Errorf("%w: SQLite database name not set: set %s or %s (a file path, :memory: or a file: URI)",
			config.ErrConfiguration, env.Prefixed(KeyDBName), KeyDBName)
	}
	c := DefaultConfig(name)
	var err error
	if c.LockTimeout, err = env.Seconds(KeyLockTimeout, c.LockTimeout); err != nil {
		return Config{}, err
	}
	if c.LockTimeout < 0 {
		return Config{}, fmt.Errorf("%w: %s must not be negative", config.ErrConfiguration, env.Prefixed(KeyLockTimeout))
	}
	c.Synchronous = strings.ToUpper(strings.TrimSpace(env.String(KeySynchronous, c.Synchronous)))
	switch c.Synchronous {
	case "OFF", "NORMAL", "FULL", "EXTRA":
	default:
		return Config{}, fmt.Errorf("%w: %s=%q: use OFF, NORMAL, FULL or EXTRA",
			config.ErrConfiguration, env.Prefixed(KeySynchronous), c.Synchronous)
	}
	if c.PollInterval, err = env.Seconds(KeyPollInterval, c.PollInterval); err != nil {
		return Config{}, err
	}
	if c.PoolSize, err = env.Int(KeyPoolSize, c.PoolSize); err != nil {
		return Config{}, err
	}
	if c.MaxOverflow, err = env.Int(KeyMaxOverflow, c.MaxOverflow); err != nil {
		return Config{}, err
	}
	if c.PoolSize < 0 || c.MaxOverflow < 0 || c.PoolSize+c.MaxOverflow < 1 {
		return Config{}, fmt.Errorf("%w: %s and %s must not be negative and must allow at least one connection",
			config.ErrConfiguration, env.Prefixed(KeyPoolSize), env.Prefixed(KeyMaxOverflow))
	}
	if c.CreateTable, err = env.Bool(KeyCreateTable, c.CreateTable); err != nil {
		return Config{}, err
	}
	return c, nil
}
