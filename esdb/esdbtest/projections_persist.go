package esdbtest

import (
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
)

// Projections are kept in the log as the server keeps them: each one's
// creation and deletion in $projections-$all, its definition after every
// change in $projections-<name>, and its checkpoints in
// $projections-<name>-checkpoint. A server restarted on a data directory
// reads them back; it rebuilds each projection's state by running its
// query again up to the checkpoint, writing nothing on the way.

const projectionsRegistration = "$projections-$all"

// persistedProjection is a projection's definition as written to its
// stream.
type persistedProjection struct {
	HandlerType         string `json:"handlerType"`
	Query               string `json:"query"`
	Mode                string `json:"mode"`
	Enabled             bool   `json:"enabled"`
	EmitEnabled         bool   `json:"emitEnabled"`
	TrackEmittedStreams bool   `json:"trackEmittedStreams"`
	CheckpointsDisabled bool   `json:"checkpointsDisabled"`
	Epoch               int64  `json:"epoch"`
	Version             int64  `json:"version"`
}

func definitionStream(name string) string { return "$projections-" + name }

func checkpointStream(name string) string { return "$projections-" + name + "-checkpoint" }

// persisted reports whether a projection's definition is kept: continuous
// user projections are (one-time and transient queries live in memory).
func (p *projection) persisted() bool { return p.system == "" && p.mode == modeContinuous }

func (m *projectionManager) writeEvent(stream, typ string, data []byte, isJSON bool) {
	ct := contentTypeBinary
	if isJSON {
		ct = contentTypeJSON
	}
	_, err := m.srv.store.append(stream, expectation{kind: expectAny},
		[]proposed{{ID: uuid.New(), Type: typ, ContentType: ct, Data: data, Meta: []byte{}}})
	if err != nil {
		m.srv.log.Warn("esdbtest: write projection definition", "stream", stream, "err", err)
	}
}

// persistLocked writes the projection's definition, and on creation its
// registration. The caller holds the lock.
func (m *projectionManager) persistLocked(p *projection, created bool) {
	if !p.persisted() {
		return
	}
	if created {
		m.writeEvent(projectionsRegistration, "$ProjectionCreated", []byte(p.name), false)
	}
	def, _ := json.Marshal(persistedProjection{ // plain fields always marshal
		HandlerType: "JS", Query: p.query, Mode: p.mode, Enabled: p.enabled,
		EmitEnabled: p.emit, TrackEmittedStreams: p.track, Epoch: p.epoch, Version: p.version,
	})
	m.writeEvent(definitionStream(p.name), "$ProjectionUpdated", def, true)
}

// forgetLocked records a projection's deletion. The caller holds the lock.
func (m *projectionManager) forgetLocked(p *projection, deleteCheckpoints bool) {
	if !p.persisted() {
		return
	}
	m.writeEvent(projectionsRegistration, "$ProjectionDeleted", []byte(p.name), false)
	_, _ = m.srv.store.softDelete(definitionStream(p.name), expectation{kind: expectAny})
	if deleteCheckpoints {
		_, _ = m.srv.store.softDelete(checkpointStream(p.name), expectation{kind: expectAny})
	}
}

// lastEvent returns the latest visible event of a stream, or nil.
func (m *projectionManager) lastEvent(stream string) *record {
	v := m.srv.store.streamSnap(stream)
	if v.tombstone >= 0 || len(v.revs) == 0 || int64(len(v.revs))-1 < v.visibleFrom(stream) {
		return nil
	}
	return v.log[v.revs[len(v.revs)-1]]
}

// restore registers the projections kept in the log, to be started by the
// caller. The lock is not needed before the manager is shared.
func (m *projectionManager) restore() {
	v := m.srv.store.streamSnap(projectionsRegistration)
	var names []string
	for _, i := range v.revs {
		r := v.log[i]
		name := string(r.Data)
		switch r.Type {
		case "$ProjectionCreated":
			names = append(names, name)
		case "$ProjectionDeleted":
			for j, n := range names {
				if n == name {
					names = append(names[:j], names[j+1:]...)
					break
				}
			}
		}
	}
	for _, name := range names {
		if m.byName[name] != nil {
			continue
		}
		last := m.lastEvent(definitionStream(name))
		var def persistedProjection
		if last == nil || json.Unmarshal(last.Data, &def) != nil || def.Mode != modeContinuous {
			m.srv.log.Warn("esdbtest: projection definition unreadable; not restored", "projection", name)
			continue
		}
		p := m.addLocked(name, def.Mode, def.Query, def.EmitEnabled, def.TrackEmittedStreams)
		p.enabled, p.epoch, p.version = def.Enabled, def.Epoch, def.Version
		if cp := m.lastEvent(checkpointStream(name)); cp != nil {
			var tag struct {
				C *uint64 `json:"$c"`
			}
			if json.Unmarshal(cp.Meta, &tag) == nil && tag.C != nil {
				sn := m.srv.store.snap()
				if at, ok := seek(sn.log, *tag.C); ok {
					p.replayTo = at + 1
				}
			}
		}
	}
}

// checkpoint writes the runner's position and root state, when it has
// processed events since its last checkpoint.
func (r *runner) checkpoint(last *record) error {
	if !r.p.persisted() || r.processed == r.checkpointed || last == nil || r.replaying() {
		return nil
	}
	r.checkpointed = r.processed
	meta := fmt.Sprintf(`{"$v":%q,"$c":%d,"$p":%d}`, r.versionTag(), last.Pos, last.Pos)
	return r.write(checkpointStream(r.name), "$ProjectionCheckpoint", r.stateJSON[""], true, []byte(meta))
}

// replaying reports whether the runner is rebuilding state read before a
// restart, when it writes nothing.
func (r *runner) replaying() bool { return r.replayTo > 0 && r.next <= r.replayTo }
