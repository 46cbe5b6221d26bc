package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eventsourcing-go/eventsourcing/config"
)

// FuzzEnv parses arbitrary values as seconds, integers and booleans: a
// value or an error matching ErrConfiguration that names the key, never a
// panic, and the default when the value is refused.
func FuzzEnv(f *testing.F) {
	for _, v := range []string{"1.5", "250ms", " 30 ", "inf", "NaN", "1e300", "-0", "0x10", "yes", "OFF", "", "9223372036854775807", "1h2m3s4ns"} {
		f.Add("App", v)
	}
	f.Fuzz(func(t *testing.T, name, v string) {
		env := config.NewEnvFrom(name, map[string]string{"K": v}, nil)
		const defD, defN, defB = 7 * time.Second, 7, true
		if d, err := env.Seconds("K", defD); err != nil {
			if !errors.Is(err, config.ErrConfiguration) || !strings.Contains(err.Error(), env.Prefixed("K")) || d != defD {
				t.Fatalf("Seconds(%q) = %v, %v", v, d, err)
			}
		}
		if n, err := env.Int("K", defN); err != nil {
			if !errors.Is(err, config.ErrConfiguration) || !strings.Contains(err.Error(), env.Prefixed("K")) || n != defN {
				t.Fatalf("Int(%q) = %v, %v", v, n, err)
			}
		}
		if b, err := env.Bool("K", defB); err != nil {
			if !errors.Is(err, config.ErrConfiguration) || !strings.Contains(err.Error(), env.Prefixed("K")) || b != defB {
				t.Fatalf("Bool(%q) = %v, %v", v, b, err)
			}
		}
	})
}
