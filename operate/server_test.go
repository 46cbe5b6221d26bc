package operate

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/follow"
)

// progress is a Progress whose statuses the test sets.
type progress struct {
	mu  sync.Mutex
	sts []follow.Status
	err error
}

func (p *progress) Upstreams(context.Context) ([]follow.Status, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]follow.Status(nil), p.sts...), p.err
}

func (p *progress) set(err error, sts ...follow.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sts, p.err = sts, err
}

// clock is a time the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func live(follower, upstream string, position, head int64) follow.Status {
	return follow.Status{Follower: follower, Upstream: upstream, State: follow.Live, Position: position, HasPosition: true,
		Head: head, HasHead: true, Lag: head - position, LagUnit: follow.Events}
}

func startOps(t *testing.T, opts ...Option) (*Server, string) {
	t.Helper()
	s := NewServer("127.0.0.1:0", append([]Option{WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithSampleInterval(time.Hour)}, opts...)...)
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s, "http://" + s.Addr()
}

func get(t *testing.T, url string, accept ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if len(accept) > 0 {
		req.Header.Set("Accept", accept[0])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestHealthz(t *testing.T) {
	_, url := startOps(t)
	code, body := get(t, url+"/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)
	code, _ = get(t, url+"/metrics")
	assert.Equal(t, http.StatusNotFound, code, "no metrics handler given")
}

// Ready while every follower is well; not ready, with the reason, while
// one has failed, has too many dead letters, is stalled, or a member does
// not answer; ready again when that passes.
func TestReadyz(t *testing.T) {
	p := &progress{}
	clk := &clock{now: time.Unix(1000, 0)}
	s, url := startOps(t, WithProgress(p), WithReadiness(Readiness{MaxDeadLetters: 2, StalledAfter: time.Minute}), withClock(clk.Now))
	p.set(nil, live("Reservations", "Orders", 10, 10), live("OrdersSummary", "Orders", 10, 10))

	code, body := get(t, url+"/readyz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ready\n", body)

	t.Run("failed", func(t *testing.T) {
		failed := live("Reservations", "Orders", 10, 12)
		failed.State, failed.Err = follow.Failed, errors.New("policy: no such product")
		p.set(nil, failed, live("OrdersSummary", "Orders", 10, 10))
		code, body := get(t, url+"/readyz")
		assert.Equal(t, http.StatusServiceUnavailable, code)
		assert.Equal(t, "not ready:\n  Reservations (upstream Orders) failed: policy: no such product\n", body)
		code, body = get(t, url+"/readyz", "application/json")
		assert.Equal(t, http.StatusServiceUnavailable, code)
		var r struct {
			Ready   bool
			Reasons []string
		}
		require.NoError(t, json.Unmarshal([]byte(body), &r))
		assert.False(t, r.Ready)
		assert.Equal(t, []string{"Reservations (upstream Orders) failed: policy: no such product"}, r.Reasons)
	})

	t.Run("dead letters", func(t *testing.T) {
		st := live("OrdersSummary", "Orders", 20, 20)
		st.DeadLetters = make([]follow.DeadLetter, 2)
		p.set(nil, st)
		code, _ := get(t, url+"/readyz")
		assert.Equal(t, http.StatusOK, code, "at the limit")
		st.DeadLetters = make([]follow.DeadLetter, 3)
		p.set(nil, st)
		code, body := get(t, url+"/readyz")
		assert.Equal(t, http.StatusServiceUnavailable, code)
		assert.Contains(t, body, "OrdersSummary (upstream Orders) has 3 dead letters, more than READY_MAX_DEAD_LETTERS=2")
	})

	t.Run("stalled", func(t *testing.T) {
		p.set(nil, live("Payments", "Orders", 30, 30))
		code, _ := get(t, url+"/readyz")
		assert.Equal(t, http.StatusOK, code)
		// The head grows, the position stays: not stalled until a minute.
		clk.add(30 * time.Second)
		p.set(nil, live("Payments", "Orders", 30, 45))
		code, _ = get(t, url+"/readyz")
		assert.Equal(t, http.StatusOK, code)
		clk.add(31 * time.Second)
		code, body := get(t, url+"/readyz")
		assert.Equal(t, http.StatusServiceUnavailable, code)
		assert.Contains(t, body, "Payments (upstream Orders) is stalled: position 30 has not moved for 1m1s while the upstream's head grew from 30 to 45 (lag 15 events; READY_STALLED_AFTER=1m0s)")
		// It moves again: ready.
		p.set(nil, live("Payments", "Orders", 31, 45))
		code, _ = get(t, url+"/readyz")
		assert.Equal(t, http.StatusOK, code)
	})

	t.Run("idle upstream is not a stall", func(t *testing.T) {
		p.set(nil, live("Payments", "Orders", 31, 45))
		clk.add(time.Hour)
		code, _ := get(t, url+"/readyz")
		assert.Equal(t, http.StatusOK, code, "the head did not grow since the position last moved")
	})

	t.Run("a member does not answer", func(t *testing.T) {
		p.set(errors.New("Payments does not answer: Unavailable"), live("Reservations", "Orders", 10, 10))
		code, body := get(t, url+"/readyz")
		assert.Equal(t, http.StatusServiceUnavailable, code)
		assert.Contains(t, body, "Payments does not answer")
	})

	t.Run("stopping", func(t *testing.T) {
		p.set(nil, live("Reservations", "Orders", 10, 10))
		s.mu.Lock()
		s.stopping = true // as Stop's first step
		s.mu.Unlock()
		code, body := get(t, url+"/readyz")
		assert.Equal(t, http.StatusServiceUnavailable, code)
		assert.Contains(t, body, "stopping")
		s.mu.Lock()
		s.stopping = false
		s.mu.Unlock()
	})
}

// A stall shows however seldom /readyz is asked: the server samples
// progress in the background.
func TestReadyzSamples(t *testing.T) {
	p := &progress{}
	p.set(nil, live("Payments", "Orders", 5, 5))
	_, url := startOps(t, WithProgress(p), WithReadiness(Readiness{MaxDeadLetters: -1, StalledAfter: 300 * time.Millisecond}), WithSampleInterval(20*time.Millisecond))
	time.Sleep(100 * time.Millisecond)
	p.set(nil, live("Payments", "Orders", 5, 9))
	require.Eventually(t, func() bool {
		code, body := get(t, url+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "stalled")
	}, 5*time.Second, 50*time.Millisecond)
}

func TestServerLifecycle(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer lis.Close()
	s := NewServer(lis.Addr().String())
	err = s.Start(context.Background())
	require.Error(t, err, "the address is taken")
	assert.Contains(t, err.Error(), "METRICS_ADDRESS="+lis.Addr().String())
	assert.NoError(t, s.Stop(context.Background()), "Stop after a failed Start")

	s, _ = startOps(t)
	assert.Error(t, s.Start(context.Background()), "a second Start")
	assert.NoError(t, s.Stop(context.Background()))
	assert.NoError(t, s.Stop(context.Background()), "idempotent")
}

func TestReadinessFromEnv(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]string
		want Readiness
		err  string
	}{
		{vars: nil, want: Readiness{MaxDeadLetters: -1, StalledAfter: time.Minute}},
		{vars: map[string]string{EnvReadyMaxDeadLetters: "0"}, want: Readiness{MaxDeadLetters: 0, StalledAfter: time.Minute}},
		{vars: map[string]string{EnvReadyMaxDeadLetters: "10", EnvReadyStalledAfter: "30"}, want: Readiness{MaxDeadLetters: 10, StalledAfter: 30 * time.Second}},
		{vars: map[string]string{EnvReadyStalledAfter: "2m"}, want: Readiness{MaxDeadLetters: -1, StalledAfter: 2 * time.Minute}},
		{vars: map[string]string{EnvReadyStalledAfter: "0"}, want: Readiness{MaxDeadLetters: -1}},
		{vars: map[string]string{EnvReadyMaxDeadLetters: "-1"}, err: "READY_MAX_DEAD_LETTERS=-1 is negative"},
		{vars: map[string]string{EnvReadyMaxDeadLetters: "many"}, err: "READY_MAX_DEAD_LETTERS"},
		{vars: map[string]string{EnvReadyStalledAfter: "soon"}, err: "READY_STALLED_AFTER"},
	} {
		got, err := ReadinessFromEnv(config.NewEnvFrom("", nil, func(k string) (string, bool) { v, ok := tc.vars[k]; return v, ok }))
		if tc.err != "" {
			require.Error(t, err, "%v", tc.vars)
			assert.Contains(t, err.Error(), tc.err)
			continue
		}
		require.NoError(t, err, "%v", tc.vars)
		assert.Equal(t, tc.want, got, "%v", tc.vars)
	}
}
