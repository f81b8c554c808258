package bench

import (
	"fmt"
	"io"
	"math"
	"math/bits"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// hist is a latency histogram safe for concurrent use: microsecond values
// in log-linear buckets (64 per power of two, under 1.6% error), so that a
// soak run's millions of samples take a fixed 30 KB.
type hist struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64
}

const (
	histSub     = 64 // sub-buckets per power of two
	histBuckets = 2*histSub + 57*histSub
)

func histIndex(us int64) int {
	if us < 2*histSub {
		return int(max(us, 0))
	}
	e := bits.Len64(uint64(us)) - 7 // us>>e is in [64, 128)
	return 2*histSub + (e-1)*histSub + int(us>>e) - histSub
}

// histValue is the middle of bucket i, in microseconds.
func histValue(i int) int64 {
	if i < 2*histSub {
		return int64(i)
	}
	e := (i-2*histSub)/histSub + 1
	m := int64((i-2*histSub)%histSub + histSub)
	return m<<e + (int64(1)<<e)/2
}

func (h *hist) add(d time.Duration) {
	us := d.Microseconds()
	h.counts[histIndex(us)].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// quantile returns the q-quantile (0 < q ≤ 1), never more than the max.
func (h *hist) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(histValue(i), h.max.Load())) * time.Microsecond
		}
	}
	return time.Duration(h.max.Load()) * time.Microsecond
}

// latency is a histogram's summary as reported.
type latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// ms returns quantile q (or the maximum, for q 1) in milliseconds, to
// the microsecond, as reported.
func (h *hist) ms(q float64) float64 {
	d := time.Duration(h.max.Load()) * time.Microsecond
	if q < 1 {
		d = h.quantile(q)
	}
	return math.Round(float64(d.Microseconds())) / 1000
}

func (h *hist) summary() latency {
	return latency{Count: int64(h.n.Load()), P50: h.ms(0.50), P95: h.ms(0.95), P99: h.ms(0.99), Max: h.ms(1)}
}

func (l latency) String() string {
	if l.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s ms", fmtMS(l.P50), fmtMS(l.P95), fmtMS(l.P99), fmtMS(l.Max))
}

// nodeLatency is a histogram's summary for the rows that split a
// multi-node run's latency by node: with p90, which the single-node
// summary lacks (kept as it is, for the reports already compared).
type nodeLatency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func (h *hist) nodeSummary() nodeLatency {
	return nodeLatency{Count: int64(h.n.Load()), P50: h.ms(0.50), P90: h.ms(0.90), P99: h.ms(0.99), Max: h.ms(1)}
}

func (l nodeLatency) String() string {
	if l.Count == 0 {
		return "- (0 deliveries)"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s ms (%d deliveries)",
		fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P99), fmtMS(l.Max), l.Count)
}

// hop is what deliveries on another node took beyond those on the
// publisher's own: the difference of the two p50s and of the two p99s.
type hop struct {
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
}

func (h hop) String() string {
	return fmt.Sprintf("p50 %+.2f ms, p99 %+.2f ms (other node − same node)", h.P50, h.P99)
}

// round3 rounds milliseconds to microseconds.
func round3(ms float64) float64 { return math.Round(ms*1000) / 1000 }

func fmtMS(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// codes counts things by name (close codes, error codes), safely.
type codes struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *codes) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[name]++
}

// snapshot returns a copy, or nil when nothing was counted.
func (c *codes) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) == 0 {
		return nil
	}
	out := make(map[string]int, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

func (c *codes) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.m {
		n += v
	}
	return n
}

func fmtCodes(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(m))
	n := 0
	for k, v := range m {
		keys = append(keys, k)
		n += v
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return fmt.Sprintf("%d (%s)", n, strings.Join(parts, ", "))
}

// firstError keeps the first error text of a kind, for the report.
type firstError struct {
	once sync.Once
	text atomic.Pointer[string]
}

func (f *firstError) set(err error) {
	f.once.Do(func() { s := err.Error(); f.text.Store(&s) })
}

func (f *firstError) String() string {
	if p := f.text.Load(); p != nil {
		return *p
	}
	return ""
}

// progress prints a status line every interval while a run goes on.
type progress struct {
	w     io.Writer
	name  string
	start time.Time
	line  atomic.Pointer[func() string]
	stop  chan struct{}
	done  chan struct{}
}

func startProgress(w io.Writer, name string, every time.Duration) *progress {
	p := &progress{w: w, name: name, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	if every <= 0 {
		close(p.done)
		return p
	}
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				if f := p.line.Load(); f != nil {
					fmt.Fprintf(p.w, "bench %s %6.1fs  %s\n", p.name, time.Since(p.start).Seconds(), (*f)())
				}
			}
		}
	}()
	return p
}

// set changes what the line says: one function per phase.
func (p *progress) set(f func() string) { p.line.Store(&f) }

func (p *progress) end() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// perSec returns n per second over d.
func perSec(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return math.Round(float64(n)/d.Seconds()*10) / 10
}

// seconds rounds d to milliseconds, in seconds.
func seconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

// cpuPer is a table row of the server's CPU time per unit, with --pid.
func cpuPer(m *serverMemory, n int64, unit string) [][2]string {
	if m == nil || n == 0 {
		return nil
	}
	return [][2]string{{"server CPU per " + unit, fmt.Sprintf("%.1f µs", m.CPUSeconds/float64(n)*1e6)}}
}
