package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server/servertest"
)

// frontEndJS calls the API at base from the page's origin the way a web
// front end does: a send first (so that a refusal shows it stored
// nothing), then reads, with a Bearer token and a JSON body, reading the
// answers' statuses, bodies and exposed headers. It resolves to a JSON summary, or
// to {"error": …} when fetch rejects (as it does when CORS refuses).
const frontEndJS = `(async (base, token, conv) => {
  try {
    const sent = await fetch(base + '/api/conversations/' + conv + '/messages/', {
      method: 'POST',
      headers: {Authorization: 'Bearer ' + token, 'Content-Type': 'application/json'},
      body: JSON.stringify({content: 'from another origin', client_id: 'cors-1'}),
    });
    const me = await fetch(base + '/api/users/me/', {headers: {Authorization: 'Bearer ' + token}});
    const refused = await fetch(base + '/api/users/me/', {headers: {Authorization: 'Bearer not-a-token'}});
    return JSON.stringify({
      me: me.status, username: (await me.json()).username, requestID: me.headers.get('X-Request-ID'),
      sent: sent.status, content: (await sent.json()).content,
      refused: refused.status, code: (await refused.json()).code,
    });
  } catch (e) {
    return JSON.stringify({error: String(e)});
  }
})(%s, %s, %d)`

// frontEndResult is what frontEndJS resolves to.
type frontEndResult struct {
	Error     string `json:"error"`
	Me        int    `json:"me"`
	Username  string `json:"username"`
	RequestID string `json:"requestID"`
	Sent      int    `json:"sent"`
	Content   string `json:"content"`
	Refused   int    `json:"refused"`
	Code      string `json:"code"`
}

// callAPI runs frontEndJS in p against s as u.
func (p *page) callAPI(s *servertest.Server, u servertest.User, conv int64) frontEndResult {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
	defer cancel()
	expr := fmt.Sprintf(frontEndJS, jsString(s.URL), jsString(u.Access), conv)
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.fail("call the API", err)
	}
	var r frontEndResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		p.t.Fatalf("%s: %v: %s", p.name, err, out)
	}
	return r
}

// TestCORS_FrontEndOnAnotherOrigin serves a page from a second origin (the
// same loopback address on another port) and has it call three servers
// with fetch and a Bearer token, as a web front end on app.example.com
// calls api.example.com: the server whose ALLOWED_ORIGINS lists the page's
// origin answers, errors included, with the headers the script needs;
// the one with no list and the one listing only another origin make
// Chromium reject the fetch.
func TestCORS_FrontEndOnAnotherOrigin(t *testing.T) {
	chromiumPath(t)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!doctype html><title>front end</title><p>A front end on another origin.</p>")
	}))
	t.Cleanup(front.Close)

	servers := []struct {
		name    string
		origins []string
		works   bool
	}{
		{"listed", []string{front.URL}, true},
		{"star", []string{"*"}, true},
		{"no list", nil, false},
		{"another origin listed", []string{"https://app.example.com"}, false},
	}

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	browser := startBrowser(t, ctx)
	watch := &consoleWatch{}
	shots := newShots(t)
	for _, tc := range servers {
		s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.AllowedOrigins = tc.origins }))
		if strings.HasPrefix(s.URL, front.URL) {
			t.Fatalf("the page and the API share an origin: %s", s.URL)
		}
		alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
		conv := s.Conversation(t, alice, bob)

		p := newPage(t, browser, tc.name, watch, shots)
		p.do("open the front end", chromedp.Navigate(front.URL+"/"))
		got := p.callAPI(s, alice, conv)
		t.Logf("%s: %+v", tc.name, got)
		if !tc.works {
			if !strings.Contains(got.Error, "Failed to fetch") {
				t.Errorf("%s: fetch from %s did not reject: %+v", tc.name, front.URL, got)
			}
			if n := countRows(t, s, "messages"); n != 0 {
				t.Errorf("%s: %d messages stored: the preflight must stop the POST", tc.name, n)
			}
			continue
		}
		want := frontEndResult{Me: http.StatusOK, Username: alice.Username, RequestID: got.RequestID,
			Sent: http.StatusCreated, Content: "from another origin", Refused: http.StatusUnauthorized, Code: "token_not_valid"}
		if got != want || got.RequestID == "" {
			t.Errorf("%s: %+v, want %+v with an X-Request-ID", tc.name, got, want)
		}
	}

	// Chromium says why it refused, and only for the servers that refuse.
	watch.mu.Lock()
	defer watch.mu.Unlock()
	blocked := map[string]bool{}
	for _, e := range watch.errors {
		if strings.Contains(e.text, "CORS policy") {
			blocked[e.page] = true
		}
	}
	for _, tc := range servers {
		if blocked[tc.name] == tc.works {
			t.Errorf("%s: a CORS error in the console is %v, want %v", tc.name, blocked[tc.name], !tc.works)
		}
	}
}

// countRows counts the rows of a table of s's database.
func countRows(t *testing.T, s *servertest.Server, table string) int {
	t.Helper()
	var n int
	if err := s.DB(t).QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
