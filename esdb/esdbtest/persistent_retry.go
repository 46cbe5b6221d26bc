// What becomes of an event a consumer does not acknowledge: acks and nacks,
// message timeouts and retries, parking after MaxRetryCount, and replaying
// the parked events.

package esdbtest

import (
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// timerTick is how often a real node looks for persistent subscription
// messages whose timeout has passed: a message is retried at the first
// tick after its timeout, not at the timeout itself, so an ack that comes
// late but before that tick still counts.
const timerTick = time.Second

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
