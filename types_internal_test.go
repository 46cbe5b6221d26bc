package eventsourcing

import (
	"testing"

	"github.com/eventsourcing-go/eventsourcing/internal/codec"
	"github.com/eventsourcing-go/eventsourcing/internal/seal"
)

// The tag names and setting keys users see are the ones the internal
// packages write and read.
func TestNamesOfInternals(t *testing.T) {
	for _, names := range [][2]string{
		{TagUUID, codec.TagUUID}, {TagDecimal, codec.TagDecimal}, {TagDatetime, codec.TagDatetime},
		{EnvCompressorTopic, seal.EnvCompressorTopic}, {EnvCipherTopic, seal.EnvCipherTopic}, {EnvCipherKey, seal.EnvCipherKey},
	} {
		if names[0] != names[1] {
			t.Errorf("%q is %q inside", names[0], names[1])
		}
	}
}
