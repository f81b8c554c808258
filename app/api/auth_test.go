package api_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/confab/confab/app/auth"
	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server/servertest"
)

func TestRegister_ReturnsUserAndTokens(t *testing.T) {
	s := servertest.Start(t)
	r := s.Do(t, http.MethodPost, "/api/auth/register/", "",
		map[string]string{"username": "Alice.W-1", "password": "wonderland", "display_name": "Alice W"})
	wantStatus(t, r, http.StatusCreated)
	m := r.Map(t)
	wantKeys(t, "register", m, "user", "access", "refresh")
	u := wantUser(t, m["user"])
	if u["username"] != "Alice.W-1" || u["display_name"] != "Alice W" {
		t.Errorf("user = %v", u)
	}

	// The access token works at once; display_name defaults to the username.
	me := s.Do(t, http.MethodGet, "/api/users/me/", m["access"].(string), nil)
	wantStatus(t, me, http.StatusOK)
	if me.Map(t)["username"] != "Alice.W-1" {
		t.Errorf("me = %s", me.Body)
	}
	r = s.Do(t, http.MethodPost, "/api/auth/register/", "", map[string]string{"username": "bob", "password": "builder123"})
	wantStatus(t, r, http.StatusCreated)
	if dn := r.Map(t)["user"].(map[string]any)["display_name"]; dn != "bob" {
		t.Errorf("default display_name %v, want the username", dn)
	}
}

func TestRegister_ValidationStoresNothing(t *testing.T) {
	s := servertest.Start(t)
	taken := s.Register(t, "Carol")
	long := strings.Repeat("ü", 128)
	tests := []struct {
		name   string
		body   any
		fields []string
	}{
		{"username too short", map[string]string{"username": "ab", "password": "password1"}, []string{"username"}},
		{"username too long", map[string]string{"username": strings.Repeat("a", 33), "password": "password1"}, []string{"username"}},
		{"username with a space", map[string]string{"username": "bad name", "password": "password1"}, []string{"username"}},
		{"username with punctuation", map[string]string{"username": "bad!", "password": "password1"}, []string{"username"}},
		{"username with a non-ASCII letter", map[string]string{"username": "zoë", "password": "password1"}, []string{"username"}},
		{"username taken in another case", map[string]string{"username": strings.ToUpper(taken.Username), "password": "password1"}, []string{"username"}},
		{"password of 7", map[string]string{"username": "dave", "password": "1234567"}, []string{"password"}},
		{"password of 129", map[string]string{"username": "dave", "password": long + "x"}, []string{"password"}},
		{"display name of 65", map[string]string{"username": "dave", "password": "password1", "display_name": strings.Repeat("d", 65)}, []string{"display_name"}},
		{"both missing", map[string]string{}, []string{"username", "password"}},
		{"empty body", nil, []string{"username", "password"}},
		{"username not a string", `{"username": 5, "password": "password1"}`, []string{"username"}},
		{"password not a string", `{"username": "dave", "password": ["x"]}`, []string{"password"}},
		{"malformed JSON", `{"username": "dave", "password": `, []string{"non_field_errors"}},
		{"a JSON list", `[{"username": "dave", "password": "password1"}]`, []string{"non_field_errors"}},
		{"a JSON string", `"dave"`, []string{"non_field_errors"}},
		{"JSON null", `null`, []string{"non_field_errors"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantInvalid(t, s.Do(t, http.MethodPost, "/api/auth/register/", "", tt.body), tt.fields...)
		})
	}
	if n := count(t, s, `SELECT count(*) FROM users`); n != 1 {
		t.Errorf("%d users stored, want only the first", n)
	}
	if n := count(t, s, `SELECT count(*) FROM refresh_tokens`); n != 1 {
		t.Errorf("%d refresh tokens stored, want only the first user's", n)
	}
}

func TestRegister_LengthsCountCharacters(t *testing.T) {
	s := servertest.Start(t)
	// 128 two-byte characters is 256 bytes: allowed, and every character
	// counts (bcrypt alone would read only the first 72 bytes).
	pw := strings.Repeat("ü", 128)
	r := s.Do(t, http.MethodPost, "/api/auth/register/", "", map[string]string{"username": "umlaut", "password": pw})
	wantStatus(t, r, http.StatusCreated)
	r = s.Do(t, http.MethodPost, "/api/auth/register/", "", map[string]string{"username": "eight", "password": "12345678"})
	wantStatus(t, r, http.StatusCreated)

	login := func(pw string) servertest.Response {
		return s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": "umlaut", "password": pw})
	}
	wantStatus(t, login(pw), http.StatusOK)
	wantError(t, login(strings.Repeat("ü", 127)+"u"), http.StatusUnauthorized, "not_authenticated")
	wantError(t, login(strings.Repeat("ü", 40)), http.StatusUnauthorized, "not_authenticated")
}

func TestLogin(t *testing.T) {
	s := servertest.Start(t)
	u := s.Register(t, "erin")

	r := s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": u.Username, "password": servertest.Password})
	wantStatus(t, r, http.StatusOK)
	m := r.Map(t)
	wantKeys(t, "login", m, "access", "refresh", "user")
	if num(wantUser(t, m["user"])["id"]) != u.ID {
		t.Errorf("login user %v, want %d", m["user"], u.ID)
	}
	wantStatus(t, s.Do(t, http.MethodGet, "/api/users/me/", m["access"].(string), nil), http.StatusOK)

	// Usernames are case-insensitive at login too.
	r = s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": strings.ToUpper(u.Username), "password": servertest.Password})
	wantStatus(t, r, http.StatusOK)

	// A wrong password and an unknown user look the same.
	wrong := s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": u.Username, "password": "not the password"})
	unknown := s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": "nobody_here", "password": "not the password"})
	wantError(t, wrong, http.StatusUnauthorized, "not_authenticated")
	wantError(t, unknown, http.StatusUnauthorized, "not_authenticated")
	if string(wrong.Body) != string(unknown.Body) {
		t.Errorf("wrong password %s, unknown user %s: the bodies differ", wrong.Body, unknown.Body)
	}

	wantInvalid(t, s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": u.Username}), "password")
	wantInvalid(t, s.Do(t, http.MethodPost, "/api/auth/token/", "", `{"username": 1, "password": "x"}`), "username")
	wantInvalid(t, s.Do(t, http.MethodPost, "/api/auth/token/", "", `{`), "non_field_errors")
}

func TestLogin_RateLimitedPerAddressAndUsername(t *testing.T) {
	clk := newClock()
	s := servertest.Start(t, servertest.WithNow(clk.Now), servertest.WithConfig(func(c *config.Config) {
		c.LoginAttemptsPerMinute = 3
	}))
	u := s.Register(t, "frank")
	other := s.Register(t, "grace")
	login := func(name, pw string) servertest.Response {
		return s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": name, "password": pw})
	}

	// Successful logins do not count.
	for range 5 {
		wantStatus(t, login(u.Username, servertest.Password), http.StatusOK)
	}
	for i := range 3 {
		wantError(t, login(u.Username, "wrong password "+string(rune('a'+i))), http.StatusUnauthorized)
	}
	// The fourth attempt is refused, even with the right password, and in
	// another case of the same username.
	for _, name := range []string{u.Username, strings.ToUpper(u.Username)} {
		r := login(name, servertest.Password)
		wantError(t, r, http.StatusTooManyRequests, "rate_limited")
		if ra := r.Header.Get("Retry-After"); ra != "20" {
			t.Errorf("Retry-After %q, want 20 (one attempt back every 60/3 s)", ra)
		}
	}
	// Another username from the same address is not locked out.
	wantStatus(t, login(other.Username, servertest.Password), http.StatusOK)

	clk.Advance(19 * time.Second)
	r := login(u.Username, servertest.Password)
	wantError(t, r, http.StatusTooManyRequests, "rate_limited")
	if ra := r.Header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After %q after 19 s, want 1", ra)
	}
	clk.Advance(time.Second)
	wantStatus(t, login(u.Username, servertest.Password), http.StatusOK)
}

func TestLogin_RateLimitHoldsAgainstParallelGuesses(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.LoginAttemptsPerMinute = 3
	}))
	u := s.Register(t, "nina")
	const n = 24
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := s.Request(http.MethodPost, "/api/auth/token/", "",
				map[string]string{"username": u.Username, "password": p("guess number %d", i)})
			if err != nil {
				t.Error(err) // its status stays 0, which fails below
			}
			statuses[i] = r.Status
		}()
	}
	close(start)
	wg.Wait()
	checked := 0
	for _, st := range statuses {
		switch st {
		case http.StatusUnauthorized:
			checked++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("status %d", st)
		}
	}
	// Guesses sent all at once must not all be checked before the first
	// failure is counted.
	if checked != 3 {
		t.Errorf("%d of %d parallel guesses were checked, want 3 (LOGIN_ATTEMPTS_PER_MINUTE)", checked, n)
	}
}

func TestRegister_RateLimitedPerAddress(t *testing.T) {
	clk := newClock()
	s := servertest.Start(t, servertest.WithNow(clk.Now), servertest.WithConfig(func(c *config.Config) {
		c.RegistrationsPerMinute = 2
	}))
	reg := func(name string) servertest.Response {
		return s.Do(t, http.MethodPost, "/api/auth/register/", "", map[string]string{"username": name, "password": "password1"})
	}
	wantStatus(t, reg("user1"), http.StatusCreated)
	wantStatus(t, reg("user2"), http.StatusCreated)
	r := reg("user3")
	wantError(t, r, http.StatusTooManyRequests, "rate_limited")
	if ra := r.Header.Get("Retry-After"); ra != "30" {
		t.Errorf("Retry-After %q, want 30", ra)
	}
	if n := count(t, s, `SELECT count(*) FROM users`); n != 2 {
		t.Errorf("%d users, want 2", n)
	}
	clk.Advance(30 * time.Second)
	wantStatus(t, reg("user3"), http.StatusCreated)
	wantError(t, reg("user4"), http.StatusTooManyRequests, "rate_limited")
}

func TestRegister_RateLimitUsesForwardedAddressBehindProxy(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.RegistrationsPerMinute = 1
		c.TrustProxy = true
	}))
	reg := func(name, from string) int {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/auth/register/",
			strings.NewReader(`{"username":"`+name+`","password":"password1"}`))
		req.Header.Set("X-Forwarded-For", from)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := reg("proxied1", "203.0.113.1"); st != http.StatusCreated {
		t.Fatalf("first client: %d", st)
	}
	if st := reg("proxied2", "203.0.113.2"); st != http.StatusCreated {
		t.Errorf("a second client behind the same proxy: %d, want 201", st)
	}
	if st := reg("proxied3", "203.0.113.1"); st != http.StatusTooManyRequests {
		t.Errorf("the first client again: %d, want 429", st)
	}
}

func TestRefresh_RotatesAndDetectsReuse(t *testing.T) {
	s := servertest.Start(t)
	u := s.Register(t, "heidi")
	refresh := func(tok string) servertest.Response {
		return s.Do(t, http.MethodPost, "/api/auth/token/refresh/", "", map[string]string{"refresh": tok})
	}

	r := refresh(u.Refresh)
	wantStatus(t, r, http.StatusOK)
	m := r.Map(t)
	wantKeys(t, "refresh", m, "access", "refresh")
	r2 := m["refresh"].(string)
	if r2 == u.Refresh {
		t.Fatal("refresh returned the same refresh token")
	}
	wantStatus(t, s.Do(t, http.MethodGet, "/api/users/me/", m["access"].(string), nil), http.StatusOK)

	r = refresh(r2)
	wantStatus(t, r, http.StatusOK)
	newest := r.Map(t)["refresh"].(string)

	// A second login is another chain: reuse in the first leaves it alone.
	login := s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": u.Username, "password": servertest.Password})
	wantStatus(t, login, http.StatusOK)
	otherChain := login.Map(t)["refresh"].(string)

	// The first token is spent: reusing it is refused and revokes the
	// whole chain, the newest token included.
	wantError(t, refresh(u.Refresh), http.StatusUnauthorized, "token_not_valid")
	wantError(t, refresh(newest), http.StatusUnauthorized, "token_not_valid")
	wantError(t, refresh(r2), http.StatusUnauthorized, "token_not_valid")
	wantStatus(t, refresh(otherChain), http.StatusOK)

	wantInvalid(t, refresh(""), "refresh")
	wantInvalid(t, s.Do(t, http.MethodPost, "/api/auth/token/refresh/", "", `{}`), "refresh")
	wantInvalid(t, s.Do(t, http.MethodPost, "/api/auth/token/refresh/", "", `{"refresh": 12}`), "refresh")
	wantError(t, refresh("not.a.token"), http.StatusUnauthorized, "token_not_valid")
}

func TestRefresh_Expires(t *testing.T) {
	clk := newClock()
	s := servertest.Start(t, servertest.WithNow(clk.Now))
	u := s.Register(t, "ivan")
	clk.Advance(168*time.Hour - time.Second)
	r := s.Do(t, http.MethodPost, "/api/auth/token/refresh/", "", map[string]string{"refresh": u.Refresh})
	wantStatus(t, r, http.StatusOK)
	next := r.Map(t)["refresh"].(string)
	// The rotated token has a fresh lifetime of its own.
	clk.Advance(168 * time.Hour)
	wantError(t, s.Do(t, http.MethodPost, "/api/auth/token/refresh/", "", map[string]string{"refresh": next}),
		http.StatusUnauthorized, "token_not_valid")
}

func TestLogout_RevokesRefresh(t *testing.T) {
	s := servertest.Start(t)
	u := s.Register(t, "judy")
	r := s.Do(t, http.MethodPost, "/api/auth/logout/", "", map[string]string{"refresh": u.Refresh})
	wantStatus(t, r, http.StatusNoContent)
	if len(r.Body) != 0 {
		t.Errorf("204 with a body: %s", r.Body)
	}
	wantError(t, s.Do(t, http.MethodPost, "/api/auth/token/refresh/", "", map[string]string{"refresh": u.Refresh}),
		http.StatusUnauthorized, "token_not_valid")
	wantError(t, s.Do(t, http.MethodPost, "/api/auth/logout/", "", map[string]string{"refresh": u.Refresh}),
		http.StatusUnauthorized, "token_not_valid")
	wantError(t, s.Do(t, http.MethodPost, "/api/auth/logout/", "", map[string]string{"refresh": u.Access}),
		http.StatusUnauthorized, "token_not_valid")
	wantInvalid(t, s.Do(t, http.MethodPost, "/api/auth/logout/", "", nil), "refresh")
}

func TestWSTicket(t *testing.T) {
	s := servertest.Start(t)
	u := s.Register(t, "ken")
	r := s.Do(t, http.MethodPost, "/api/auth/ws-ticket/", u.Access, nil)
	wantStatus(t, r, http.StatusOK)
	m := r.Map(t)
	wantKeys(t, "ticket", m, "ticket", "expires_in")
	if m["expires_in"] != float64(30) {
		t.Errorf("expires_in %v, want 30", m["expires_in"])
	}
	ticket, _ := m["ticket"].(string)
	if ticket == "" {
		t.Fatal("empty ticket")
	}
	// A ticket is not a token.
	wantError(t, s.Do(t, http.MethodGet, "/api/users/me/", ticket, nil), http.StatusUnauthorized, "token_not_valid")
	wantError(t, s.Do(t, http.MethodPost, "/api/auth/ws-ticket/", "", nil), http.StatusUnauthorized, "not_authenticated")
}

// secret reads the generated signing key from the database, so that the
// forgery tests can sign tokens exactly as the server would.
func secret(t *testing.T, s *servertest.Server) []byte {
	t.Helper()
	var key []byte
	if err := s.DB(t).QueryRow(`SELECT value FROM settings WHERE key = 'jwt_secret'`).Scan(&key); err != nil {
		t.Fatalf("read jwt secret: %v", err)
	}
	return key
}

func sign(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAccessToken_Forgeries(t *testing.T) {
	clk := newClock()
	s := servertest.Start(t, servertest.WithNow(clk.Now))
	u := s.Register(t, "mallory")
	gone := s.Register(t, "gone")
	key := secret(t, s)
	now := clk.Now()
	claims := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"token_type": "access", "user_id": u.ID, "jti": "abc123",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if change != nil {
			change(c)
		}
		return c
	}
	// The forger's own well-formed token proves the harness signs like the
	// server; every variant below differs in one way only.
	genuine := sign(t, jwt.SigningMethodHS256, key, claims(nil))
	wantStatus(t, s.Do(t, http.MethodGet, "/api/users/me/", genuine, nil), http.StatusOK)

	tampered := func() string {
		parts := strings.Split(u.Access, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var c map[string]any
		json.Unmarshal(payload, &c)
		c["user_id"] = gone.ID
		b, _ := json.Marshal(c)
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
	}()

	tests := []struct {
		name  string
		token string
	}{
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil))},
		{"another key", sign(t, jwt.SigningMethodHS256, []byte("an entirely different key of 32+ bytes"), claims(nil))},
		{"HS512 with the right key", sign(t, jwt.SigningMethodHS512, key, claims(nil))},
		{"payload changed after signing", tampered},
		{"no exp", sign(t, jwt.SigningMethodHS256, key, claims(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{"expired", sign(t, jwt.SigningMethodHS256, key, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Second).Unix() }))},
		{"issued in the future", sign(t, jwt.SigningMethodHS256, key, claims(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() }))},
		{"refresh type", sign(t, jwt.SigningMethodHS256, key, claims(func(c jwt.MapClaims) { c["token_type"] = "refresh" }))},
		{"no token type", sign(t, jwt.SigningMethodHS256, key, claims(func(c jwt.MapClaims) { delete(c, "token_type") }))},
		{"user_id a string", sign(t, jwt.SigningMethodHS256, key, claims(func(c jwt.MapClaims) { c["user_id"] = "1" }))},
		{"unknown user", sign(t, jwt.SigningMethodHS256, key, claims(func(c jwt.MapClaims) { c["user_id"] = 999999 }))},
		{"a real refresh token", u.Refresh},
		{"garbage", "not-a-jwt"},
		{"empty segments", ".."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.Do(t, http.MethodGet, "/api/users/me/", tt.token, nil)
			wantError(t, r, http.StatusUnauthorized, "token_not_valid")
			if r.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}

	// Clock skew between nodes: a token issued a little ahead of this
	// node's clock passes; one from far ahead is refused (above).
	t.Run("issued within the clock leeway", func(t *testing.T) {
		for _, ahead := range []time.Duration{time.Second, auth.ClockLeeway} {
			tok := sign(t, jwt.SigningMethodHS256, key, claims(func(c jwt.MapClaims) {
				c["iat"], c["jti"] = now.Add(ahead).Unix(), "skew"+ahead.String()
			}))
			wantStatus(t, s.Do(t, http.MethodGet, "/api/users/me/", tok, nil), http.StatusOK)
		}
		past := sign(t, jwt.SigningMethodHS256, key, claims(func(c jwt.MapClaims) { c["iat"] = now.Add(auth.ClockLeeway + 2*time.Second).Unix() }))
		wantError(t, s.Do(t, http.MethodGet, "/api/users/me/", past, nil), http.StatusUnauthorized, "token_not_valid")
	})

	t.Run("no Authorization header", func(t *testing.T) {
		wantError(t, s.Do(t, http.MethodGet, "/api/users/me/", "", nil), http.StatusUnauthorized, "not_authenticated")
	})
	t.Run("another scheme", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/api/users/me/", nil)
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username+":"+servertest.Password)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Basic auth: %d, want 401", resp.StatusCode)
		}
	})

	t.Run("expired by the clock", func(t *testing.T) {
		fresh := s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": u.Username, "password": servertest.Password}).Map(t)
		access, refresh := fresh["access"].(string), fresh["refresh"].(string)
		clk.Advance(15*time.Minute - time.Second)
		wantStatus(t, s.Do(t, http.MethodGet, "/api/users/me/", access, nil), http.StatusOK)
		clk.Advance(2 * time.Second)
		wantError(t, s.Do(t, http.MethodGet, "/api/users/me/", access, nil), http.StatusUnauthorized, "token_not_valid")
		// The refresh token outlives it and gets a working access token.
		r := s.Do(t, http.MethodPost, "/api/auth/token/refresh/", "", map[string]string{"refresh": refresh})
		wantStatus(t, r, http.StatusOK)
		wantStatus(t, s.Do(t, http.MethodGet, "/api/users/me/", r.Map(t)["access"].(string), nil), http.StatusOK)
	})

	t.Run("access token used as refresh", func(t *testing.T) {
		fresh := s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": u.Username, "password": servertest.Password}).Map(t)
		wantError(t, s.Do(t, http.MethodPost, "/api/auth/token/refresh/", "", map[string]string{"refresh": fresh["access"].(string)}),
			http.StatusUnauthorized, "token_not_valid")
		// A forged refresh token (right key, never issued) is refused too.
		forged := sign(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"token_type": "refresh", "user_id": u.ID, "jti": "x",
			"iat": clk.Now().Unix(), "exp": clk.Now().Add(time.Hour).Unix()})
		wantError(t, s.Do(t, http.MethodPost, "/api/auth/token/refresh/", "", map[string]string{"refresh": forged}),
			http.StatusUnauthorized, "token_not_valid")
	})

	t.Run("deleted user", func(t *testing.T) {
		fresh := s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": gone.Username, "password": servertest.Password}).Map(t)
		wantStatus(t, s.Do(t, http.MethodGet, "/api/users/me/", fresh["access"].(string), nil), http.StatusOK)
		if err := s.Chat.DeleteUser(t.Context(), gone.ID); err != nil {
			t.Fatal(err)
		}
		wantError(t, s.Do(t, http.MethodGet, "/api/users/me/", fresh["access"].(string), nil), http.StatusUnauthorized, "token_not_valid")
		wantError(t, s.Do(t, http.MethodPost, "/api/auth/token/refresh/", "", map[string]string{"refresh": fresh["refresh"].(string)}),
			http.StatusUnauthorized, "token_not_valid")
	})
}
