// The PersistentSubscriptions gRPC service: each method translates a
// request into calls on the groups and answers as a real node does.

package esdbtest

import (
	"context"
	"fmt"
	"sort"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

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

// startOf reads where a create or update request starts a group: the
// start, the end, or else value as a kind ("revision" of a stream,
// "position" in $all). Create and update requests carry the same options
// in different message types, hence the plain arguments.
func startOf(start, end *shared.Empty, kind string, value uint64) psStart {
	switch {
	case start != nil:
		return psStart{Kind: "start"}
	case end != nil:
		return psStart{Kind: "end"}
	default:
		return psStart{Kind: kind, Value: value}
	}
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
		cfg.Start = startOf(so.Stream.GetStart(), so.Stream.GetEnd(), "revision", so.Stream.GetRevision())
	case *persistent.CreateReq_Options_All:
		cfg.Stream = "$all"
		cfg.Start = startOf(so.All.GetStart(), so.All.GetEnd(), "position", so.All.GetPosition().GetCommitPosition())
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
	if err := ps.subs().create(ctx, cfg); err != nil {
		return nil, err
	}
	return &persistent.CreateResp{}, nil
}

func (ps *persistentServer) Update(ctx context.Context, req *persistent.UpdateReq) (*persistent.UpdateResp, error) {
	o := req.GetOptions()
	var stream string
	var start psStart
	switch so := o.GetStreamOption().(type) {
	case *persistent.UpdateReq_Options_Stream:
		stream = string(so.Stream.GetStreamIdentifier().GetStreamName())
		start = startOf(so.Stream.GetStart(), so.Stream.GetEnd(), "revision", so.Stream.GetRevision())
	case *persistent.UpdateReq_Options_All:
		stream = "$all"
		start = startOf(so.All.GetStart(), so.All.GetEnd(), "position", so.All.GetPosition().GetCommitPosition())
	default:
		//lint:ignore SA1019 older clients send only the deprecated identifier
		stream = string(o.GetStreamIdentifier().GetStreamName())
		//lint:ignore SA1019 older clients send only the deprecated revision
		start = psStart{Kind: "revision", Value: o.GetSettings().GetRevision()}
	}
	s := o.GetSettings()
	settings := toSettings(s, s.GetNamedConsumerStrategy().String())
	if err := ps.subs().update(ctx, stream, o.GetGroupName(), start, settings); err != nil {
		return nil, err
	}
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
	if err := ps.subs().remove(ctx, stream, o.GetGroupName()); err != nil {
		return nil, err
	}
	return &persistent.DeleteResp{}, nil
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
	g := ps.subs().get(name, o.GroupName)
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
	g := ps.subs().get(stream, o.GetGroupName())
	if g == nil {
		return nil, notExist(ctx, stream, o.GetGroupName())
	}
	return &persistent.GetInfoResp{SubscriptionInfo: g.info()}, nil
}

func (ps *persistentServer) ReplayParked(ctx context.Context, req *persistent.ReplayParkedReq) (*persistent.ReplayParkedResp, error) {
	o := req.GetOptions()
	stream := streamOf(o.GetAll(), o.GetStreamIdentifier())
	g := ps.subs().get(stream, o.GetGroupName())
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
