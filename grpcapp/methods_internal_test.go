package grpcapp

import (
	"encoding/json"
	"strings"
	"testing"
)

// splitArray agrees with encoding/json on every array it accepts.
func FuzzSplitArray(f *testing.F) {
	for _, s := range []string{
		``, ` `, `null`, ` null `, `[]`, ` [ ] `, `[1]`, `[1,2]`, `[ "a" , {"b":[1,2,{"c":"]"}]} , [3] ]`,
		`["\"],"]`, `["\\"]`, `[{"_type_":"uuid_hex","_data_":"0bcfd19dffcb4660"}]`, `[1,]`, `[,1]`, `[1 2]`,
		`[}`, `[{]}`, `{}`, `"x"`, `[1]x`, `[[]`, `["abc`, `nul`, `[true,false,null,-1.5e3]`, "[\t1\n,\r2 ]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := splitArray([]byte(s), nil)
		if !ok {
			return
		}
		var want []json.RawMessage
		trimmed := strings.TrimSpace(s)
		if trimmed != "" && trimmed != "null" {
			if err := json.Unmarshal([]byte(s), &want); err != nil {
				// Accepted by the split, refused by encoding/json: only
				// allowed when an element is itself invalid (its decoder
				// then refuses it).
				for _, e := range got {
					if !json.Valid(e) {
						return
					}
				}
				t.Fatalf("%q: split into %q, but encoding/json says %v", s, got, err)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%q: split into %q, want %q", s, got, want)
		}
		for i := range got {
			if string(got[i]) != string(want[i]) {
				t.Fatalf("%q: element %d is %q, want %q", s, i, got[i], want[i])
			}
		}
	})
}
