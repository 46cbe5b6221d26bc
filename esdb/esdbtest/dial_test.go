package esdbtest

import (
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/stretchr/testify/require"
)

// Dial connects the official client to a connection string the way users
// do, through ParseConnectionString (a hand-built Configuration never
// connects), and closes it at the end of the test. The tests of both
// packages use it.
func Dial(tb testing.TB, uri string) *esdb.Client {
	tb.Helper()
	cfg, err := esdb.ParseConnectionString(uri)
	require.NoError(tb, err)
	cfg.Logger = esdb.NoopLogging()
	c, err := esdb.NewClient(cfg)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}
