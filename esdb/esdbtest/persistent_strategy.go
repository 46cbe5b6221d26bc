// The consumers of a persistent subscription group and how the group's
// dispatcher shares events among them: round robin, dispatch to single,
// pinned and pinned by correlation.

package esdbtest

import (
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"
	"time"
)

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

// consumerStrategies are the strategies a real node knows, by name.
var consumerStrategies = map[string]bool{
	"RoundRobin": true, "DispatchToSingle": true, "Pinned": true, "PinnedByCorrelation": true,
}

// strategyProblem is the reason a real node refuses a group's strategy,
// "" for none. It checks the strategy before anything else about a group
// (see bufferProblem).
func strategyProblem(s psSettings) string {
	if !consumerStrategies[s.Strategy] {
		return fmt.Sprintf("Consumer strategy %s does not exist.", s.Strategy)
	}
	return ""
}

func (g *psGroup) poke() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

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
