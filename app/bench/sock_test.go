package bench

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server/servertest"
)

// TestDial_RenewsAnExpiredToken: registering thousands of accounts can
// outlast the access token's lifetime; the socket must still open.
func TestDial_RenewsAnExpiredToken(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.AccessTokenTTL = time.Second }))
	ctx := context.Background()
	tg, err := resolveTarget(ctx, s.URL, false)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{target: tg, api: &api{t: tg, hc: tg.httpClient(1)}, stderr: io.Discard, start: time.Now()}
	var n atomic.Int64
	users, err := e.api.register(ctx, 1, 1, &n)
	if err != nil {
		t.Fatal(err)
	}
	old := users[0].token()
	if exp := tokenExpiry(old); exp.IsZero() || time.Until(exp) > 2*time.Second {
		t.Fatalf("tokenExpiry(%q) = %v, want within a second or two", old, exp)
	}
	time.Sleep(1100 * time.Millisecond)

	// Past its expiry, the token is renewed before the dial.
	sk, err := e.dial(ctx, 0, "/ws/chat/", users[0])
	if err != nil {
		t.Fatalf("dial with an expired token: %v", err)
	}
	go sk.run(e, nil, nil)
	sk.close()
	if users[0].token() == old {
		t.Error("the token was not renewed")
	}

	// A token the server refuses for another reason gets one renewal too.
	users[0].mu.Lock()
	stale := users[0].access
	users[0].access = stale[:len(stale)-2] + "xx" // a bad signature, unknown expiry check aside
	users[0].mu.Unlock()
	sk, err = e.dial(ctx, 0, "/ws/chat/", users[0])
	if err != nil {
		t.Fatalf("dial after a 4001: %v", err)
	}
	go sk.run(e, nil, nil)
	sk.close()
}

func TestTokenExpiry_IgnoresWhatIsNoJWT(t *testing.T) {
	for _, tok := range []string{"", "abc", "a.b.c", "a.!!!.c", "a.e30.c"} {
		if exp := tokenExpiry(tok); !exp.IsZero() {
			t.Errorf("tokenExpiry(%q) = %v, want zero", tok, exp)
		}
	}
}
