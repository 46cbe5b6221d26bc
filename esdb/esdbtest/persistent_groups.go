// Persistent subscription groups: their durable configuration and
// settings, the registry that creates, updates, deletes and restores them,
// and the information a real node gives about each.

package esdbtest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
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

// close ends the group and every consumer.
func (g *psGroup) close(err error) {
	close(g.stop)
	g.mu.Lock()
	for _, c := range g.clients {
		c.end(err)
	}
	g.mu.Unlock()
}

// bufferProblem is the reason a real node refuses a group's buffer sizes,
// "" for none. It checks them once it knows the group is new (or, to
// update, exists), after strategyProblem.
func bufferProblem(s psSettings) string {
	if s.ReadBatchSize >= s.HistoryBufferSize {
		// The server's ArgumentOutOfRangeException, whose one argument is
		// taken as the parameter name.
		return "Specified argument was out of the range of valid values. (Parameter 'ReadBatchSize may not be greater than or equal to BufferSize')"
	}
	return ""
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

// create adds and starts a group. It refuses as a real node does, in its
// order: an unknown strategy, an existing group, then the buffer sizes.
func (p *persistentSubs) create(ctx context.Context, cfg psConfig) error {
	if reason := strategyProblem(cfg.Settings); reason != "" {
		return groupFailed(ctx, cfg.Stream, cfg.Group, reason)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	key := groupKey(cfg.Stream, cfg.Group)
	if _, ok := p.groups[key]; ok {
		return groupErr(unaryTrailer(ctx), codes.AlreadyExists, "persistent-subscription-exists", cfg.Stream, cfg.Group,
			fmt.Sprintf("Subscription group %s on stream %s exists.", cfg.Group, cfg.Stream))
	}
	if reason := bufferProblem(cfg.Settings); reason != "" {
		return groupFailed(ctx, cfg.Stream, cfg.Group, reason)
	}
	g, err := p.newGroup(cfg)
	if err != nil {
		return p.srv.filterErr(unaryTrailer(ctx), err)
	}
	p.groups[key] = g
	if err := p.saveLocked(); err != nil {
		delete(p.groups, key)
		return status.Error(codes.Unavailable, err.Error())
	}
	go g.run()
	return nil
}

// update replaces the start and settings of an existing group; the
// dispatcher goes on from its cursor with the new settings.
func (p *persistentSubs) update(ctx context.Context, stream, group string, start psStart, settings psSettings) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, ok := p.groups[groupKey(stream, group)]
	if !ok {
		return notExist(ctx, stream, group)
	}
	if reason := strategyProblem(settings); reason != "" {
		return groupFailed(ctx, stream, group, reason)
	}
	if reason := bufferProblem(settings); reason != "" {
		return groupFailed(ctx, stream, group, reason)
	}
	g.mu.Lock()
	g.cfg.Start = start
	g.cfg.Settings = settings
	g.mu.Unlock()
	if err := p.saveLocked(); err != nil {
		return status.Error(codes.Unavailable, err.Error())
	}
	g.poke()
	return nil
}

// remove deletes a group and ends its consumers.
func (p *persistentSubs) remove(ctx context.Context, stream, group string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := groupKey(stream, group)
	g, ok := p.groups[key]
	if !ok {
		return notExist(ctx, stream, group)
	}
	delete(p.groups, key)
	g.close(status.Error(codes.NotFound, "the persistent subscription was deleted"))
	if err := p.saveLocked(); err != nil {
		return status.Error(codes.Unavailable, err.Error())
	}
	return nil
}

// get returns the group of stream and group, nil if there is none.
func (p *persistentSubs) get(stream, group string) *psGroup {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.groups[groupKey(stream, group)]
}
