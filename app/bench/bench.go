// Package bench is confab bench, a load generator for any Confab server
// (like nats bench or redis-benchmark): it makes its own accounts through
// the public API (reads uses those confab bench seed wrote) and drives the
// server over REST and WebSockets only.
//
// Scenarios: idle (many authenticated sockets: connect rate, the server's
// memory per connection), fanout (one conversation, many subscribers:
// deliveries per second, publish→deliver latency, lost/duplicated/out of
// order), send (concurrent REST senders: commits per second), chat (a
// realistic mix for soak runs, checked for exactly-once delivery) and
// reads (conversation and history pages of a database written by confab
// bench seed, or the start time on it). seed itself writes a file, not
// traffic: it is a Tool the command line passes in.
//
// It is a client and nothing else: it imports none of the server's
// packages. It sends traffic only to the address given with --url, a
// loopback one unless --allow-remote is passed (and reads --start-db only
// to the loopback port of the server it started), follows no redirect and
// uses no proxy; every loop is bounded in count and in time.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Exit statuses, as the rest of confab uses them.
const (
	exitOK    = 0
	exitFail  = 1 // the run failed, or lost, duplicated or reordered a message
	exitUsage = 2
)

// usageError is a wrong use of the command: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// scenario is one subcommand of confab bench.
type scenario struct {
	name, args, summary, help string
	// flags adds the scenario's flags and returns the function that runs
	// it once they are parsed.
	flags func(fs *flag.FlagSet) func(ctx context.Context, e *env) (report, error)
	// timeout is the default of --timeout, given the parsed flags.
	timeout func() time.Duration
	// multi says the scenario can spread its load over several --url.
	multi bool
}

func scenarios() []*scenario {
	return []*scenario{idleScenario(), fanoutScenario(), sendScenario(), chatScenario(), readsScenario()}
}

// report is a scenario's result.
type report interface {
	// rows are the table printed at the end.
	rows() [][2]string
	// failed says whether the run found what must never happen: lost,
	// duplicated or reordered messages, failed requests or sockets.
	failed() bool
}

// options are the flags every scenario takes.
type options struct {
	url         string
	allowRemote bool
	json        bool
	timeout     time.Duration
	progress    time.Duration
	pid         int
	concurrency int
}

// env is what a running scenario uses.
type env struct {
	opt options
	// target and api are the first server of --url: accounts are
	// registered and conversations made there (the nodes of a cluster
	// share one database).
	target *target
	api    *api
	// nodes are every server of --url, in order; sockets and senders are
	// spread over them round robin. One, unless --url lists several.
	nodes    []*node
	stderr   io.Writer
	progress *progress
	start    time.Time
	// protocolErrors counts frames the bench could not read and failed
	// token renewals.
	protocolErrors atomic.Int64
	// renewals counts sockets that renewed their token when told
	// token_expiring.
	renewals atomic.Int64
}

// node is one server of a run: its pinned address and a REST client of it.
type node struct {
	t   *target
	api *api
}

// nodeOf returns the node that socket, publisher or sender i uses: i
// modulo the number of nodes. With one node (or an env built with only
// target and api) it is 0.
func (e *env) nodeOf(i int) int {
	if len(e.nodes) < 2 {
		return 0
	}
	return i % len(e.nodes)
}

// apiOf returns the REST client of sender i's node.
func (e *env) apiOf(i int) *api {
	if len(e.nodes) < 2 {
		return e.api
	}
	return e.nodes[e.nodeOf(i)].api
}

// targetOf returns the server of socket i and the socket's place among
// that server's sockets (which picks its source address).
func (e *env) targetOf(i int) (*target, int) {
	if len(e.nodes) < 2 {
		return e.target, i
	}
	return e.nodes[e.nodeOf(i)].t, i / len(e.nodes)
}

// countOn returns how many of n sockets or senders, spread round robin,
// go to node k.
func countOn(e *env, k, n int) int {
	return n/len(e.nodes) + btoi(k < n%len(e.nodes))
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// since is the time since the run started; content carries it, so that a
// receiver measures latency on the same monotonic clock as the sender.
func (e *env) since() time.Duration { return time.Since(e.start) }

// Tool is a subcommand of confab bench that drives no server over its
// API, such as seed, which writes a database file for one to start on.
// The command line passes the tools in, so that this package, a client of
// any server, imports none of the server's packages.
type Tool struct {
	Name, Summary string
	// Run runs the tool with its flags and returns the exit status.
	Run func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// Run runs confab bench with args (the scenario or tool, and its flags)
// and returns the exit status.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, tools ...Tool) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage(tools))
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage(tools))
		return exitOK
	}
	for _, t := range tools {
		if t.Name == args[0] {
			return t.Run(ctx, args[1:], stdout, stderr)
		}
	}
	var sc *scenario
	for _, s := range scenarios() {
		if s.name == args[0] {
			sc = s
		}
	}
	if sc == nil {
		fmt.Fprintf(stderr, "confab bench: unknown scenario %q\n\n%s", args[0], usage(tools))
		return exitUsage
	}

	fs := flag.NewFlagSet("confab bench "+sc.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	var o options
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8000", "the server to load (loopback only, unless --allow-remote); "+
		"fanout, send and chat take several, comma-separated (the nodes of one cluster), and spread the load over them")
	fs.BoolVar(&o.allowRemote, "allow-remote", false, "allow a --url that is not a loopback address")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON instead of a table")
	fs.DurationVar(&o.timeout, "timeout", 0, "stop the whole run after this long (default: a bound that fits the scenario)")
	fs.DurationVar(&o.progress, "progress", time.Second, "print a progress line to stderr this often (0: never)")
	fs.IntVar(&o.pid, "pid", 0, "the server's process id, when it runs on this machine: its memory is read from /proc/PID/status")
	fs.IntVar(&o.concurrency, "concurrency", 64, "socket dials in flight at once (registrations: at most 8)")
	run := sc.flags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(stdout, sc, fs)
			return exitOK
		}
		fmt.Fprintf(stderr, "Run 'confab bench %s --help' for usage.\n", sc.name)
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usageFail(stderr, sc, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if o.concurrency < 1 {
		return usageFail(stderr, sc, "--concurrency must be at least 1")
	}
	if o.timeout <= 0 {
		o.timeout = sc.timeout()
	}
	if o.pid != 0 {
		if _, err := readProc(o.pid); err != nil {
			return usageFail(stderr, sc, fmt.Sprintf("--pid %d: %v", o.pid, err))
		}
	}
	ts, err := resolveTargets(ctx, o.url, o.allowRemote)
	if err != nil {
		return usageFail(stderr, sc, err.Error())
	}
	if len(ts) > 1 && !sc.multi {
		return usageFail(stderr, sc, fmt.Sprintf("--url lists %d servers, and %s drives one: give one URL", len(ts), sc.name))
	}

	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	e := &env{opt: o, stderr: stderr, start: time.Now()}
	for _, t := range ts {
		n := &node{t: t, api: &api{t: t, hc: t.httpClient(o.concurrency)}}
		defer n.api.hc.CloseIdleConnections()
		e.nodes = append(e.nodes, n)
	}
	e.target, e.api = ts[0], e.nodes[0].api
	e.progress = startProgress(stderr, sc.name, o.progress)
	rep, err := run(ctx, e)
	e.progress.end()
	if err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			return usageFail(stderr, sc, err.Error())
		}
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (the run's --timeout is %s)", err, o.timeout)
		}
		fmt.Fprintf(stderr, "confab bench %s: %v\n", sc.name, err)
		return exitFail
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		what := "against " + o.url
		if t, ok := rep.(interface{ title() string }); ok { // it loaded no --url
			what = t.title()
		}
		printTable(stdout, sc.name, what, time.Since(e.start), rep.rows())
	}
	if rep.failed() {
		fmt.Fprintf(stderr, "confab bench %s: FAILED: see the report\n", sc.name)
		return exitFail
	}
	return exitOK
}

func usageFail(w io.Writer, sc *scenario, msg string) int {
	fmt.Fprintf(w, "confab bench %s: %s\nRun 'confab bench %s --help' for usage.\n", sc.name, msg, sc.name)
	return exitUsage
}

func usage(tools []Tool) string {
	var b strings.Builder
	b.WriteString("Usage: confab bench SCENARIO [flags]\n\n" +
		"Drives a Confab server over its public API, with accounts it registers itself.\n\nScenarios:\n")
	for _, s := range scenarios() {
		fmt.Fprintf(&b, "  %-8s %s\n", s.name, s.summary)
	}
	for _, t := range tools {
		fmt.Fprintf(&b, "  %-8s %s\n", t.Name, t.Summary)
	}
	b.WriteString("\nRun 'confab bench SCENARIO --help' for a scenario's flags. The target is --url\n" +
		"(default http://127.0.0.1:8000); it must be a loopback address unless --allow-remote\n" +
		"is given. fanout, send and chat also take a comma-separated list, the nodes of one\n" +
		"cluster, and spread sockets and senders over them round robin. Start the server with\n" +
		"REGISTRATIONS_PER_MINUTE raised (e.g. 100000): every run registers its own accounts;\n" +
		"and REQUESTS_PER_SECOND=0: the bench's REST calls all come from one address.\n")
	return b.String()
}

func printHelp(w io.Writer, sc *scenario, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: confab bench %s %s\n\n%s\n\nFlags:\n", sc.name, sc.args, sc.help)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func printTable(w io.Writer, name, what string, took time.Duration, rows [][2]string) {
	fmt.Fprintf(w, "confab bench %s %s (%.1f s)\n\n", name, what, took.Seconds())
	width := 0
	for _, r := range rows {
		width = max(width, len(r[0]))
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %-*s  %s\n", width, r[0], r[1])
	}
}

// header is what every report starts with.
type header struct {
	Scenario string  `json:"scenario"`
	Target   string  `json:"target"`
	Seconds  float64 `json:"seconds"`
	// Server is the server's memory, with --pid.
	Server *serverMemory `json:"server,omitempty"`
	// ProtocolErrors counts frames the bench could not read, error frames
	// it did not expect and failed token renewals.
	ProtocolErrors int64 `json:"protocol_errors"`
	// Renewals counts sockets that renewed their access token in flight.
	Renewals int64 `json:"token_renewals"`
	// Targets lists every server when --url gave more than one.
	Targets []string `json:"targets,omitempty"`
}

func (e *env) header(name string) header {
	h := header{Scenario: name, Target: e.target.base, ProtocolErrors: e.protocolErrors.Load()}
	if len(e.nodes) > 1 {
		for _, n := range e.nodes {
			h.Targets = append(h.Targets, n.t.base)
		}
	}
	return h
}

func (h *header) finish(e *env) {
	h.Seconds = seconds(time.Since(e.start))
	h.ProtocolErrors = e.protocolErrors.Load()
	h.Renewals = e.renewals.Load()
}

func (h header) serverRows() [][2]string {
	var rows [][2]string
	if s := h.Server; s != nil {
		rows = append(rows,
			[2]string{"server RSS before → after", fmt.Sprintf("%s → %s (peak %s)", mib(s.RSSBefore), mib(s.RSSAfter), mib(s.RSSPeak))},
			[2]string{"server CPU", fmt.Sprintf("%.2f s", s.CPUSeconds)})
	}
	if h.Renewals > 0 {
		rows = append(rows, [2]string{"token renewals", fmt.Sprint(h.Renewals)})
	}
	return append(rows, [2]string{"protocol errors", fmt.Sprint(h.ProtocolErrors)})
}

// serverMemory is the server process's memory and CPU time from /proc,
// over the measured part of a run (after the registrations).
type serverMemory struct {
	PID       int    `json:"pid"`
	Name      string `json:"name"`
	RSSBefore int64  `json:"rss_before_bytes"`
	RSSAfter  int64  `json:"rss_after_bytes"`
	RSSPeak   int64  `json:"rss_peak_bytes"`
	// CPUSeconds is the server's user and system time: on a machine
	// shared with other work it says more than a rate does.
	CPUSeconds float64 `json:"cpu_seconds"`
	cpuBefore  float64
}

// procStatus is what /proc/PID/status says of memory, and
// /proc/PID/stat of CPU time.
type procStatus struct {
	Name     string
	RSS, HWM int64   // bytes
	CPU      float64 // seconds of user and system time
}

// clockTicks is USER_HZ, 100 on every Linux port Go supports.
const clockTicks = 100

func readCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which may hold spaces: state is
	// field 3, utime 14 and stime 15.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	var ut, st float64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return (ut + st) / clockTicks
}

func readProc(pid int) (procStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStatus{}, fmt.Errorf("cannot read the server's memory (it must run on this machine, under Linux): %w", err)
	}
	var st procStatus
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		var kb int64
		switch k {
		case "Name":
			st.Name = v
		case "VmRSS":
			fmt.Sscanf(v, "%d kB", &kb)
			st.RSS = kb << 10
		case "VmHWM":
			fmt.Sscanf(v, "%d kB", &kb)
			st.HWM = kb << 10
		}
	}
	st.CPU = readCPU(pid)
	return st, nil
}

// memBefore starts a serverMemory with --pid, or returns nil.
func (e *env) memBefore() *serverMemory {
	if e.opt.pid == 0 {
		return nil
	}
	st, err := readProc(e.opt.pid)
	if err != nil {
		return nil
	}
	return &serverMemory{PID: e.opt.pid, Name: st.Name, RSSBefore: st.RSS, cpuBefore: st.CPU}
}

func (m *serverMemory) after(e *env) {
	if m == nil {
		return
	}
	if st, err := readProc(m.PID); err == nil {
		m.RSSAfter, m.RSSPeak = st.RSS, st.HWM
		m.CPUSeconds = math.Round((st.CPU-m.cpuBefore)*100) / 100
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// registerConcurrency bounds the registrations in flight.
const registerConcurrency = 8

// registerPhase registers n accounts with a progress line.
func (e *env) registerPhase(ctx context.Context, n int) ([]*user, error) {
	var done atomic.Int64
	start := time.Now()
	e.progress.set(func() string {
		return fmt.Sprintf("registering %d/%d accounts (%.0f/s)", done.Load(), n, perSec(done.Load(), time.Since(start)))
	})
	// The server hashes each password slowly, on its CPUs: more requests
	// in flight than it has cores only make each one wait longer.
	return e.api.register(ctx, n, min(e.opt.concurrency, registerConcurrency), &done)
}

// checkFiles makes sure n sockets fit the process's file limit.
func checkFiles(n int) error {
	limit, err := raiseFileLimit(uint64(n) + 256)
	if err != nil || limit == 0 {
		return nil // unknown: the dials will say
	}
	if limit < uint64(n)+256 {
		return &usageError{fmt.Sprintf("%d sockets need about %d open files, and this process may open %d: "+
			"raise the limit (ulimit -n), for the server too", n, n+256, limit)}
	}
	return nil
}
