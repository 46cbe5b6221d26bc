package eventsourcing_test

import (
	"context"
	"fmt"
	"testing"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// BenchmarkSave saves a new one-event aggregate per iteration.
func BenchmarkSave(b *testing.B) {
	ctx := context.Background()
	app := newApp(b, es.Options{Name: "Bench"})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := app.Save(ctx, NewDog("Fido")); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkGet gets a ten-event aggregate per iteration.
func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	app := newApp(b, es.Options{Name: "Bench"})
	dog := NewDog("Fido")
	for i := range 9 {
		dog.AddTrick(fmt.Sprint("trick ", i))
	}
	if _, err := app.Save(ctx, dog); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		d, err := es.Get[Dog](ctx, app, dog.ID())
		if err != nil || d.Version() != 10 {
			b.Fatal(d, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
	b.ReportMetric(float64(10*b.N)/b.Elapsed().Seconds(), "events/s")
}

// newLog returns an application holding 10,000 one-event aggregates, saved
// in batches of 100, with a section size of 100.
func newLog(b *testing.B) *es.Application {
	ctx := context.Background()
	app := newApp(b, es.Options{Name: "Bench", SectionSize: 100})
	for range 100 {
		var dogs []es.Root
		for range 100 {
			dogs = append(dogs, NewDog("Fido"))
		}
		if _, err := app.Save(ctx, dogs...); err != nil {
			b.Fatal(err)
		}
	}
	return app
}

// BenchmarkSelect selects 10,000 notifications in pages of 100 through the
// application's notification log, without decoding them.
func BenchmarkSelect(b *testing.B) {
	ctx := context.Background()
	app := newLog(b)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		for _, err := range app.Log().Read(ctx, recorder.NotificationQuery{Limit: 100}) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 10000 {
			b.Fatal(n)
		}
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkSelectDecode selects 10,000 notifications in pages of 100 and
// decodes each into an Event.
func BenchmarkSelectDecode(b *testing.B) {
	ctx := context.Background()
	app := newLog(b)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		for note, err := range app.Log().Read(ctx, recorder.NotificationQuery{Limit: 100}) {
			if err != nil {
				b.Fatal(err)
			}
			if _, err := app.Mapper().ToEvent(note.StoredEvent); err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 10000 {
			b.Fatal(n)
		}
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkFromEvent encodes one event, the mapper's share of a save.
func BenchmarkFromEvent(b *testing.B) {
	m := es.NewMapper(dogTypes())
	e := es.Event{OriginatorID: es.NewID(), OriginatorVersion: 1, Timestamp: es.Now(),
		OriginatorTopic: "dogschool:Dog", Data: Registered{Name: "Fido"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.FromEvent(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkToEvent decodes one event, the mapper's share of a get.
func BenchmarkToEvent(b *testing.B) {
	m := es.NewMapper(dogTypes())
	s, err := m.FromEvent(es.Event{OriginatorID: es.NewID(), OriginatorVersion: 2, Timestamp: es.Now(),
		Data: TrickAdded{Trick: "roll over"}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.ToEvent(s); err != nil {
			b.Fatal(err)
		}
	}
}
