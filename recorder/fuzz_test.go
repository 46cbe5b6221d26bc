package recorder_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// FuzzEnv parses arbitrary values as seconds, integers and booleans: a
// value or an error matching ErrConfiguration that names the key, never a
// panic, and the default when the value is refused.
func FuzzEnv(f *testing.F) {
	for _, v := range []string{"1.5", "250ms", " 30 ", "inf", "NaN", "1e300", "-0", "0x10", "yes", "OFF", "", "9223372036854775807", "1h2m3s4ns"} {
		f.Add("App", v)
	}
	f.Fuzz(func(t *testing.T, name, v string) {
		env := recorder.NewEnvFrom(name, map[string]string{"K": v}, nil)
		const defD, defN, defB = 7 * time.Second, 7, true
		if d, err := env.Seconds("K", defD); err != nil {
			if !errors.Is(err, recorder.ErrConfiguration) || !strings.Contains(err.Error(), env.Prefixed("K")) || d != defD {
				t.Fatalf("Seconds(%q) = %v, %v", v, d, err)
			}
		}
		if n, err := env.Int("K", defN); err != nil {
			if !errors.Is(err, recorder.ErrConfiguration) || !strings.Contains(err.Error(), env.Prefixed("K")) || n != defN {
				t.Fatalf("Int(%q) = %v, %v", v, n, err)
			}
		}
		if b, err := env.Bool("K", defB); err != nil {
			if !errors.Is(err, recorder.ErrConfiguration) || !strings.Contains(err.Error(), env.Prefixed("K")) || b != defB {
				t.Fatalf("Bool(%q) = %v, %v", v, b, err)
			}
		}
	})
}

// FuzzMatchTopic checks MatchTopic against its definition: an empty filter
// lets every topic through, any other only the topics it lists.
func FuzzMatchTopic(f *testing.F) {
	f.Add("", "dogschool:Dog.Registered")
	f.Add("dogschool:Dog.Registered\ndogschool:Dog.TrickAdded", "dogschool:Dog.TrickAdded")
	f.Add("a\n\nb", "")
	f.Add("Dog", "dog")
	f.Fuzz(func(t *testing.T, list, topic string) {
		var topics []string
		if list != "" {
			topics = strings.Split(list, "\n")
		}
		want := len(topics) == 0 || slices.Contains(topics, topic)
		if got := recorder.MatchTopic(topics, topic); got != want {
			t.Fatalf("MatchTopic(%q, %q) = %v", topics, topic, got)
		}
	})
}
