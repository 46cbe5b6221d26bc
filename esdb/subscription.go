package esdb

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"

	"github.com/eventsourcing-go/eventsourcing/internal/ctxtime"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// topicFilter is the server-side filter of a subscription: exactly the given
// topics, or every non-system event. Each topic is quoted and the whole
// alternation anchored, in a form both .NET and Go (RE2) regexps read alike.
func topicFilter(topics []string) *esdbclient.SubscriptionFilter {
	if len(topics) == 0 {
		return esdbclient.ExcludeSystemEventsFilter()
	}
	quoted := make([]string, len(topics))
	for i, t := range topics {
		quoted[i] = regexp.QuoteMeta(t)
	}
	return &esdbclient.SubscriptionFilter{Type: esdbclient.EventFilterType, Regex: "^(?:" + strings.Join(quoted, "|") + ")$"}
}

// subscribeOptions are those of a filtered catch-up subscription to $all
// after p (from the start when nil). From is always set: the client's
// default is the end of $all.
func subscribeOptions(after *uint64, filter *esdbclient.SubscriptionFilter) esdbclient.SubscribeToAllOptions {
	o := esdbclient.SubscribeToAllOptions{From: esdbclient.Start{}, Filter: filter}
	if after != nil {
		o.From = esdbclient.Position{Commit: *after, Prepare: *after}
	}
	if filter != nil {
		// Checkpoints are not used as positions (they may lie past the last
		// event on some servers), only to keep sparse filtered streams alive.
		o.CheckpointInterval = 5
	}
	return o
}

// resubscribable reports whether a dropped or failed subscription should be
// reopened from its last position: transport failures, server restarts,
// "consumer too slow" aborts, deadlines. Authentication, permission and bad
// requests are reported instead.
func resubscribable(err error) bool {
	switch code(err) {
	case esdbclient.ErrorCodeConnectionClosed, esdbclient.ErrorUnavailable, esdbclient.ErrorAborted,
		esdbclient.ErrorCodeDeadlineExceeded, esdbclient.ErrorCodeNotLeader:
		return true
	case esdbclient.ErrorCodeUnauthenticated, esdbclient.ErrorCodeAccessDenied, esdbclient.ErrorCodeStreamDeleted,
		esdbclient.ErrorCodeUnsupportedFeature:
		return false
	}
	switch grpcCode(err) {
	case codes.Aborted, codes.Unavailable, codes.Canceled, codes.Unknown, codes.DeadlineExceeded, codes.Internal, codes.ResourceExhausted:
		return true
	case codes.OK:
		// No status: the client's own errors (EOF, "failed to initiate").
		return true
	}
	return false
}

// item is what the pump hands Next: a notification or a terminal error.
type item struct {
	n   recorder.Notification
	err error
}

// Subscription is a catch-up subscription to $all for projection runners
// (recorder.Subscription). A goroutine receives from the server into a small
// buffer and reopens the subscription from the last position it saw after a
// dropped connection; Next reads the buffer.
type Subscription struct {
	f      *Factory
	topics []string
	items  chan item
	done   chan struct{}
	cancel context.CancelFunc
	once   sync.Once
	wg     sync.WaitGroup
}

var _ recorder.Subscription = (*Subscription)(nil)

func newSubscription(ctx context.Context, f *Factory, after recorder.Position, topics []string) (*Subscription, error) {
	const op = "subscribe"
	if err := ctx.Err(); err != nil {
		return nil, wrap(ctx, op, err)
	}
	var from *uint64
	if id, ok := after.ID(); ok {
		if id < 0 {
			return nil, recorder.Errorf(recorder.ErrProgramming, op, "position %d is negative", id)
		}
		p := uint64(id)
		from = &p
	}
	pumpCtx, cancel := context.WithCancel(ctx)
	s := &Subscription{f: f, topics: append([]string(nil), topics...), items: make(chan item, 256), done: make(chan struct{}), cancel: cancel}
	// Open the first subscription here, so that a refusal (bad credentials, an
	// invalid start) is Subscribe's error.
	sub, err := s.open(pumpCtx, from)
	if err != nil {
		cancel()
		return nil, wrap(ctx, op, err)
	}
	f.subs.Store(s, struct{}{})
	s.wg.Go(func() { s.pump(pumpCtx, sub, from) })
	return s, nil
}

func (s *Subscription) open(ctx context.Context, from *uint64) (*esdbclient.Subscription, error) {
	var sub *esdbclient.Subscription
	err := s.f.do(ctx, func(c *esdbclient.Client) error {
		var err error
		sub, err = c.SubscribeToAll(ctx, subscribeOptions(from, topicFilter(s.topics)))
		return err
	})
	return sub, err
}

// pump receives events and reopens the subscription when it drops.
func (s *Subscription) pump(ctx context.Context, sub *esdbclient.Subscription, from *uint64) {
	defer close(s.items)
	var last *uint64 // the last position delivered
	if from != nil {
		p := *from
		last = &p
	}
	backoff := 50 * time.Millisecond
	for {
		dropped := s.receive(ctx, sub, &last)
		_ = sub.Close()
		if ctx.Err() != nil {
			return
		}
		if !resubscribable(dropped) {
			s.fail(ctx, wrap(ctx, "subscription", dropped))
			return
		}
		// Reopen after the last position delivered, with a capped backoff.
		for {
			s.f.log.Warn("catch-up subscription dropped; resubscribing", "err", dropped, "after", positionText(last))
			if !ctxtime.Sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, 2*time.Second)
			var err error
			if sub, err = s.open(ctx, last); err == nil {
				backoff = 50 * time.Millisecond
				break
			}
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, errClosed) || !resubscribable(err) {
				s.fail(ctx, wrap(ctx, "resubscribe", err))
				return
			}
			dropped = err
		}
	}
}

// positionText is a position for the log: the number, or "start" when
// nothing was delivered yet.
func positionText(p *uint64) string {
	if p == nil {
		return "start"
	}
	return strconv.FormatUint(*p, 10)
}

// receive forwards one subscription's events until it drops, and returns why.
func (s *Subscription) receive(ctx context.Context, sub *esdbclient.Subscription, last **uint64) error {
	for {
		ev := sub.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			err := ev.SubscriptionDropped.Error
			if err == nil {
				err = errors.New("subscription dropped")
			}
			return err
		case ev.EventAppeared != nil:
			e := ev.EventAppeared.OriginalEvent()
			p := e.Position.Commit
			// Drop what was delivered already: a reopened subscription may
			// overlap what the old one sent.
			if *last != nil && p <= **last {
				continue
			}
			*last = &p
			if !s.f.isNotification(e) || !recorder.MatchTopic(s.topics, e.EventType) {
				continue
			}
			select {
			case s.items <- item{n: notification(e)}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

func (s *Subscription) fail(ctx context.Context, err error) {
	select {
	case s.items <- item{err: err}:
	case <-ctx.Done():
	}
}

// Next returns the next notification, blocking when caught up.
func (s *Subscription) Next(ctx context.Context) (recorder.Notification, error) {
	select {
	case <-s.done:
		return recorder.Notification{}, recorder.ErrSubscriptionClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		return recorder.Notification{}, err
	}
	select {
	case <-s.done:
		return recorder.Notification{}, recorder.ErrSubscriptionClosed
	case <-ctx.Done():
		return recorder.Notification{}, ctx.Err()
	case it, ok := <-s.items:
		if !ok {
			// The pump ended without an error: the factory or the
			// subscription's context ended.
			if s.f.closed.Load() {
				return recorder.Notification{}, &recorder.Error{Kind: recorder.ErrConnectionUnavailable, Op: "subscription", Err: errClosed}
			}
			return recorder.Notification{}, fmt.Errorf("subscription ended: %w", recorder.ErrSubscriptionClosed)
		}
		return it.n, it.err
	}
}

// Close ends the subscription and waits for its goroutine.
func (s *Subscription) Close() error {
	s.once.Do(func() {
		close(s.done)
		s.cancel()
		s.wg.Wait()
		s.f.subs.Delete(s)
	})
	return nil
}
