package esdb_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/esdb"
	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
	"github.com/eventsourcing-go/eventsourcing/persistence"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/recordertest"
)

// capabilities are what EventStoreDB lawfully lacks or adds:
//   - ids are $all commit positions: increasing, with gaps (no ContiguousIDs);
//   - a $all read must start at 0 or a record's position (ExactStartPositions);
//   - an append cannot be held open between validation and commit (no HoldInsert);
//   - appends are atomic within one stream only (no MultiOriginatorBatches);
//   - stream revisions are gap-free, so version gaps conflict (RejectsVersionGaps);
//   - tracking works only with EVENTSTOREDB_TRACKING_IN_METADATA (Tracking is
//     declared for the suite's factories, which set it).
func capabilities(tracking bool) recordertest.Capabilities {
	return recordertest.Capabilities{
		ContiguousIDs:          false,
		ExactStartPositions:    true,
		HoldInsert:             false,
		Tracking:               tracking,
		Subscribe:              true,
		MultiOriginatorBatches: false,
		RejectsVersionGaps:     true,
		SnapshotUpTo:           true,
	}
}

// openOn opens the module on a server URI through the registry, as an
// application would.
func openOn(tb testing.TB, name, uri string, extra map[string]string) recorder.Factory {
	tb.Helper()
	env := map[string]string{"PERSISTENCE_MODULE": "eventstoredb", esdb.KeyURI: uri}
	for k, v := range extra {
		env[k] = v
	}
	f, err := persistence.Open(tb.Context(), config.NewEnvFrom(name, env, nil))
	require.NoError(tb, err)
	return f
}

func conformanceFactory(name string, tracking bool, open func(tb testing.TB) string) recordertest.Factory {
	extra := map[string]string{}
	if tracking {
		extra[esdb.KeyTrackingInMetadata] = "true"
	}
	return recordertest.Factory{
		Name: name,
		Open: func(tb testing.TB) recorder.Factory { return openOn(tb, "conformance", open(tb), extra) },
		Caps: capabilities(tracking),
	}
}

// A fresh esdbtest server per case: the suite needs empty stores, and
// EventStoreDB has one $all per database.
func esdbtestURI(tb testing.TB) string { return esdbtest.Start(tb).URI() }

func TestConformance(t *testing.T) {
	recordertest.Run(t, conformanceFactory("eventstoredb on esdbtest", true, esdbtestURI))
}

func TestConformanceWithoutTracking(t *testing.T) {
	f := conformanceFactory("eventstoredb on esdbtest, no tracking", false, esdbtestURI)
	r, err := f.Open(t).ProcessRecorder(t.Context())
	require.ErrorIs(t, err, recorder.ErrNotSupported)
	require.Nil(t, r)
	_, err = f.Open(t).TrackingRecorder(t.Context())
	require.ErrorIs(t, err, recorder.ErrNotSupported)
}
