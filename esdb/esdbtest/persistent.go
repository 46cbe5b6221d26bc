package esdbtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// configStream holds the persistent subscription configuration, as on a
// real node; its events (type PersistentConfig1) are in $all too, which is
// why consumers filter that type out.
const configStream = "$persistentSubscriptionConfig"

// psSettings mirrors the settings of a group, stored as sent.
type psSettings struct {
	ResolveLinks       bool   `json:"resolveLinks"`
	ExtraStatistics    bool   `json:"extraStatistics"`
	MaxRetryCount      int32  `json:"maxRetryCount"`
	MinCheckpointCount int32  `json:"minCheckpointCount"`
	MaxCheckpointCount int32  `json:"maxCheckpointCount"`
	MaxSubscriberCount int32  `json:"maxSubscriberCount"`
	LiveBufferSize     int32  `json:"liveBufferSize"`
	ReadBatchSize      int32  `json:"readBatchSize"`
	HistoryBufferSize  int32  `json:"historyBufferSize"`
	Strategy           string `json:"strategy"`
	MessageTimeoutMs   int32  `json:"messageTimeoutMs"`
	CheckpointAfterMs  int32  `json:"checkpointAfterMs"`
}

// psStart is where a group starts: "start", "end", "revision" or "position".
type psStart struct {
	Kind  string `json:"kind"`
	Value uint64 `json:"value,omitempty"`
}

type psFilter struct {
	OnStream bool     `json:"onStream"`
	Regex    string   `json:"regex,omitempty"`
	Prefixes []string `json:"prefixes,omitempty"`
	Window   uint32   `json:"window"`
	HasMax   bool     `json:"hasMax"`
	Mult     uint32   `json:"mult"`
}

// psConfig is the durable part of a group.
type psConfig struct {
	Stream   string     `json:"stream"`
	Group    string     `json:"group"`
	Start    psStart    `json:"start"`
	Settings psSettings `json:"settings"`
	Filter   *psFilter  `json:"filter,omitempty"`
}

func groupKey(stream, group string) string { return stream + "::" + group }

// delivery is one event handed to a consumer.
type delivery struct {
	rec      *record
	retries  int32
	client   *psClient
	deadline time.Time
}

// psClient is one connected consumer of a group.
type psClient struct {
	bufferSize int
	inflight   int
	out        chan *delivery
	done       chan struct{} // closed when the group ends this consumer
	doneOnce   sync.Once
	endErr     error
	from       string
	asString   bool
	total      int64
}

func (c *psClient) end(err error) {
	c.doneOnce.Do(func() {
		c.endErr = err
		close(c.done)
	})
}

// psGroup is a persistent subscription group with its own dispatcher
// goroutine, which is the only place that hands events to consumers.
type psGroup struct {
	srv    *Server
	cfg    psConfig
	filter *filter

	mu       sync.Mutex
	cursor   int // next revision (stream) or log index ($all)
	retry    []*delivery
	inflight map[uuid.UUID][]*delivery
	parked   []*delivery
	clients  []*psClient
	rr       int
	lastAck  *record
	lastSeen *record

	wake chan struct{}
	stop chan struct{}
}

type persistentSubs struct {
	srv    *Server
	mu     sync.Mutex
	groups map[string]*psGroup
}

func newPersistentSubs(s *Server) *persistentSubs {
	return &persistentSubs{srv: s, groups: make(map[string]*psGroup)}
}

// load restores the groups from the latest configuration event (after a
// restart with a data directory).
func (p *persistentSubs) load() {
	v := p.srv.store.streamSnap(configStream)
	if len(v.revs) == 0 {
		return
	}
	var cfgs []psConfig
	if err := json.Unmarshal(v.log[v.revs[len(v.revs)-1]].Data, &cfgs); err != nil {
		p.srv.log.Warn("esdbtest: unreadable persistent subscription config", "err", err)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cfgs {
		g, err := p.newGroup(c)
		if err != nil {
			p.srv.log.Warn("esdbtest: skipping persistent subscription", "group", c.Group, "err", err)
			continue
		}
		p.groups[groupKey(c.Stream, c.Group)] = g
		go g.run()
	}
}

// saveLocked writes the configuration of every group as one event. The
// caller holds p.mu.
func (p *persistentSubs) saveLocked() error {
	cfgs := make([]psConfig, 0, len(p.groups))
	for _, g := range p.groups {
		cfgs = append(cfgs, g.cfg)
	}
	sort.Slice(cfgs, func(i, j int) bool {
		return groupKey(cfgs[i].Stream, cfgs[i].Group) < groupKey(cfgs[j].Stream, cfgs[j].Group)
	})
	data, err := json.Marshal(cfgs)
	if err != nil {
		return fmt.Errorf("marshal config: %w", err)
	}
	_, err = p.srv.store.append(configStream, expectation{kind: expectAny}, []proposed{{
		ID: uuid.New(), Type: "PersistentConfig1", ContentType: contentTypeJSON, Data: data, Meta: []byte{},
	}})
	return err
}

func (p *persistentSubs) newGroup(c psConfig) (*psGroup, error) {
	g := &psGroup{srv: p.srv, cfg: c, inflight: make(map[uuid.UUID][]*delivery),
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
	if c.Filter != nil {
		f, err := newFilter(p.srv.log, c.Filter.OnStream, expr{c.Filter.Regex, c.Filter.Prefixes}, c.Filter.Window, c.Filter.HasMax, c.Filter.Mult)
		if err != nil {
			return nil, err
		}
		g.filter = f
	}
	g.resetCursor()
	return g, nil
}

type expr struct {
	regex    string
	prefixes []string
}

func (e expr) GetRegex() string    { return e.regex }
func (e expr) GetPrefix() []string { return e.prefixes }

// resetCursor places the cursor at the group's start. Starts are inclusive;
// End means "after what exists now".
func (g *psGroup) resetCursor() {
	if g.cfg.Stream == "$all" {
		sn := g.srv.store.snap()
		switch g.cfg.Start.Kind {
		case "end":
			g.cursor = len(sn.log)
		case "position":
			g.cursor, _ = seek(sn.log, g.cfg.Start.Value)
		default:
			g.cursor = 0
		}
		return
	}
	v := g.srv.store.streamSnap(g.cfg.Stream)
	switch g.cfg.Start.Kind {
	case "end":
		g.cursor = len(v.revs)
	case "revision":
		g.cursor = int(min(g.cfg.Start.Value, 1<<62))
	default:
		g.cursor = 0
	}
}

func (g *psGroup) poke() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// timerTick is how often a real node looks for persistent subscription
// messages whose timeout has passed: a message is retried at the first
// tick after its timeout, not at the timeout itself, so an ack that comes
// late but before that tick still counts.
const timerTick = time.Second

func (g *psGroup) run() {
	period := g.srv.cfg.tick
	if period <= 0 {
		period = timerTick
	}
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for {
		g.mu.Lock()
		notify := g.dispatchLocked(time.Now())
		g.mu.Unlock()
		select {
		case <-notify:
		case <-g.wake:
		case now := <-ticker.C:
			g.tick(now)
		case <-g.stop:
			return
		case <-g.srv.ctx.Done():
			return
		}
	}
}

// tick retries (or parks) the messages whose timeout passed before now.
func (g *psGroup) tick(now time.Time) {
	g.mu.Lock()
	for id, ds := range g.inflight {
		keep := ds[:0]
		for _, d := range ds {
			if !d.deadline.IsZero() && d.deadline.Before(now) {
				d.client.inflight--
				g.requeueLocked(d, d.retries+1)
				continue
			}
			keep = append(keep, d)
		}
		if len(keep) == 0 {
			delete(g.inflight, id)
		} else {
			g.inflight[id] = keep
		}
	}
	g.mu.Unlock()
	g.poke()
}

func (g *psGroup) timeout() time.Duration {
	if ms := g.cfg.Settings.MessageTimeoutMs; ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return 0 // zero means no timeout
}

// dispatchLocked hands queued and new events to consumers with free
// slots. It returns the log signal to wait on.
func (g *psGroup) dispatchLocked(now time.Time) <-chan struct{} {
	var notify <-chan struct{}
	for len(g.retry) > 0 {
		c := g.pickLocked(g.retry[0].rec)
		if c == nil {
			break
		}
		d := g.retry[0]
		g.retry = g.retry[1:]
		g.sendLocked(c, d, now)
	}
	if g.cfg.Stream == "$all" {
		sn := g.srv.store.snap()
		notify = sn.notify
		for len(g.retry) == 0 && g.cursor < len(sn.log) {
			r := sn.log[g.cursor]
			if g.filter != nil && !g.filter.match(r) {
				g.cursor++
				continue
			}
			c := g.pickLocked(r)
			if c == nil {
				break
			}
			g.cursor++
			g.sendLocked(c, &delivery{rec: r}, now)
		}
	} else {
		v := g.srv.store.streamSnap(g.cfg.Stream)
		notify = v.notify
		for len(g.retry) == 0 && g.cursor < len(v.revs) {
			r := v.log[v.revs[g.cursor]]
			c := g.pickLocked(r)
			if c == nil {
				break
			}
			g.cursor++
			g.sendLocked(c, &delivery{rec: r}, now)
		}
	}
	return notify
}

// requeueLocked redelivers an event later, or parks it once it has been
// retried MaxRetryCount times.
func (g *psGroup) requeueLocked(d *delivery, retries int32) {
	d.client = nil
	d.deadline = time.Time{}
	if retries > g.cfg.Settings.MaxRetryCount {
		g.parked = append(g.parked, d)
		return
	}
	d.retries = retries
	g.retry = append(g.retry, d)
}

func (g *psGroup) pickLocked(r *record) *psClient {
	n := len(g.clients)
	if n == 0 {
		return nil
	}
	free := func(c *psClient) bool { return c.inflight < c.bufferSize }
	switch g.cfg.Settings.Strategy {
	case "DispatchToSingle":
		for _, c := range g.clients {
			if free(c) {
				return c
			}
		}
		return nil
	case "Pinned", "PinnedByCorrelation":
		h := fnv.New32a()
		_, _ = h.Write([]byte(r.Stream))
		if c := g.clients[int(h.Sum32()%uint32(n))]; free(c) {
			return c
		}
		return nil
	default:
		for i := range n {
			c := g.clients[(g.rr+i)%n]
			if free(c) {
				g.rr = (g.rr + i + 1) % n
				return c
			}
		}
		return nil
	}
}

func (g *psGroup) sendLocked(c *psClient, d *delivery, now time.Time) {
	d.client = c
	if t := g.timeout(); t > 0 {
		d.deadline = now.Add(t)
	}
	c.inflight++
	c.total++
	g.inflight[d.rec.ID] = append(g.inflight[d.rec.ID], d)
	g.lastSeen = d.rec
	// Never blocks: out has room for bufferSize events and inflight counts
	// every event not yet acknowledged.
	select {
	case c.out <- d:
	default:
	}
}

// take removes the in-flight delivery of id held by c.
func (g *psGroup) takeLocked(c *psClient, id uuid.UUID) *delivery {
	ds := g.inflight[id]
	for i, d := range ds {
		if d.client == c {
			ds = append(ds[:i], ds[i+1:]...)
			if len(ds) == 0 {
				delete(g.inflight, id)
			} else {
				g.inflight[id] = ds
			}
			c.inflight--
			return d
		}
	}
	return nil
}

func (g *psGroup) ack(c *psClient, ids []uuid.UUID) {
	g.mu.Lock()
	for _, id := range ids {
		if d := g.takeLocked(c, id); d != nil {
			if g.lastAck == nil || d.rec.Pos > g.lastAck.Pos {
				g.lastAck = d.rec
			}
		}
	}
	g.mu.Unlock()
	g.poke()
}

func (g *psGroup) nack(c *psClient, ids []uuid.UUID, action persistent.ReadReq_Nack_Action) {
	g.mu.Lock()
	for _, id := range ids {
		d := g.takeLocked(c, id)
		if d == nil {
			continue
		}
		switch action {
		case persistent.ReadReq_Nack_Park:
			d.client, d.deadline = nil, time.Time{}
			g.parked = append(g.parked, d)
		case persistent.ReadReq_Nack_Skip:
		case persistent.ReadReq_Nack_Stop:
			g.requeueLocked(d, d.retries)
			c.end(status.Error(codes.Canceled, "the consumer asked to stop"))
		default: // Retry and Unknown
			g.requeueLocked(d, d.retries+1)
		}
	}
	g.mu.Unlock()
	g.poke()
}

func (g *psGroup) join(c *psClient) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if maxN := g.cfg.Settings.MaxSubscriberCount; maxN > 0 && len(g.clients) >= int(maxN) {
		return errMaxSubscribers
	}
	g.clients = append(g.clients, c)
	g.poke()
	return nil
}

var errMaxSubscribers = errors.New("maximum subscribers reached")

// leave puts the consumer's unacknowledged events back at the front of
// the queue for the other consumers.
func (g *psGroup) leave(c *psClient) {
	g.mu.Lock()
	for i, x := range g.clients {
		if x == c {
			g.clients = append(g.clients[:i], g.clients[i+1:]...)
			break
		}
	}
	var back []*delivery
	for id, ds := range g.inflight {
		keep := ds[:0]
		for _, d := range ds {
			if d.client == c {
				d.client, d.deadline = nil, time.Time{}
				back = append(back, d)
			} else {
				keep = append(keep, d)
			}
		}
		if len(keep) == 0 {
			delete(g.inflight, id)
		} else {
			g.inflight[id] = keep
		}
	}
	sort.Slice(back, func(i, j int) bool { return back[i].rec.Pos < back[j].rec.Pos })
	g.retry = append(back, g.retry...)
	c.inflight = 0
	g.mu.Unlock()
	g.poke()
}

func (g *psGroup) replayParked(limit int64) {
	g.mu.Lock()
	n := int64(len(g.parked))
	if limit >= 0 && limit < n {
		n = limit
	}
	g.retry = append(g.retry, g.parked[:n]...)
	g.parked = append([]*delivery(nil), g.parked[n:]...)
	g.mu.Unlock()
	g.poke()
}

// close ends the group and every consumer.
func (g *psGroup) close(err error) {
	close(g.stop)
	g.mu.Lock()
	for _, c := range g.clients {
		c.end(err)
	}
	g.mu.Unlock()
}

// --- gRPC service ---

type persistentServer struct {
	persistent.UnimplementedPersistentSubscriptionsServer
	srv *Server
}

func (ps *persistentServer) subs() *persistentSubs { return ps.srv.subs }

func notExist(ctx context.Context, stream, group string) error {
	return groupErr(unaryTrailer(ctx), codes.NotFound, "persistent-subscription-does-not-exist", stream, group,
		fmt.Sprintf("Subscription group %s on stream %s does not exist.", group, stream))
}

// groupErr is a real node's answer about a group: the status and the
// exception, stream-name and group-name trailers, then any others.
func groupErr(setTrailer func(metadata.MD), c codes.Code, exception, stream, group, msg string, kv ...string) error {
	return trailerErr(setTrailer, c, msg,
		append([]string{"exception", exception, "stream-name", stream, "group-name", group}, kv...)...)
}

// groupFailed is how a real node refuses the settings of a group it
// creates or updates.
func groupFailed(ctx context.Context, stream, group, reason string) error {
	return groupErr(unaryTrailer(ctx), codes.Internal, "persistent-subscription-failed", stream, group,
		fmt.Sprintf("Subscription group %s on stream %s failed: '%s'", group, stream, reason), "reason", reason)
}

// consumerStrategies are the strategies a real node knows, by name.
var consumerStrategies = map[string]bool{
	"RoundRobin": true, "DispatchToSingle": true, "Pinned": true, "PinnedByCorrelation": true,
}

// strategyProblem and bufferProblem are the reasons a real node refuses a
// group's settings, "" for none. It checks the strategy first and the
// buffer sizes once it knows the group is new (or, to update, exists).
func strategyProblem(s psSettings) string {
	if !consumerStrategies[s.Strategy] {
		return fmt.Sprintf("Consumer strategy %s does not exist.", s.Strategy)
	}
	return ""
}

func bufferProblem(s psSettings) string {
	if s.ReadBatchSize >= s.HistoryBufferSize {
		// The server's ArgumentOutOfRangeException, whose one argument is
		// taken as the parameter name.
		return "Specified argument was out of the range of valid values. (Parameter 'ReadBatchSize may not be greater than or equal to BufferSize')"
	}
	return ""
}

type createSettings interface {
	GetResolveLinks() bool
	GetExtraStatistics() bool
	GetMaxRetryCount() int32
	GetMinCheckpointCount() int32
	GetMaxCheckpointCount() int32
	GetMaxSubscriberCount() int32
	GetLiveBufferSize() int32
	GetReadBatchSize() int32
	GetHistoryBufferSize() int32
	GetMessageTimeoutMs() int32
	GetMessageTimeoutTicks() int64
	GetCheckpointAfterMs() int32
	GetCheckpointAfterTicks() int64
}

func toSettings(s createSettings, strategy string) psSettings {
	out := psSettings{
		ResolveLinks: s.GetResolveLinks(), ExtraStatistics: s.GetExtraStatistics(),
		MaxRetryCount: s.GetMaxRetryCount(), MinCheckpointCount: s.GetMinCheckpointCount(),
		MaxCheckpointCount: s.GetMaxCheckpointCount(), MaxSubscriberCount: s.GetMaxSubscriberCount(),
		LiveBufferSize: s.GetLiveBufferSize(), ReadBatchSize: s.GetReadBatchSize(),
		HistoryBufferSize: s.GetHistoryBufferSize(), Strategy: strategy,
		MessageTimeoutMs: s.GetMessageTimeoutMs(), CheckpointAfterMs: s.GetCheckpointAfterMs(),
	}
	if t := s.GetMessageTimeoutTicks(); t != 0 {
		out.MessageTimeoutMs = int32(t / 10_000)
	}
	if t := s.GetCheckpointAfterTicks(); t != 0 {
		out.CheckpointAfterMs = int32(t / 10_000)
	}
	return out
}

func (ps *persistentServer) Create(ctx context.Context, req *persistent.CreateReq) (*persistent.CreateResp, error) {
	o := req.GetOptions()
	if o == nil || o.GroupName == "" {
		return nil, badRequest(unaryTrailer(ctx), "a group name is required")
	}
	s := o.GetSettings()
	strategy := s.GetConsumerStrategy()
	if strategy == "" {
		// The Go client sends only the deprecated enum.
		//lint:ignore SA1019 the official client still sends the deprecated field
		strategy = s.GetNamedConsumerStrategy().String()
	}
	cfg := psConfig{Group: o.GroupName, Settings: toSettings(s, strategy)}
	switch so := o.StreamOption.(type) {
	case *persistent.CreateReq_Options_Stream:
		cfg.Stream = string(so.Stream.GetStreamIdentifier().GetStreamName())
		switch {
		case so.Stream.GetStart() != nil:
			cfg.Start = psStart{Kind: "start"}
		case so.Stream.GetEnd() != nil:
			cfg.Start = psStart{Kind: "end"}
		default:
			cfg.Start = psStart{Kind: "revision", Value: so.Stream.GetRevision()}
		}
	case *persistent.CreateReq_Options_All:
		cfg.Stream = "$all"
		switch {
		case so.All.GetStart() != nil:
			cfg.Start = psStart{Kind: "start"}
		case so.All.GetEnd() != nil:
			cfg.Start = psStart{Kind: "end"}
		default:
			cfg.Start = psStart{Kind: "position", Value: so.All.GetPosition().GetCommitPosition()}
		}
		if f := so.All.GetFilter(); f != nil {
			pf := &psFilter{Window: f.GetMax(), Mult: f.CheckpointIntervalMultiplier}
			_, pf.HasMax = f.Window.(*persistent.CreateReq_AllOptions_FilterOptions_Max)
			switch e := f.Filter.(type) {
			case *persistent.CreateReq_AllOptions_FilterOptions_StreamIdentifier:
				pf.OnStream, pf.Regex, pf.Prefixes = true, e.StreamIdentifier.GetRegex(), e.StreamIdentifier.GetPrefix()
			case *persistent.CreateReq_AllOptions_FilterOptions_EventType:
				pf.Regex, pf.Prefixes = e.EventType.GetRegex(), e.EventType.GetPrefix()
			}
			cfg.Filter = pf
		}
	default:
		// Servers before 21.10 style: the deprecated identifier and revision,
		// which clients of that protocol still send.
		//lint:ignore SA1019 older clients send only the deprecated identifier
		cfg.Stream = string(o.GetStreamIdentifier().GetStreamName())
		//lint:ignore SA1019 older clients send only the deprecated revision
		cfg.Start = psStart{Kind: "revision", Value: s.GetRevision()}
	}
	if cfg.Stream == "" {
		return nil, badRequest(unaryTrailer(ctx), "a stream is required")
	}
	if reason := strategyProblem(cfg.Settings); reason != "" {
		return nil, groupFailed(ctx, cfg.Stream, cfg.Group, reason)
	}

	p := ps.subs()
	p.mu.Lock()
	defer p.mu.Unlock()
	key := groupKey(cfg.Stream, cfg.Group)
	if _, ok := p.groups[key]; ok {
		return nil, groupErr(unaryTrailer(ctx), codes.AlreadyExists, "persistent-subscription-exists", cfg.Stream, cfg.Group,
			fmt.Sprintf("Subscription group %s on stream %s exists.", cfg.Group, cfg.Stream))
	}
	if reason := bufferProblem(cfg.Settings); reason != "" {
		return nil, groupFailed(ctx, cfg.Stream, cfg.Group, reason)
	}
	g, err := p.newGroup(cfg)
	if err != nil {
		return nil, ps.srv.filterErr(unaryTrailer(ctx), err)
	}
	p.groups[key] = g
	if err := p.saveLocked(); err != nil {
		delete(p.groups, key)
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	go g.run()
	return &persistent.CreateResp{}, nil
}

func (ps *persistentServer) Update(ctx context.Context, req *persistent.UpdateReq) (*persistent.UpdateResp, error) {
	o := req.GetOptions()
	var stream string
	var start psStart
	switch so := o.GetStreamOption().(type) {
	case *persistent.UpdateReq_Options_Stream:
		stream = string(so.Stream.GetStreamIdentifier().GetStreamName())
		switch {
		case so.Stream.GetStart() != nil:
			start = psStart{Kind: "start"}
		case so.Stream.GetEnd() != nil:
			start = psStart{Kind: "end"}
		default:
			start = psStart{Kind: "revision", Value: so.Stream.GetRevision()}
		}
	case *persistent.UpdateReq_Options_All:
		stream = "$all"
		switch {
		case so.All.GetStart() != nil:
			start = psStart{Kind: "start"}
		case so.All.GetEnd() != nil:
			start = psStart{Kind: "end"}
		default:
			start = psStart{Kind: "position", Value: so.All.GetPosition().GetCommitPosition()}
		}
	default:
		//lint:ignore SA1019 older clients send only the deprecated identifier
		stream = string(o.GetStreamIdentifier().GetStreamName())
		//lint:ignore SA1019 older clients send only the deprecated revision
		start = psStart{Kind: "revision", Value: o.GetSettings().GetRevision()}
	}
	p := ps.subs()
	p.mu.Lock()
	defer p.mu.Unlock()
	g, ok := p.groups[groupKey(stream, o.GetGroupName())]
	if !ok {
		return nil, notExist(ctx, stream, o.GetGroupName())
	}
	s := o.GetSettings()
	settings := toSettings(s, s.GetNamedConsumerStrategy().String())
	if reason := strategyProblem(settings); reason != "" {
		return nil, groupFailed(ctx, stream, o.GetGroupName(), reason)
	}
	if reason := bufferProblem(settings); reason != "" {
		return nil, groupFailed(ctx, stream, o.GetGroupName(), reason)
	}
	g.mu.Lock()
	g.cfg.Start = start
	g.cfg.Settings = settings
	g.mu.Unlock()
	if err := p.saveLocked(); err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	g.poke()
	return &persistent.UpdateResp{}, nil
}

func streamOf(all *shared.Empty, id *shared.StreamIdentifier) string {
	if all != nil {
		return "$all"
	}
	return string(id.GetStreamName())
}

func (ps *persistentServer) Delete(ctx context.Context, req *persistent.DeleteReq) (*persistent.DeleteResp, error) {
	o := req.GetOptions()
	stream := streamOf(o.GetAll(), o.GetStreamIdentifier())
	p := ps.subs()
	p.mu.Lock()
	defer p.mu.Unlock()
	key := groupKey(stream, o.GetGroupName())
	g, ok := p.groups[key]
	if !ok {
		return nil, notExist(ctx, stream, o.GetGroupName())
	}
	delete(p.groups, key)
	g.close(status.Error(codes.NotFound, "the persistent subscription was deleted"))
	if err := p.saveLocked(); err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &persistent.DeleteResp{}, nil
}

func (ps *persistentServer) get(stream, group string) *psGroup {
	p := ps.subs()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.groups[groupKey(stream, group)]
}

func (ps *persistentServer) Read(stream persistent.PersistentSubscriptions_ReadServer) error {
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	o := req.GetOptions()
	if o == nil {
		return badRequest(stream.SetTrailer, "options are required first")
	}
	name := streamOf(o.GetAll(), o.GetStreamIdentifier())
	g := ps.get(name, o.GroupName)
	if g == nil {
		return groupErr(stream.SetTrailer, codes.NotFound, "persistent-subscription-does-not-exist", name, o.GroupName,
			fmt.Sprintf("Subscription group %s on stream %s does not exist.", o.GroupName, name))
	}
	size := int(o.BufferSize)
	if size <= 0 {
		size = 10
	}
	c := &psClient{bufferSize: size, out: make(chan *delivery, size), done: make(chan struct{}),
		asString: o.GetUuidOption().GetString_() != nil}
	if pr, ok := peer.FromContext(stream.Context()); ok {
		c.from = pr.Addr.String()
	}
	if err := g.join(c); err != nil {
		return groupErr(stream.SetTrailer, codes.FailedPrecondition, "maximum-subscribers-reached", name, o.GroupName,
			fmt.Sprintf("Maximum subscriptions reached for subscription group %s on stream %s.", o.GroupName, name))
	}
	defer g.leave(c)
	if err := stream.Send(&persistent.ReadResp{Content: &persistent.ReadResp_SubscriptionConfirmation_{
		SubscriptionConfirmation: &persistent.ReadResp_SubscriptionConfirmation{SubscriptionId: groupKey(name, o.GroupName)}}}); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	go func() {
		defer cancel()
		for {
			req, err := stream.Recv()
			if err != nil {
				return
			}
			switch x := req.Content.(type) {
			case *persistent.ReadReq_Ack_:
				g.ack(c, parseIDs(x.Ack.GetIds()))
			case *persistent.ReadReq_Nack_:
				g.nack(c, parseIDs(x.Nack.GetIds()), x.Nack.GetAction())
			}
		}
	}()
	for {
		select {
		case d := <-c.out:
			if err := stream.Send(persistentEvent(d, c.asString)); err != nil {
				return err
			}
		case <-c.done:
			return c.endErr
		case <-ctx.Done():
			if err := stream.Context().Err(); err != nil {
				return status.FromContextError(err).Err()
			}
			return nil // the client half-closed its side
		case <-ps.srv.ctx.Done():
			return status.Error(codes.Unavailable, "server is shutting down")
		}
	}
}

func parseIDs(ids []*shared.UUID) []uuid.UUID {
	out := make([]uuid.UUID, 0, len(ids))
	for _, id := range ids {
		if u, err := fromProtoUUID(id); err == nil {
			out = append(out, u)
		}
	}
	return out
}

func persistentEvent(d *delivery, asString bool) *persistent.ReadResp {
	r := d.rec
	return &persistent.ReadResp{Content: &persistent.ReadResp_Event{Event: &persistent.ReadResp_ReadEvent{
		Event: &persistent.ReadResp_ReadEvent_RecordedEvent{
			Id:               toProtoUUID(r.ID, asString),
			StreamIdentifier: streamID(r.Stream),
			StreamRevision:   r.Revision,
			PreparePosition:  r.Pos,
			CommitPosition:   r.Pos,
			Metadata:         systemMetadata(r),
			CustomMetadata:   r.Meta,
			Data:             r.Data,
		},
		Position: &persistent.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.Pos},
		Count:    &persistent.ReadResp_ReadEvent_RetryCount{RetryCount: d.retries},
	}}}
}

func (ps *persistentServer) GetInfo(ctx context.Context, req *persistent.GetInfoReq) (*persistent.GetInfoResp, error) {
	o := req.GetOptions()
	stream := streamOf(o.GetAll(), o.GetStreamIdentifier())
	g := ps.get(stream, o.GetGroupName())
	if g == nil {
		return nil, notExist(ctx, stream, o.GetGroupName())
	}
	return &persistent.GetInfoResp{SubscriptionInfo: g.info()}, nil
}

func posString(isAll bool, r *record) string {
	if r == nil {
		return ""
	}
	if isAll {
		return fmt.Sprintf("C:%d/P:%d", r.Pos, r.Pos)
	}
	return strconv.FormatUint(r.Revision, 10)
}

func (g *psGroup) info() *persistent.SubscriptionInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.cfg
	isAll := c.Stream == "$all"
	// A real node prints a start as a revision, or for $all as a position
	// (the end being C:-1/P:-1).
	var startFrom string
	switch {
	case c.Start.Kind == "end" && isAll:
		startFrom = "C:-1/P:-1"
	case c.Start.Kind == "end":
		startFrom = "-1"
	case isAll:
		startFrom = fmt.Sprintf("C:%d/P:%d", c.Start.Value, c.Start.Value)
	default:
		startFrom = strconv.FormatUint(c.Start.Value, 10)
	}
	var conns []*persistent.SubscriptionInfo_ConnectionInfo
	inflight := 0
	for _, cl := range g.clients {
		inflight += cl.inflight
		conns = append(conns, &persistent.SubscriptionInfo_ConnectionInfo{
			From: cl.from, Username: "$anonymous", TotalItems: cl.total,
			AvailableSlots: int32(cl.bufferSize - cl.inflight), InFlightMessages: int32(cl.inflight),
		})
	}
	var total int64
	for _, cl := range g.clients {
		total += cl.total
	}
	return &persistent.SubscriptionInfo{
		EventSource:                   c.Stream,
		GroupName:                     c.Group,
		Status:                        "Live",
		Connections:                   conns,
		TotalItems:                    total,
		LastCheckpointedEventPosition: posString(isAll, g.lastAck),
		LastKnownEventPosition:        posString(isAll, g.lastSeen),
		ResolveLinkTos:                c.Settings.ResolveLinks,
		StartFrom:                     startFrom,
		MessageTimeoutMilliseconds:    c.Settings.MessageTimeoutMs,
		ExtraStatistics:               c.Settings.ExtraStatistics,
		MaxRetryCount:                 c.Settings.MaxRetryCount,
		LiveBufferSize:                c.Settings.LiveBufferSize,
		BufferSize:                    c.Settings.HistoryBufferSize,
		ReadBatchSize:                 c.Settings.ReadBatchSize,
		CheckPointAfterMilliseconds:   c.Settings.CheckpointAfterMs,
		MinCheckPointCount:            c.Settings.MinCheckpointCount,
		MaxCheckPointCount:            c.Settings.MaxCheckpointCount,
		RetryBufferCount:              int32(len(g.retry)),
		TotalInFlightMessages:         int32(inflight),
		OutstandingMessagesCount:      int32(inflight),
		NamedConsumerStrategy:         c.Settings.Strategy,
		MaxSubscriberCount:            c.Settings.MaxSubscriberCount,
		ParkedMessageCount:            int64(len(g.parked)),
	}
}

func (ps *persistentServer) ReplayParked(ctx context.Context, req *persistent.ReplayParkedReq) (*persistent.ReplayParkedResp, error) {
	o := req.GetOptions()
	stream := streamOf(o.GetAll(), o.GetStreamIdentifier())
	g := ps.get(stream, o.GetGroupName())
	if g == nil {
		return nil, notExist(ctx, stream, o.GetGroupName())
	}
	limit := int64(-1)
	if _, ok := o.GetStopAtOption().(*persistent.ReplayParkedReq_Options_StopAt); ok {
		limit = o.GetStopAt()
	}
	g.replayParked(limit)
	return &persistent.ReplayParkedResp{}, nil
}

func (ps *persistentServer) List(ctx context.Context, req *persistent.ListReq) (*persistent.ListResp, error) {
	o := req.GetOptions()
	var want string
	all := o.GetListAllSubscriptions() != nil
	if !all {
		so := o.GetListForStream()
		want = streamOf(so.GetAll(), so.GetStream())
	}
	p := ps.subs()
	p.mu.Lock()
	groups := make([]*psGroup, 0, len(p.groups))
	for _, g := range p.groups {
		if all || g.cfg.Stream == want {
			groups = append(groups, g)
		}
	}
	p.mu.Unlock()
	if len(groups) == 0 && !all {
		// A real node answers not-found for a stream without groups.
		return nil, notExist(ctx, want, "")
	}
	sort.Slice(groups, func(i, j int) bool {
		return groupKey(groups[i].cfg.Stream, groups[i].cfg.Group) < groupKey(groups[j].cfg.Stream, groups[j].cfg.Group)
	})
	resp := &persistent.ListResp{}
	for _, g := range groups {
		resp.Subscriptions = append(resp.Subscriptions, g.info())
	}
	return resp, nil
}

func (ps *persistentServer) RestartSubsystem(context.Context, *shared.Empty) (*shared.Empty, error) {
	return &shared.Empty{}, nil
}
