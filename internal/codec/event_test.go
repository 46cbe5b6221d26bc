package codec

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
)

// The text a save gives an originator id is uuid's, and appending more to
// the buffer leaves it as it was.
func TestAppendIDText(t *testing.T) {
	for _, id := range []uuid.UUID{uuid.Nil, uuid.Max, uuid.New(), uuid.NewSHA1(uuid.NameSpaceURL, []byte("/counters/sit"))} {
		buf, text := AppendIDText([]byte("state"), id)
		assert.Equal(t, id.String(), text)
		assert.Equal(t, "state"+id.String(), string(buf))
		_ = append(buf, "more state, maybe moved elsewhere by growing"...)
		assert.Equal(t, id.String(), text)
	}
}
