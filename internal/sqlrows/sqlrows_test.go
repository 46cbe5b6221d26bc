package sqlrows

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// fakeRows yields its rows, each a list of values assigned to the
// destinations in order, then err.
type fakeRows struct {
	rows [][]any
	at   int
	err  error
}

func (f *fakeRows) Next() bool { f.at++; return f.at <= len(f.rows) }

func (f *fakeRows) Err() error { return f.err }

func (f *fakeRows) Scan(dest ...any) error {
	row := f.rows[f.at-1]
	if len(dest) != len(row) {
		return fmt.Errorf("%d destinations for %d columns", len(dest), len(row))
	}
	for i, v := range row {
		switch d := dest[i].(type) {
		case *int64:
			*d = v.(int64)
		case *string:
			*d = v.(string)
		case *[]byte:
			*d = v.([]byte)
		default:
			return fmt.Errorf("column %d: unexpected destination %T", i, d)
		}
	}
	return nil
}

func TestEvents(t *testing.T) {
	tests := []struct {
		name   string
		rows   [][]any
		traced bool
		want   []recorder.StoredEvent
	}{
		{name: "no rows", want: []recorder.StoredEvent{}},
		{
			name: "untraced",
			rows: [][]any{{int64(1), "a", []byte("x")}, {int64(2), "b", []byte("y")}},
			want: []recorder.StoredEvent{
				{OriginatorID: "o", OriginatorVersion: 1, Topic: "a", State: []byte("x")},
				{OriginatorID: "o", OriginatorVersion: 2, Topic: "b", State: []byte("y")},
			},
		},
		{
			name:   "traced, one without a trace context",
			rows:   [][]any{{int64(1), "a", []byte("x"), "00-t-s-01"}, {int64(2), "b", []byte("y"), ""}},
			traced: true,
			want: []recorder.StoredEvent{
				{OriginatorID: "o", OriginatorVersion: 1, Topic: "a", State: []byte("x"), TraceParent: "00-t-s-01"},
				{OriginatorID: "o", OriginatorVersion: 2, Topic: "b", State: []byte("y")},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Events(&fakeRows{rows: tt.rows}, "o", tt.traced)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestNotifications(t *testing.T) {
	rows := &fakeRows{rows: [][]any{
		{int64(7), "o", int64(1), "a", []byte("x"), "00-t-s-01"},
		{int64(8), "p", int64(3), "b", []byte("y"), ""},
	}}
	got, err := Notifications(rows, 10, true)
	require.NoError(t, err)
	assert.Equal(t, []recorder.Notification{
		{ID: 7, StoredEvent: recorder.StoredEvent{OriginatorID: "o", OriginatorVersion: 1, Topic: "a", State: []byte("x"), TraceParent: "00-t-s-01"}},
		{ID: 8, StoredEvent: recorder.StoredEvent{OriginatorID: "p", OriginatorVersion: 3, Topic: "b", State: []byte("y")}},
	}, got)
	assert.Equal(t, 10, cap(got))

	got, err = Notifications(&fakeRows{}, 0, false)
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.NotNil(t, got)
}

func TestErrors(t *testing.T) {
	boom := errors.New("boom")
	_, err := Events(&fakeRows{err: boom}, "o", false)
	assert.ErrorIs(t, err, boom)
	_, err = Notifications(&fakeRows{err: boom}, 1, false)
	assert.ErrorIs(t, err, boom)

	// A row of the wrong width fails the scan.
	_, err = Events(&fakeRows{rows: [][]any{{int64(1), "a", []byte("x")}}}, "o", true)
	assert.Error(t, err)
	_, err = Notifications(&fakeRows{rows: [][]any{{int64(1), "o", int64(1), "a", []byte("x"), ""}}}, 1, false)
	assert.Error(t, err)
}

func TestScanAllocations(t *testing.T) {
	row := []any{int64(1), "a", []byte("x"), "tp"}
	rows := make([][]any, 100)
	for i := range rows {
		rows[i] = row
	}
	f := &fakeRows{rows: rows}
	allocs := testing.AllocsPerRun(20, func() {
		f.at = 0
		if _, err := Events(f, "o", true); err != nil {
			t.Fatal(err)
		}
	})
	// The result slice's growth and the one destination array, none per row.
	assert.Less(t, allocs, 15.0)
}
