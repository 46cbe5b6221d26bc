package eventsourcing

import (
	"testing"

	"github.com/eventsourcing-go/eventsourcing/internal/codec"
)

// The tag names users see are the ones the codec writes.
func TestTagNames(t *testing.T) {
	for _, tags := range [][2]string{{TagUUID, codec.TagUUID}, {TagDecimal, codec.TagDecimal}, {TagDatetime, codec.TagDatetime}} {
		if tags[0] != tags[1] {
			t.Errorf("tag %q is written as %q", tags[0], tags[1])
		}
	}
}
