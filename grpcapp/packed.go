package grpcapp

import (
	"fmt"
	"strings"

	"github.com/eventsourcing-go/eventsourcing/grpcapp/pb"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// Pages of notifications travel in columns (pb.PackedNotifications) when the
// client asks for it: a thousand small messages cost a thousand allocations
// and decodes on each side, a packed page a dozen.

// pack puts notifications in columns: a few allocations per page, none per
// notification, and none at all when the columns come back to the pool
// (releasePacked, once the page is marshalled).
func pack(ns []recorder.Notification) *pb.PackedNotifications {
	n := len(ns)
	total := 0
	for i := range ns {
		total += len(ns[i].State)
	}
	b := packPool.Get().(*packBuffers)
	p := &pb.PackedNotifications{
		Ids:                resize(b.ids, n),
		OriginatorVersions: resize(b.versions, n),
		TopicIndexes:       resize(b.topics, n),
		StateLengths:       resize(b.lengths, n),
		States:             resize(b.states, total)[:0],
	}
	uuids := resize(b.uuids, 16*n)
	allUUIDs := true
	traced := false
	last := -1
	for i := range ns {
		m := &ns[i]
		p.Ids[i] = m.ID
		p.OriginatorVersions[i] = m.OriginatorVersion
		if allUUIDs && !parseUUID(m.OriginatorID, uuids[16*i:16*i+16]) {
			allUUIDs = false
		}
		// Pages mostly hold runs of few topics: check the last one, then
		// the (short) table.
		if last < 0 || p.Topics[last] != m.Topic {
			last = -1
			for j, t := range p.Topics {
				if t == m.Topic {
					last = j
					break
				}
			}
			if last < 0 {
				last = len(p.Topics)
				p.Topics = append(p.Topics, m.Topic)
			}
		}
		p.TopicIndexes[i] = uint32(last)
		p.StateLengths[i] = uint32(len(m.State))
		p.States = append(p.States, m.State...)
		traced = traced || m.TraceParent != ""
	}
	if traced {
		p.TraceParents = make([]string, n)
		for i := range ns {
			p.TraceParents[i] = ns[i].TraceParent
		}
	}
	if allUUIDs {
		p.OriginatorUuids = uuids
	} else {
		p.OriginatorIds = make([]string, n)
		for i := range ns {
			p.OriginatorIds[i] = ns[i].OriginatorID
		}
	}
	return p
}

// unpack reads a packed page back: the notifications share one string of
// originator ids and the page's state buffer (each state's capacity ends at
// its length, so appending to one never writes into the next).
func unpack(p *pb.PackedNotifications) ([]recorder.Notification, error) {
	n := len(p.GetIds())
	states := p.GetStates()
	switch {
	case len(p.GetOriginatorVersions()) != n, len(p.GetTopicIndexes()) != n, len(p.GetStateLengths()) != n:
		return nil, fmt.Errorf("malformed packed page: %d ids, %d versions, %d topic indexes, %d state lengths",
			n, len(p.GetOriginatorVersions()), len(p.GetTopicIndexes()), len(p.GetStateLengths()))
	case len(p.GetOriginatorUuids()) != 16*n && len(p.GetOriginatorIds()) != n:
		return nil, fmt.Errorf("malformed packed page: %d ids, %d UUID bytes, %d originator ids",
			n, len(p.GetOriginatorUuids()), len(p.GetOriginatorIds()))
	case len(p.GetTraceParents()) != 0 && len(p.GetTraceParents()) != n:
		return nil, fmt.Errorf("malformed packed page: %d ids, %d trace contexts", n, len(p.GetTraceParents()))
	}
	traces := p.GetTraceParents()
	var ids string
	if u := p.GetOriginatorUuids(); len(u) == 16*n && n > 0 {
		// One string for the page's ids, built without a second copy.
		var b strings.Builder
		b.Grow(36 * n)
		var one [36]byte
		for i := range n {
			formatUUID(one[:], u[16*i:16*i+16])
			b.Write(one[:])
		}
		ids = b.String()
	}
	topics := p.GetTopics()
	ns := make([]recorder.Notification, n)
	off := 0
	for i := range ns {
		m := &ns[i]
		m.ID = p.Ids[i]
		m.OriginatorVersion = p.OriginatorVersions[i]
		if ids != "" {
			m.OriginatorID = ids[36*i : 36*i+36]
		} else {
			m.OriginatorID = p.OriginatorIds[i]
		}
		t := p.TopicIndexes[i]
		if int(t) >= len(topics) {
			return nil, fmt.Errorf("malformed packed page: topic index %d of %d topics", t, len(topics))
		}
		m.Topic = topics[t]
		l := int(p.StateLengths[i])
		if l > len(states)-off {
			return nil, fmt.Errorf("malformed packed page: states end at %d bytes, not %d", len(states), off+l)
		}
		if l > 0 {
			m.State = states[off : off+l : off+l]
			off += l
		}
		if traces != nil {
			m.TraceParent = traces[i]
		}
	}
	return ns, nil
}

const hexDigits = "0123456789abcdef"

// parseUUID decodes a UUID in the canonical form (36 characters, lowercase,
// hyphenated) into dst, so that formatUUID gives back the same string. Any
// other id reports false.
func parseUUID(s string, dst []byte) bool {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	_ = dst[15]
	bad := byte(0)
	for j, i := range uuidHexAt {
		hi, lo := unhex[s[i]], unhex[s[i+1]]
		bad |= hi | lo
		dst[j] = hi<<4 | lo&0xf
	}
	return bad&0xf0 == 0
}

// uuidHexAt are the offsets of the 16 bytes' hex pairs in a canonical UUID.
var uuidHexAt = [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// unhex maps lowercase hex digits to their values and every other byte to 0xff.
var unhex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := range 16 {
		t[hexDigits[i]] = byte(i)
	}
	return t
}()

// formatUUID writes the canonical form of the 16 bytes u into dst (36 bytes).
func formatUUID(dst, u []byte) {
	_ = dst[35]
	_ = u[15]
	j := 0
	for i := range 16 {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst[j] = '-'
			j++
		}
		dst[j] = hexDigits[u[i]>>4]
		dst[j+1] = hexDigits[u[i]&0xf]
		j += 2
	}
}
