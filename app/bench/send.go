package bench

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func sendScenario() *scenario {
	return &scenario{
		name: "send", args: "--clients C --msgs M",
		multi:   true,
		summary: "C concurrent REST senders: committed messages per second, latency",
		help: `Registers C senders and one recipient; each sender posts to its own direct
conversation with the recipient, waiting for each POST (201: committed)
before the next. M messages in all (not each) are shared among the
senders. It reports committed messages per second over the whole run and
the POST latency; any failed POST makes the exit status 1.

No socket is open, so this measures the write path (validation, the
commit, the event publish) on its own.

With several --url (the nodes of one cluster, sharing one database),
sender i posts to node i modulo their number; the accounts and
conversations are made on the first.

  confab bench send --clients 16 --msgs 16000`,
		timeout: func() time.Duration { return 30 * time.Minute },
		flags: func(fs *flag.FlagSet) func(context.Context, *env) (report, error) {
			clients := fs.Int("clients", 16, "concurrent senders")
			msgs := fs.Int("msgs", 10000, "messages to send, in all")
			size := fs.Int("size", 64, "message content length in characters (at least 48, at most 4000)")
			return func(ctx context.Context, e *env) (report, error) {
				switch {
				case *clients < 1 || *msgs < 1:
					return nil, &usageError{"--clients and --msgs must be at least 1"}
				case *size < minContent || *size > 4000:
					return nil, &usageError{fmt.Sprintf("--size must be between %d and 4000", minContent)}
				}
				return runSend(ctx, e, *clients, *msgs, *size)
			}
		},
	}
}

type sendReport struct {
	header
	Clients    int            `json:"clients"`
	Messages   int            `json:"messages"`
	Committed  int64          `json:"committed"`
	Errors     int64          `json:"errors"`
	ErrorCodes map[string]int `json:"error_statuses,omitempty"`
	FirstError string         `json:"first_error,omitempty"`
	Secs       float64        `json:"send_seconds"`
	Rate       float64        `json:"committed_per_second"`
	Latency    latency        `json:"latency"`
	// PerNode is senders and commits per server, with several --url.
	PerNode []nodeSends `json:"per_node,omitempty"`
}

// nodeSends is one server's share of a send run.
type nodeSends struct {
	URL       string `json:"url"`
	Senders   int    `json:"senders"`
	Committed int64  `json:"committed"`
}

func (r *sendReport) failed() bool { return r.Errors > 0 || r.Committed != int64(r.Messages) }

func (r *sendReport) rows() [][2]string {
	rows := [][2]string{
		{"clients", fmt.Sprint(r.Clients)},
		{"committed", fmt.Sprintf("%d of %d", r.Committed, r.Messages)},
		{"errors", fmtCodes(r.ErrorCodes)},
	}
	if r.FirstError != "" {
		rows = append(rows, [2]string{"first error", r.FirstError})
	}
	rows = append(rows,
		[2]string{"committed/s", fmt.Sprintf("%.0f (%.2f s)", r.Rate, r.Secs)},
		[2]string{"POST latency", r.Latency.String()},
	)
	if len(r.PerNode) > 0 {
		parts := make([]string, len(r.PerNode))
		for i, n := range r.PerNode {
			parts[i] = fmt.Sprintf("%s %d senders, %d committed", n.URL, n.Senders, n.Committed)
		}
		rows = append(rows, [2]string{"nodes", strings.Join(parts, "; ")})
	}
	return append(rows, append(r.serverRows(), cpuPer(r.Server, r.Committed, "message")...)...)
}

func runSend(ctx context.Context, e *env, clients, msgs, size int) (report, error) {
	users, err := e.registerPhase(ctx, clients+1)
	if err != nil {
		return nil, err
	}
	sink, senders := users[0], users[1:]
	convs := make([]int64, clients)
	for i, u := range senders {
		if convs[i], err = e.api.createConversation(ctx, u, []*user{sink}, false, ""); err != nil {
			return nil, fmt.Errorf("create a conversation: %w", err)
		}
	}
	r := &sendReport{Clients: clients, Messages: msgs}
	mem := e.memBefore()
	var (
		lat       hist
		committed atomic.Int64
		perNode   = make([]atomic.Int64, len(e.nodes))
		errs      codes
		firstErr  firstError
		seq       atomic.Int64
		wg        sync.WaitGroup
	)
	start := time.Now()
	e.progress.set(func() string {
		c := committed.Load()
		return fmt.Sprintf("committed %d/%d (%.0f/s), errors %d", c, msgs, perSec(c, time.Since(start)), errs.total())
	})
	for i := range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := seq.Add(1)
				if n > int64(msgs) {
					return
				}
				at := e.since()
				tag := fmt.Sprintf("s%d-%d", i, n)
				_, err := e.apiOf(i).post(ctx, senders[i], convs[i], stamp(at, tag, size), "send-"+tag)
				if err != nil {
					if ctx.Err() == nil {
						errs.add(statusName(err))
						firstErr.set(err)
					}
					continue
				}
				lat.add(e.since() - at)
				committed.Add(1)
				perNode[e.nodeOf(i)].Add(1)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	mem.after(e)
	r.Committed, r.Errors, r.ErrorCodes, r.FirstError = committed.Load(), int64(errs.total()), errs.snapshot(), firstErr.String()
	r.Secs, r.Rate, r.Latency = seconds(took), perSec(r.Committed, took), lat.summary()
	if len(e.nodes) > 1 {
		for k, n := range e.nodes {
			r.PerNode = append(r.PerNode, nodeSends{URL: n.t.base, Senders: countOn(e, k, clients), Committed: perNode[k].Load()})
		}
	}
	r.header = e.header("send")
	r.Server = mem
	r.finish(e)
	return r, ctx.Err()
}
