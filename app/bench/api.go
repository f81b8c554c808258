package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// apiError is a non-2xx answer of the REST API.
type apiError struct {
	Method, Path string
	Status       int
	Code, Detail string
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("%s %s: %d", e.Method, e.Path, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// statusOf returns the HTTP status of err, or 0 when it is no answer.
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// statusName names err's HTTP status for a count, or says there was none.
func statusName(err error) string {
	if st := statusOf(err); st != 0 {
		return strconv.Itoa(st)
	}
	return "no answer"
}

// api calls the REST API of the target.
type api struct {
	t  *target
	hc *http.Client
}

// do sends body (JSON, when not nil) and decodes a 2xx answer into out
// (when not nil). It returns the status.
func (a *api) do(ctx context.Context, method, path, token string, body, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.t.base+path, r)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &apiError{Method: method, Path: path, Status: resp.StatusCode}
		var eb struct{ Detail, Code string }
		if json.Unmarshal(data, &eb) == nil {
			e.Code, e.Detail = eb.Code, eb.Detail
		}
		return resp.StatusCode, e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: answer is not the contract's JSON: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// user is an account the bench made, with its tokens.
type user struct {
	ID       int64
	Username string

	mu      sync.Mutex
	access  string
	refresh string
}

func (u *user) token() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.access
}

// renew replaces the access token old with a fresh one. Every socket of
// the user may ask at once; one refresh serves them all, because the
// server revokes a whole login chain when a spent refresh token is reused.
func (a *api) renew(ctx context.Context, u *user, old string) (string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.access != old {
		return u.access, nil
	}
	var out struct{ Access, Refresh string }
	if _, err := a.do(ctx, http.MethodPost, "/api/auth/token/refresh/", "", map[string]string{"refresh": u.refresh}, &out); err != nil {
		return "", err
	}
	u.access, u.refresh = out.Access, out.Refresh
	return u.access, nil
}

// errRegistrations is the server refusing more accounts (429).
type errRegistrations struct{ made, want int }

func (e *errRegistrations) Error() string {
	return fmt.Sprintf("the server refused more registrations (429) after %d of the %d accounts this run needs: "+
		"start it with REGISTRATIONS_PER_MINUTE=%d (it limits new accounts per client address per minute; the default is 30) "+
		"and REQUESTS_PER_SECOND=0 (every request from one address counts against 50 a second by default)",
		e.made, e.want, max(100000, e.want))
}

// register creates n accounts named prefix_0 … prefix_{n-1}, conc at a
// time. done counts them as they are made, for the progress line.
func (a *api) register(ctx context.Context, n, conc int, done *atomic.Int64) ([]*user, error) {
	prefix, password := runID("b"), runID("pw")+"-bench"
	users := make([]*user, n)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range min(conc, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				name := prefix + "_" + strconv.Itoa(i)
				u, err := a.registerOne(ctx, name, password)
				if statusOf(err) == http.StatusTooManyRequests {
					cancel(&errRegistrations{int(done.Load()), n})
					return
				}
				if err != nil {
					cancel(fmt.Errorf("register %s: %w", name, err))
					return
				}
				users[i] = u
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return users, nil
}

// registerOne creates one account. A timeout or a 5xx is tried again, a
// few times: on a busy server a registration (a slow password hash) can
// outwait the client; when the first attempt did commit, the next one
// finds the name taken and logs in instead.
func (a *api) registerOne(ctx context.Context, name, password string) (*user, error) {
	creds := map[string]string{"username": name, "password": password}
	var out struct {
		User    struct{ ID int64 }
		Access  string
		Refresh string
	}
	var err error
	for attempt := 1; attempt <= 4; attempt++ {
		_, err = a.do(ctx, http.MethodPost, "/api/auth/register/", "", creds, &out)
		st := statusOf(err)
		if attempt > 1 && st == http.StatusBadRequest {
			_, err = a.do(ctx, http.MethodPost, "/api/auth/token/", "", creds, &out)
		}
		if err == nil || ctx.Err() != nil || (st != 0 && st < 500) {
			break
		}
		select {
		case <-time.After(time.Duration(attempt) * time.Second):
		case <-ctx.Done():
		}
	}
	if err != nil {
		return nil, err
	}
	return &user{ID: out.User.ID, Username: name, access: out.Access, refresh: out.Refresh}, nil
}

// runID returns prefix followed by random hex: names that no other run
// has taken (usernames are at most 32 characters).
func runID(prefix string) string {
	b := make([]byte, 5)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// createConversation makes a conversation of owner with others and
// returns its id (an existing direct conversation is returned as is).
func (a *api) createConversation(ctx context.Context, owner *user, others []*user, group bool, title string) (int64, error) {
	ids := make([]int64, len(others))
	for i, o := range others {
		ids[i] = o.ID
	}
	body := map[string]any{"participant_ids": ids, "is_group": group}
	if group {
		body["title"] = title
	}
	var out struct{ ID int64 }
	if _, err := a.do(ctx, http.MethodPost, "/api/conversations/", owner.token(), body, &out); err != nil {
		return 0, err
	}
	return out.ID, nil
}

// wireMessage is the part of the contract's message object the bench reads.
type wireMessage struct {
	ID             int64  `json:"id"`
	ConversationID int64  `json:"conversation_id"`
	Content        string `json:"content"`
	Sender         struct {
		ID int64 `json:"id"`
	} `json:"sender"`
}

// post sends a message over REST and returns it as committed.
func (a *api) post(ctx context.Context, u *user, convID int64, content, clientID string) (wireMessage, error) {
	var m wireMessage
	_, err := a.do(ctx, http.MethodPost, "/api/conversations/"+strconv.FormatInt(convID, 10)+"/messages/",
		u.token(), map[string]string{"content": content, "client_id": clientID}, &m)
	return m, err
}

// metrics reads the gauges the idle scenario compares from /metrics; it
// returns nil when the endpoint is closed (METRICS_TOKEN) or missing.
func (a *api) metrics(ctx context.Context) map[string]float64 {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.t.base+"/metrics", nil)
	if err != nil {
		return nil
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil
	}
	want := map[string]bool{"go_goroutines": true, "go_memstats_heap_inuse_bytes": true, "process_resident_memory_bytes": true}
	got := map[string]float64{}
	for line := range bytes.Lines(data) {
		f := bytes.Fields(line)
		if len(f) == 2 && want[string(f[0])] {
			if v, err := strconv.ParseFloat(string(f[1]), 64); err == nil {
				got[string(f[0])] = v
			}
		}
	}
	if len(got) == 0 {
		return nil
	}
	return got
}
