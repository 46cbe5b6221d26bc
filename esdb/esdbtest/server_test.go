package esdbtest_test

import (
	"crypto/x509"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
)

func TestTLS(t *testing.T) {
	srv := esdbtest.Start(t, esdbtest.WithTLS())
	assert.Contains(t, srv.URI(), "tls=true")
	c := esdbtest.Dial(t, srv.URI())
	_, err := c.AppendToStream(ctxT(t), streamName(), esdb.AppendToStreamOptions{}, evs(1)...)
	require.NoError(t, err)

	// The CA PEM works as RootCAs too.
	cfg, err := esdb.ParseConnectionString("esdb://" + srv.Addr().String())
	require.NoError(t, err)
	cfg.RootCAs = x509.NewCertPool()
	require.True(t, cfg.RootCAs.AppendCertsFromPEM(srv.CACertPEM()))
	cfg.Logger = esdb.NoopLogging()
	c2, err := esdb.NewClient(cfg)
	require.NoError(t, err)
	defer c2.Close()
	_, err = readStream(t, c2, "$users", esdb.ReadStreamOptions{}, 1)
	require.NoError(t, err)
}

func TestUsers(t *testing.T) {
	srv := esdbtest.Start(t, esdbtest.WithTLS(), esdbtest.WithUsers(map[string]string{"admin": "changeit"}))

	ok := esdbtest.Dial(t, srv.URIWithCredentials("admin", "changeit"))
	_, err := ok.AppendToStream(ctxT(t), streamName(), esdb.AppendToStreamOptions{}, evs(1)...)
	require.NoError(t, err)

	anon := esdbtest.Dial(t, srv.URI())
	_, err = anon.AppendToStream(ctxT(t), streamName(), esdb.AppendToStreamOptions{}, evs(1)...)
	assert.Equal(t, esdb.ErrorCodeAccessDenied, errCode(err))

	bad := esdbtest.Dial(t, srv.URIWithCredentials("admin", "wrong"))
	_, err = bad.AppendToStream(ctxT(t), streamName(), esdb.AppendToStreamOptions{}, evs(1)...)
	assert.Equal(t, esdb.ErrorCodeUnauthenticated, errCode(err))

	// Per-call credentials override the connection's.
	_, err = anon.AppendToStream(ctxT(t), streamName(), esdb.AppendToStreamOptions{
		Authenticated: &esdb.Credentials{Login: "admin", Password: "changeit"}}, evs(1)...)
	require.NoError(t, err)
}

func TestDataDirRestart(t *testing.T) {
	dir := t.TempDir()
	srv, err := esdbtest.NewServer(esdbtest.WithDataDir(dir))
	require.NoError(t, err)
	addr := srv.Addr().String()
	c := esdbtest.Dial(t, srv.URI())
	ctx := ctxT(t)
	name := streamName()
	_, err = c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, evs(10)...)
	require.NoError(t, err)
	_, err = c.DeleteStream(ctx, "other-"+name, esdb.DeleteStreamOptions{})
	require.Error(t, err)
	require.NoError(t, c.CreatePersistentSubscription(ctx, name, "g", esdb.PersistentStreamSubscriptionOptions{}))
	before, err := readAll(t, c, esdb.ReadAllOptions{}, 10000)
	require.NoError(t, err)
	require.NoError(t, srv.Close())

	srv2 := esdbtest.Start(t, esdbtest.WithDataDir(dir), esdbtest.WithAddr(addr))
	assert.Equal(t, srv.URI(), srv2.URI())
	c2 := esdbtest.Dial(t, srv2.URI())
	after, err := readAll(t, c2, esdb.ReadAllOptions{}, 10000)
	require.NoError(t, err)
	require.Len(t, after, len(before))
	for i := range before {
		assert.Equal(t, before[i].Event.Position, after[i].Event.Position)
		assert.Equal(t, before[i].Event.EventID, after[i].Event.EventID)
		assert.Equal(t, before[i].Event.CreatedDate, after[i].Event.CreatedDate)
	}
	// Numbering and positions continue.
	r, err := c2.AppendToStream(ctxT(t), name, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(9)}, evs(1)...)
	require.NoError(t, err)
	assert.Greater(t, r.CommitPosition, after[len(after)-1].Event.Position.Commit)
	_, err = c2.GetPersistentSubscriptionInfo(ctxT(t), name, "g", esdb.GetPersistentSubscriptionOptions{})
	require.NoError(t, err)
}
