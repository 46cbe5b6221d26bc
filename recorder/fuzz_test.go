package recorder_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

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
