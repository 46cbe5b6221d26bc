package codec

import (
	"math/rand/v2"
	"testing"
	"time"
)

// The fast paths for timestamps must agree with the time package.
func TestISOFastPaths(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	times := []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1600, 2, 29, 23, 59, 59, 999999999, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2000, 2, 29, 12, 0, 0, 1000, time.UTC),
		time.Date(2100, 12, 31, 23, 59, 59, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(2020, 1, 2, 3, 4, 5, 123456789, time.FixedZone("", 5*3600+30*60)),
		time.Date(2020, 1, 2, 3, 4, 5, 0, time.FixedZone("", -(3*3600+15*60))),
		time.Date(1969, 7, 20, 20, 17, 40, 0, time.FixedZone("", -5*3600)),
		time.Date(2024, 3, 1, 0, 0, 0, 0, time.FixedZone("", -30)),
		time.Date(2024, 3, 1, 0, 0, 0, 0, time.FixedZone("", 14*3600)),
	}
	for range 20000 {
		sec := r.Int64N(253402300800+62135596800) - 62135596800 // years 1 to 9999
		at := time.Unix(sec, r.Int64N(1e9)).UTC()
		if r.IntN(2) == 0 {
			at = at.Truncate(time.Microsecond)
		}
		times = append(times, at)
	}
	for _, at := range times {
		b := appendISO(nil, at)
		var want []byte
		want = at.AppendFormat(want, "2006-01-02T15:04:05")
		if ns := at.Nanosecond(); ns%1000 == 0 && ns != 0 {
			want = at.AppendFormat(want, ".000000")
		} else if ns != 0 {
			want = at.AppendFormat(want, ".000000000")
		}
		want = at.AppendFormat(want, "-07:00")
		if string(b) != string(want) {
			t.Fatalf("appendISO(%v) = %s, want %s", at, b, want)
		}
		if _, off := at.Zone(); off%60 != 0 {
			continue // the offset's seconds are not stored
		}
		got, err := parseISOBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := parseISO(string(b))
		if err != nil {
			t.Fatal(err)
		}
		_, off := got.Zone()
		_, refOff := ref.Zone()
		if !got.Equal(ref) || !got.Equal(at) || off != refOff || (off == 0 && got != ref) {
			t.Fatalf("parseISOBytes(%s) = %#v, want %#v", b, got, ref)
		}
	}
	for _, bad := range []string{"2023-02-29T00:00:00+00:00", "2024-04-31T00:00:00+00:00", "0000-01-01T00:00:00+00:00", "2024-13-01T00:00:00Z",
		"20x4-01-01T00:00:00Z", "x024-01-01T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T23:60:00Z", "2024-01-01T23:00:6aZ",
		"2024-01-01T23:00:00.5+00:00", "2024-01-01T23:00:00.1234567891+00:00", "2024-01-01T23:00:00+01:00", "2024-01-01T23:00:00"} {
		got, err := parseISOBytes([]byte(bad))
		ref, rerr := parseISO(bad)
		if (err == nil) != (rerr == nil) || got != ref {
			t.Errorf("parseISOBytes(%s) = %v, %v; parseISO: %v, %v", bad, got, err, ref, rerr)
		}
	}
}
