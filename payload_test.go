package eventsourcing_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	es "github.com/eventsourcing-go/eventsourcing"
)

// Journal keeps every payload it applies, so that a test can check that
// replayed payloads are whole and independent of each other.
type Journal struct {
	es.Aggregate
	Entries []any
}

func (j *Journal) Apply(data any) { j.Entries = append(j.Entries, data) }

type (
	Opened  struct{ Title string }
	Noted   struct{ Text string }         // boxed through a pointer
	Tagged  struct{ Tags map[string]int } // pointer-shaped: boxed as is
	Counted struct{ N int }               // small, boxed through a pointer
	Ticked  struct{}                      // no size
)

// Payloads of every shape, in runs of one type longer and shorter than the
// decoder's arena chunks, come back as they were triggered.
func TestReplayPayloads(t *testing.T) {
	ctx := context.Background()
	types := es.NewTypes()
	es.MustRegister[Journal](types, "journal:Journal")
	es.MustRegister[Opened](types, "journal:Opened")
	es.MustRegister[Noted](types, "journal:Noted")
	es.MustRegister[Tagged](types, "journal:Tagged")
	es.MustRegister[Counted](types, "journal:Counted")
	es.MustRegister[Ticked](types, "journal:Ticked")
	app := newApp(t, es.Options{Name: "Journal", Types: types})

	j := &Journal{}
	es.Create(j, es.NewID(), Opened{Title: "log"})
	for i, run := range []int{1, 2, 15, 16, 17, 40, 3} {
		for k := range run {
			var data any
			switch i % 4 {
			case 0:
				data = Noted{Text: fmt.Sprint("note ", i, " ", k)}
			case 1:
				data = Tagged{Tags: map[string]int{fmt.Sprint(i): k}}
			case 2:
				data = Counted{N: 1000*i + k}
			default:
				data = Ticked{}
			}
			es.Trigger(j, data)
		}
	}
	_, err := app.Save(ctx, j)
	require.NoError(t, err)

	first, err := es.Get[Journal](ctx, app, j.ID())
	require.NoError(t, err)
	assert.Equal(t, j.Entries, first.Entries)
	assert.Equal(t, j.Version(), first.Version())
	assert.Equal(t, j.ModifiedOn(), first.ModifiedOn())
	second, err := es.Get[Journal](ctx, app, j.ID())
	require.NoError(t, err)
	assert.Equal(t, j.Entries, second.Entries)
	assert.Equal(t, j.Entries, first.Entries, "a later get changed an earlier get's payloads")
}
