package postgres_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/postgres"
	"github.com/eventsourcing-go/eventsourcing/recorder/recordertest"
)

var factory = recordertest.Factory{
	Name: "postgres",
	Open: func(tb testing.TB) recorder.Factory {
		f, err := postgres.Open(tb.Context(), testEnv(tb, "conformance", "POSTGRES_POOL_SIZE", "20"))
		require.NoError(tb, err)
		return f
	},
	Caps: recordertest.DefaultCapabilities(),
	// Each round of the race cases is 20 fsynced commits attempts; 10 rounds
	// keep the suite within its time budget with the same coverage of the race.
	RaceRounds: 10,
}

func TestConformance(t *testing.T) {
	requirePostgres(t)
	recordertest.Run(t, factory)
}
