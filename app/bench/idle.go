package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

func idleScenario() *scenario {
	var hold time.Duration
	return &scenario{
		name: "idle", args: "--conns N [--pid PID]",
		summary: "hold N authenticated sockets: connect rate, the server's memory per connection",
		help: `Registers accounts, opens N authenticated WebSockets (/ws/chat/) to the
server, --concurrency at a time, and holds them for --hold while they
answer the server's pings. It reports the connect rate and latency and how
many sockets the server dropped. With --pid (the server on this machine)
it reads the server's RSS from /proc before the first socket and after
the last, and reports the difference per connection; when /metrics is
open it also reports goroutines and Go heap per connection.

Each account costs the server a slow password hash: with --users below N,
sockets are shared round robin among fewer accounts (like several
devices per user), which registers faster. Past about 28,000 sockets they
are spread over several loopback source addresses (127.0.0.x), so that
ephemeral ports do not run out.

  confab bench idle --conns 5000 --pid $(pgrep -n confab)`,
		timeout: func() time.Duration { return 30*time.Minute + hold },
		flags: func(fs *flag.FlagSet) func(context.Context, *env) (report, error) {
			conns := fs.Int("conns", 1000, "sockets to hold")
			users := fs.Int("users", 0, "accounts the sockets belong to, round robin (default: one per socket)")
			fs.DurationVar(&hold, "hold", 5*time.Second, "how long to hold the sockets once all are open")
			settle := fs.Duration("settle", 2*time.Second, "pause after the last socket opens before reading the server's memory")
			return func(ctx context.Context, e *env) (report, error) {
				if *conns < 1 {
					return nil, &usageError{"--conns must be at least 1"}
				}
				if *users <= 0 || *users > *conns {
					*users = *conns
				}
				return runIdle(ctx, e, *conns, *users, hold, *settle)
			}
		},
	}
}

type idleReport struct {
	header
	Conns          int            `json:"conns"`
	Users          int            `json:"users"`
	SourceAddrs    int            `json:"source_addresses"`
	Connected      int            `json:"connected"`
	ConnectErrors  int            `json:"connect_errors"`
	FirstError     string         `json:"first_error,omitempty"`
	ConnectSeconds float64        `json:"connect_seconds"`
	ConnectRate    float64        `json:"connects_per_second"`
	ConnectLatency latency        `json:"connect_latency"`
	HoldSeconds    float64        `json:"hold_seconds"`
	Dropped        int            `json:"dropped"`
	DropCodes      map[string]int `json:"drop_codes,omitempty"`
	// PerConn is the server's growth per open socket.
	PerConn *perConn `json:"per_conn,omitempty"`
}

// perConn is what one open socket costs the server.
type perConn struct {
	RSSBytes       int64   `json:"rss_bytes,omitempty"`
	HeapBytes      int64   `json:"heap_inuse_bytes,omitempty"`
	Goroutines     float64 `json:"goroutines,omitempty"`
	FromMetrics    bool    `json:"from_metrics"`
	MetricsRSSByte int64   `json:"metrics_rss_bytes,omitempty"`
}

func (r *idleReport) failed() bool {
	return r.ConnectErrors > 0 || r.Dropped > 0 || r.Connected != r.Conns
}

func (r *idleReport) rows() [][2]string {
	rows := [][2]string{
		{"sockets", fmt.Sprintf("%d connected of %d (%d accounts, %d source address(es))", r.Connected, r.Conns, r.Users, r.SourceAddrs)},
		{"connect errors", fmt.Sprint(r.ConnectErrors)},
	}
	if r.FirstError != "" {
		rows = append(rows, [2]string{"first error", r.FirstError})
	}
	rows = append(rows,
		[2]string{"connect rate", fmt.Sprintf("%.0f sockets/s (%.1f s)", r.ConnectRate, r.ConnectSeconds)},
		[2]string{"connect latency", r.ConnectLatency.String()},
		[2]string{"held for", fmt.Sprintf("%.1f s", r.HoldSeconds)},
		[2]string{"dropped by the server", fmtCodes(r.DropCodes)},
	)
	if p := r.PerConn; p != nil {
		if p.RSSBytes != 0 {
			rows = append(rows, [2]string{"server RSS per socket", fmt.Sprintf("%.1f KiB", float64(p.RSSBytes)/1024)})
		}
		if p.FromMetrics {
			rows = append(rows,
				[2]string{"server heap per socket", fmt.Sprintf("%.1f KiB (/metrics)", float64(p.HeapBytes)/1024)},
				[2]string{"server goroutines per socket", fmt.Sprintf("%.2f (/metrics)", p.Goroutines)})
		}
	}
	return append(rows, r.serverRows()...)
}

func runIdle(ctx context.Context, e *env, n, nUsers int, hold, settle time.Duration) (report, error) {
	if err := checkFiles(n); err != nil {
		return nil, err
	}
	sources, err := e.target.spread(n)
	if err != nil {
		return nil, &usageError{err.Error()}
	}
	if sources > 1 {
		fmt.Fprintf(e.stderr, "bench idle: %d sockets: spreading them over %d loopback source addresses (127.0.0.1-%d)\n",
			n, sources, sources)
	}
	users, err := e.registerPhase(ctx, nUsers)
	if err != nil {
		return nil, err
	}
	r := &idleReport{Conns: n, Users: nUsers, SourceAddrs: sources}

	// Before: after the registrations, whose hashing is no socket's cost.
	time.Sleep(min(settle, time.Second))
	mem := e.memBefore()
	m0 := e.api.metrics(ctx)

	socks := make([]*sock, n)
	var (
		connected, failed atomic.Int64
		lat               hist
		firstErr          firstError
		drops             codes
		next              atomic.Int64
		wg, readers       sync.WaitGroup
	)
	// A socket refused for the server's connection limits stops the
	// dials: the rest would be refused too.
	connCtx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	start := time.Now()
	e.progress.set(func() string {
		c := connected.Load()
		return fmt.Sprintf("connected %d/%d (%.0f/s), errors %d", c, n, perSec(c, time.Since(start)), failed.Load())
	})
	for range min(e.opt.concurrency, n) {
		wg.Go(func() {
			for connCtx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t0 := time.Now()
				s, err := e.dial(connCtx, i, "/ws/chat/", users[i%nUsers])
				var limited *connLimitError
				if errors.As(err, &limited) {
					abort(sizeConnLimit(err, n, nUsers))
					return
				}
				if err != nil {
					if connCtx.Err() == nil {
						failed.Add(1)
						firstErr.set(err)
					}
					continue
				}
				lat.add(time.Since(t0))
				socks[i] = s
				connected.Add(1)
				readers.Go(func() {
					s.run(e, users[i%nUsers], nil)
					if s.failed() {
						drops.add(s.closeCode())
					}
				})
			}
		})
	}
	wg.Wait()
	if err := context.Cause(connCtx); err != nil && ctx.Err() == nil {
		closeAll(socks, e.opt.concurrency)
		readers.Wait()
		return nil, err
	}
	connectTook := time.Since(start)
	r.Connected, r.ConnectErrors, r.FirstError = int(connected.Load()), int(failed.Load()), firstErr.String()
	r.ConnectSeconds, r.ConnectRate = seconds(connectTook), perSec(connected.Load(), connectTook)
	r.ConnectLatency = lat.summary()

	// Hold, then measure while every socket is still open.
	holdStart := time.Now()
	e.progress.set(func() string {
		return fmt.Sprintf("holding %d sockets %.0fs/%.0fs, dropped %d", connected.Load(),
			time.Since(holdStart).Seconds(), (hold + settle).Seconds(), drops.total())
	})
	select {
	case <-time.After(hold + settle):
	case <-ctx.Done():
	}
	r.HoldSeconds = seconds(time.Since(holdStart))
	mem.after(e)
	m1 := e.api.metrics(ctx)
	if c := int64(r.Connected); c > 0 {
		pc := &perConn{}
		if mem != nil {
			pc.RSSBytes = (mem.RSSAfter - mem.RSSBefore) / c
		}
		if m0 != nil && m1 != nil {
			pc.FromMetrics = true
			pc.HeapBytes = int64(m1["go_memstats_heap_inuse_bytes"]-m0["go_memstats_heap_inuse_bytes"]) / c
			pc.Goroutines = math.Round((m1["go_goroutines"]-m0["go_goroutines"])/float64(c)*100) / 100
			pc.MetricsRSSByte = int64(m1["process_resident_memory_bytes"]-m0["process_resident_memory_bytes"]) / c
		}
		if mem != nil || pc.FromMetrics {
			r.PerConn = pc
		}
	}
	r.Dropped, r.DropCodes = drops.total(), drops.snapshot()

	e.progress.set(func() string { return "closing the sockets" })
	closeAll(socks, e.opt.concurrency)
	readers.Wait()
	r.header = e.header("idle")
	r.Server = mem
	r.finish(e)
	return r, ctx.Err()
}

// closeAll closes the open sockets of socks, conc at a time.
func closeAll(socks []*sock, conc int) {
	var wg sync.WaitGroup
	ch := make(chan *sock)
	for range conc {
		wg.Go(func() {
			for s := range ch {
				s.close()
			}
		})
	}
	for _, s := range socks {
		if s != nil {
			ch <- s
		}
	}
	close(ch)
	wg.Wait()
}
