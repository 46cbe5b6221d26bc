package esdbtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/projections"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// ProjectionsMode says which projections a server runs, like the
// server's --run-projections setting.
type ProjectionsMode int

const (
	// ProjectionsNone serves no projections: the Projections service
	// answers Unimplemented. It is the default.
	ProjectionsNone ProjectionsMode = iota
	// ProjectionsSystem runs the system projections only; user
	// projections can be created but do not run.
	ProjectionsSystem
	// ProjectionsAll runs system and user projections.
	ProjectionsAll
)

// String returns the mode as the server spells it: None, System or All.
func (m ProjectionsMode) String() string {
	switch m {
	case ProjectionsSystem:
		return "System"
	case ProjectionsAll:
		return "All"
	default:
		return "None"
	}
}

// ParseProjectionsMode reads "none", "system" or "all" in any case.
func ParseProjectionsMode(s string) (ProjectionsMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "none", "":
		return ProjectionsNone, nil
	case "system":
		return ProjectionsSystem, nil
	case "all":
		return ProjectionsAll, nil
	}
	return ProjectionsNone, fmt.Errorf("projections mode %q: want none, system or all", s)
}

// WithProjections serves the Projections service and runs projections as
// a node started with --run-projections=mode. With ProjectionsSystem or
// ProjectionsAll the system projections ($streams, $stream_by_category,
// $by_category, $by_event_type, $by_correlation_id) exist and run from
// the start, as on a node that also has --start-standard-projections=true.
func WithProjections(mode ProjectionsMode) Option {
	return func(c *config) { c.projections = mode }
}

// Projection modes as the server names them in statistics.
const (
	modeContinuous = "Continuous"
	modeOneTime    = "OneTime"
	modeTransient  = "Transient"
)

// Projection statuses as the server reports them.
const (
	statusRunning   = "Running"
	statusStopped   = "Stopped"
	statusFaulted   = "Faulted"
	statusCompleted = "Completed"
)

// projectionsVersion is the projection subsystem's version written in the
// $v metadata of emitted events.
const projectionsVersion = 4

// projection is one projection known to the manager. Fields are guarded
// by the manager's lock; the runner owns its JavaScript runtime alone.
type projection struct {
	id      int64
	name    string
	mode    string
	query   string
	emit    bool
	track   bool
	system  string // the system projection's kind, "" for user projections
	enabled bool
	version int64
	epoch   int64

	status    string
	reason    string
	processed int64
	position  string
	progress  float32

	// progress of the runner, kept across restarts: the next log index
	// and the state and result of each partition as JSON.
	next       int
	states     map[string]string
	results    map[string]string
	partitions []string
	emitted    []string // streams emitted to, when tracked
	seen       map[string]int64
	// replayTo is the log index up to which a projection restored from
	// the log runs without writing, to rebuild its state.
	replayTo int

	cancel context.CancelFunc
	done   chan struct{}
}

// projectionManager holds the projections of a server.
type projectionManager struct {
	srv  *Server
	mode ProjectionsMode

	// ctl serialises the calls that change projections; mu guards the
	// projections' fields and is held only briefly.
	ctl    sync.Mutex
	mu     sync.Mutex
	byName map[string]*projection
	order  []string
	nextID int64
}

func newProjectionManager(s *Server, mode ProjectionsMode) *projectionManager {
	m := &projectionManager{srv: s, mode: mode, byName: make(map[string]*projection)}
	// In the server's order, with its source settings as their queries.
	for _, name := range []string{sysStreams, sysStreamByCategory, sysByCategory, sysByEventType, sysByCorrelationID} {
		query := ""
		switch name {
		case sysByCategory, sysStreamByCategory:
			query = "first\r\n-"
		case sysByCorrelationID:
			query = `{"correlationIdProperty":"$correlationId"}`
		}
		p := m.addLocked(name, modeContinuous, query, true, false)
		p.system = name
	}
	m.resumeSystem()
	m.restore()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, name := range m.order {
		m.startLocked(m.byName[name])
	}
	return m
}

// resumeSystem starts each system projection after the last event it
// handled in a log kept on disk, found by the version and checkpoint tag
// in the metadata of what it wrote last, so a restarted server does not
// write its links twice.
func (m *projectionManager) resumeSystem() {
	sn := m.srv.store.snap()
	want := make(map[string]*projection, len(m.byName))
	for _, p := range m.byName {
		want[fmt.Sprintf(`{"$v":"%d:`, p.id)] = p
	}
	for i := len(sn.log) - 1; i >= 0 && len(want) > 0; i-- {
		meta := sn.log[i].Meta
		if !bytes.HasPrefix(meta, []byte(`{"$v":"`)) {
			continue
		}
		for prefix, p := range want {
			if !bytes.HasPrefix(meta, []byte(prefix)) {
				continue
			}
			delete(want, prefix)
			var tag struct {
				C *uint64 `json:"$c"`
			}
			if json.Unmarshal(meta, &tag) == nil && tag.C != nil {
				if at, ok := seek(sn.log, *tag.C); ok {
					p.next = at + 1
				}
			}
		}
	}
}

// addLocked registers a new enabled projection (the lock is not needed
// before the manager is shared).
func (m *projectionManager) addLocked(name, mode, query string, emit, track bool) *projection {
	m.nextID++
	p := &projection{
		id: m.nextID, name: name, mode: mode, query: query, emit: emit, track: track,
		enabled: true, epoch: -1, status: statusStopped,
		states: map[string]string{}, results: map[string]string{}, seen: map[string]int64{},
	}
	m.byName[name] = p
	m.order = append(m.order, name)
	return p
}

// runs reports whether the mode lets the projection run.
func (m *projectionManager) runs(p *projection) bool {
	return m.mode == ProjectionsAll || (m.mode == ProjectionsSystem && strings.HasPrefix(p.name, "$"))
}

// startLocked starts the projection's runner unless it runs already or
// the mode does not run it.
func (m *projectionManager) startLocked(p *projection) {
	if p.done != nil || !m.runs(p) {
		return
	}
	ctx, cancel := context.WithCancel(m.srv.ctx)
	p.cancel, p.done = cancel, make(chan struct{})
	p.status, p.reason = statusRunning, ""
	r := newRunner(m, p)
	go func() {
		defer close(r.done)
		r.run(ctx)
	}()
}

// stop stops the projection's runner and waits for it, without the lock.
func (m *projectionManager) stop(p *projection) {
	m.mu.Lock()
	cancel, done := p.cancel, p.done
	m.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	m.mu.Lock()
	if p.done == done {
		p.cancel, p.done = nil, nil
	}
	m.mu.Unlock()
}

// close stops every runner.
func (m *projectionManager) close() {
	m.mu.Lock()
	ps := make([]*projection, 0, len(m.byName))
	for _, p := range m.byName {
		ps = append(ps, p)
	}
	m.mu.Unlock()
	for _, p := range ps {
		m.stop(p)
	}
}

func (m *projectionManager) get(name string) (*projection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.byName[name]
	if p == nil {
		return nil, errProjectionNotFound(name)
	}
	return p, nil
}

// The server's answers: NotFound for an unknown name, and for any other
// refusal the envelope error of its gRPC layer, which names the message
// its projection manager answered with.
func errProjectionNotFound(name string) error {
	return status.Errorf(codes.NotFound, "Projection '%s' not found", name)
}

func errUnexpectedReply(expected, got string) error {
	return status.Errorf(codes.Unknown, "Envelope callback expected %s, received %s instead", expected, got)
}

var errHandlerThrew = status.Error(codes.Unknown, "Exception was thrown by handler.")

// --- the gRPC service ---

type projectionsServer struct {
	projections.UnimplementedProjectionsServer
	m *projectionManager
}

func (ps *projectionsServer) Create(_ context.Context, req *projections.CreateReq) (*projections.CreateResp, error) {
	o := req.GetOptions()
	var name, mode string
	var emit, track bool
	switch md := o.GetMode().(type) {
	case *projections.CreateReq_Options_Continuous_:
		name, mode = md.Continuous.GetName(), modeContinuous
		emit, track = md.Continuous.GetEmitEnabled(), md.Continuous.GetTrackEmittedStreams()
		if track && !emit {
			// The server throws in its handler: tracking needs emitting.
			return nil, errHandlerThrew
		}
	case *projections.CreateReq_Options_Transient_:
		name, mode = md.Transient.GetName(), modeTransient
	case *projections.CreateReq_Options_OneTime:
		name, mode = uuid.NewString(), modeOneTime
	default:
		return nil, errHandlerThrew
	}
	m := ps.m
	m.ctl.Lock()
	defer m.ctl.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if strings.TrimSpace(name) == "" {
		return nil, errUnexpectedReply("Updated", "OperationFailed")
	}
	if m.byName[name] != nil {
		return nil, errUnexpectedReply("Updated", "Conflict")
	}
	p := m.addLocked(name, mode, o.GetQuery(), emit, track)
	m.persistLocked(p, true)
	m.startLocked(p)
	return &projections.CreateResp{}, nil
}

func (ps *projectionsServer) Update(_ context.Context, req *projections.UpdateReq) (*projections.UpdateResp, error) {
	o := req.GetOptions()
	err := ps.m.change(o.GetName(), true, func(p *projection) error {
		if p.system != "" {
			return errUnexpectedReply("Updated", "OperationFailed")
		}
		p.query = o.GetQuery()
		if e, ok := o.GetEmitOption().(*projections.UpdateReq_Options_EmitEnabled); ok {
			p.emit = e.EmitEnabled
		}
		p.version++
		if p.status == statusCompleted {
			// A completed query runs again, from the start.
			p.resetLocked()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &projections.UpdateResp{}, nil
}

// change applies f to a projection, stopped first when stop is set, and
// starts it again when it is enabled. Changes are made one at a time.
func (m *projectionManager) change(name string, stop bool, f func(*projection) error) error {
	m.ctl.Lock()
	defer m.ctl.Unlock()
	p, err := m.get(name)
	if err != nil {
		return err
	}
	if stop {
		m.stop(p)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	version := p.version
	err = f(p)
	if p.version != version && m.byName[name] == p {
		m.persistLocked(p, false)
	}
	if p.enabled {
		m.startLocked(p)
	}
	return err
}

func (ps *projectionsServer) Delete(_ context.Context, req *projections.DeleteReq) (*projections.DeleteResp, error) {
	o := req.GetOptions()
	m := ps.m
	m.ctl.Lock()
	defer m.ctl.Unlock()
	p, err := m.get(o.GetName())
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if p.system != "" || (p.status == statusRunning && p.mode != modeTransient) {
		m.mu.Unlock()
		return nil, errUnexpectedReply("Updated", "OperationFailed")
	}
	delete(m.byName, p.name)
	m.order = slices.DeleteFunc(m.order, func(n string) bool { return n == p.name })
	m.forgetLocked(p, o.GetDeleteCheckpointStream())
	var remove []string
	if o.GetDeleteStateStream() {
		remove = append(remove, resultStreamName(p.name, ""))
		for _, part := range p.partitions {
			remove = append(remove, resultStreamName(p.name, part))
		}
	}
	if o.GetDeleteEmittedStreams() && p.emit && p.track {
		remove = append(remove, p.emitted...)
	}
	m.mu.Unlock()
	m.stop(p)
	for _, s := range remove {
		// A stream that was never written has nothing to delete.
		_, _ = m.srv.store.softDelete(s, expectation{kind: expectAny})
	}
	return &projections.DeleteResp{}, nil
}

func (ps *projectionsServer) Statistics(req *projections.StatisticsReq, stream projections.Projections_StatisticsServer) error {
	m := ps.m
	o := req.GetOptions()
	m.mu.Lock()
	var list []*projections.StatisticsResp_Details
	for _, name := range m.order {
		p := m.byName[name]
		keep := true
		switch md := o.GetMode().(type) {
		case *projections.StatisticsReq_Options_Name:
			keep = md.Name == "" || p.name == md.Name // no name: all, as on the server
		case *projections.StatisticsReq_Options_Continuous:
			keep = p.mode == modeContinuous
		case *projections.StatisticsReq_Options_OneTime:
			keep = p.mode == modeOneTime
		case *projections.StatisticsReq_Options_Transient:
			keep = p.mode == modeTransient
		}
		if keep {
			list = append(list, p.detailsLocked())
		}
	}
	m.mu.Unlock()
	if n, ok := o.GetMode().(*projections.StatisticsReq_Options_Name); ok && n.Name != "" && len(list) == 0 {
		return errProjectionNotFound(n.Name)
	}
	for _, d := range list {
		if err := stream.Send(&projections.StatisticsResp{Details: d}); err != nil {
			return fmt.Errorf("send statistics: %w", err)
		}
	}
	return nil
}

func (p *projection) detailsLocked() *projections.StatisticsResp_Details {
	st := p.status
	d := &projections.StatisticsResp_Details{
		Name: p.name, EffectiveName: p.name, Mode: p.mode, Status: st, StateReason: p.reason,
		Version: p.version, Epoch: p.epoch, Position: p.position, Progress: p.progress,
		EventsProcessedAfterRestart: p.processed, LastCheckpoint: p.position,
	}
	if st == statusFaulted && p.enabled {
		d.Status = statusFaulted + " (Enabled)"
	}
	return d
}

func (ps *projectionsServer) Disable(_ context.Context, req *projections.DisableReq) (*projections.DisableResp, error) {
	err := ps.m.change(req.GetOptions().GetName(), true, func(p *projection) error {
		p.enabled = false
		p.version++
		if p.status == statusRunning {
			p.status = statusStopped
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &projections.DisableResp{}, nil
}

func (ps *projectionsServer) Enable(_ context.Context, req *projections.EnableReq) (*projections.EnableResp, error) {
	err := ps.m.change(req.GetOptions().GetName(), false, func(p *projection) error {
		if p.enabled && p.done != nil {
			return nil // running already: nothing changes
		}
		p.enabled = true
		p.version++
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &projections.EnableResp{}, nil
}

func (ps *projectionsServer) Reset(_ context.Context, req *projections.ResetReq) (*projections.ResetResp, error) {
	err := ps.m.change(req.GetOptions().GetName(), true, func(p *projection) error {
		p.version++
		p.resetLocked()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &projections.ResetResp{}, nil
}

// resetLocked clears the projection's progress: it starts again from the
// beginning of the log in a new epoch.
func (p *projection) resetLocked() {
	p.epoch = p.version
	p.next, p.processed, p.position, p.progress, p.replayTo = 0, 0, "", 0, 0
	p.states, p.results, p.partitions, p.seen = map[string]string{}, map[string]string{}, nil, map[string]int64{}
	p.status, p.reason = statusStopped, ""
}

func (ps *projectionsServer) State(_ context.Context, req *projections.StateReq) (*projections.StateResp, error) {
	o := req.GetOptions()
	v, err := ps.m.document(o.GetName(), o.GetPartition(), false)
	if err != nil {
		return nil, err
	}
	return &projections.StateResp{State: v}, nil
}

func (ps *projectionsServer) Result(_ context.Context, req *projections.ResultReq) (*projections.ResultResp, error) {
	o := req.GetOptions()
	v, err := ps.m.document(o.GetName(), o.GetPartition(), true)
	if err != nil {
		return nil, err
	}
	return &projections.ResultResp{Result: v}, nil
}

// document returns a partition's state or result as the server converts
// it: an empty object when there is none.
func (m *projectionManager) document(name, partition string, result bool) (*structpb.Value, error) {
	m.mu.Lock()
	p := m.byName[name]
	var doc string
	if p != nil {
		if result {
			doc = p.results[partition]
		} else {
			doc = p.states[partition]
		}
	}
	m.mu.Unlock()
	if p == nil {
		return nil, errProjectionNotFound(name)
	}
	if doc == "" || doc == "null" && result {
		return structpb.NewStructValue(&structpb.Struct{}), nil
	}
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		return nil, errHandlerThrew
	}
	pv, err := structpb.NewValue(v)
	if err != nil {
		return nil, errHandlerThrew
	}
	return pv, nil
}

func (ps *projectionsServer) RestartSubsystem(context.Context, *shared.Empty) (*shared.Empty, error) {
	m := ps.m
	m.ctl.Lock()
	defer m.ctl.Unlock()
	m.mu.Lock()
	var ps2 []*projection
	for _, name := range m.order {
		ps2 = append(ps2, m.byName[name])
	}
	m.mu.Unlock()
	for _, p := range ps2 {
		m.stop(p)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range ps2 {
		if m.byName[p.name] == p && p.enabled && p.status != statusCompleted {
			m.startLocked(p)
		}
	}
	return &shared.Empty{}, nil
}

// resultStreamName is the stream of a partition's Result events; the
// root partition's is also where every partition's results are linked.
func resultStreamName(name, partition string) string {
	if partition == "" {
		return "$projections-" + name + "-result"
	}
	return "$projections-" + name + "-" + partition + "-result"
}

// projectionMethods are the Projections service's methods for
// ServerFeatures, when the service is served.
func (f *featuresServer) projectionMethods() []*serverfeatures.SupportedMethod {
	if !f.projections {
		return nil
	}
	const svc = "event_store.client.projections.projections"
	var out []*serverfeatures.SupportedMethod
	for _, name := range []string{"create", "update", "delete", "statistics", "disable", "enable", "reset", "state", "result", "restartsubsystem"} {
		out = append(out, &serverfeatures.SupportedMethod{ServiceName: svc, MethodName: name})
	}
	return out
}
