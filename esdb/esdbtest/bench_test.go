package esdbtest_test

import (
	"context"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/stretchr/testify/require"
)

// BenchmarkAppendSingle measures one-event appends through the official
// client, one writer (target: 10,000 appends/s).
func BenchmarkAppendSingle(b *testing.B) {
	_, c := startClient(b)
	ctx := context.Background()
	name := streamName()
	e := evs(1)
	b.ResetTimer()
	for b.Loop() {
		e[0].EventID = [16]byte{}
		if _, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, e...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppend100 measures appends of 100 events (target: 200,000
// events/s).
func BenchmarkAppend100(b *testing.B) {
	_, c := startClient(b)
	ctx := context.Background()
	name := streamName()
	batch := evs(100)
	for i := range batch {
		batch[i].Data = make([]byte, 100)
		batch[i].ContentType = esdb.ContentTypeBinary
	}
	b.ResetTimer()
	for b.Loop() {
		for i := range batch {
			batch[i].EventID = [16]byte{}
		}
		if _, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, batch...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReadAll measures reading $all forwards (target: 500,000
// events/s).
func BenchmarkReadAll(b *testing.B) {
	_, c := startClient(b)
	ctx := context.Background()
	batch := evs(1000)
	for i := range batch {
		batch[i].Data = make([]byte, 100)
		batch[i].ContentType = esdb.ContentTypeBinary
	}
	for range 100 {
		for i := range batch {
			batch[i].EventID = [16]byte{}
		}
		_, err := c.AppendToStream(ctx, streamName(), esdb.AppendToStreamOptions{}, batch...)
		require.NoError(b, err)
	}
	b.ResetTimer()
	var n int
	for b.Loop() {
		rs, err := c.ReadAll(ctx, esdb.ReadAllOptions{}, 1<<62)
		require.NoError(b, err)
		for {
			if _, err := rs.Recv(); err != nil {
				break
			}
			n++
		}
		rs.Close()
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
