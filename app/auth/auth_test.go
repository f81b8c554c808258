package auth_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/confab/confab/app/auth"
	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/server/servertest"
	"github.com/confab/confab/db"
)

// newClock is a clock that stands still until a test moves it.
func newClock() *servertest.Clock { return servertest.NewClock() }

var key = []byte("0123456789abcdef0123456789abcdef")

func mustOpenDB(tb testing.TB) *db.Store {
	tb.Helper()
	s, err := db.Open(context.Background(), filepath.Join(tb.TempDir(), "auth.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func newService(t *testing.T, clk *servertest.Clock) (*auth.Service, *db.Store) {
	t.Helper()
	store := mustOpenDB(t)
	tokens := auth.NewTokens(key, 15*time.Minute, 168*time.Hour, clk.Now)
	return auth.NewService(store, auth.NewHasher(4, auth.HashLimit{}), tokens, auth.Options{Now: clk.Now}), store
}

func wantCode(t *testing.T, err error, code chat.Code) {
	t.Helper()
	if got := chat.ErrorCode(err); got != code {
		t.Errorf("error %v (code %q), want code %q", err, got, code)
	}
}

func TestTokens_IssueAndParse(t *testing.T) {
	clk := newClock()
	tk := auth.NewTokens(key, 15*time.Minute, 168*time.Hour, clk.Now)
	access, c, err := tk.Issue(42, auth.Access, auth.Session{})
	if err != nil {
		t.Fatal(err)
	}
	if c.UserID != 42 || c.TokenType != "access" || c.ID == "" || !c.Expiry().Equal(clk.Now().Add(15*time.Minute)) {
		t.Errorf("claims %+v", c)
	}
	// SimpleJWT's claim names, on the wire.
	parsed, _, err := jwt.NewParser().ParseUnverified(access, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	m := parsed.Claims.(jwt.MapClaims)
	for _, k := range []string{"token_type", "user_id", "jti", "iat", "exp"} {
		if _, ok := m[k]; !ok {
			t.Errorf("claim %s missing: %v", k, m)
		}
	}
	if parsed.Method.Alg() != "HS256" {
		t.Errorf("alg %s", parsed.Method.Alg())
	}
	got, err := tk.Parse(access, auth.Access)
	if err != nil || got.UserID != 42 {
		t.Fatalf("parse: %+v %v", got, err)
	}
	refresh, rc, _ := tk.Issue(42, auth.Refresh, auth.Session{})
	if !rc.Expiry().Equal(clk.Now().Add(168 * time.Hour)) {
		t.Errorf("refresh expiry %v", rc.Expiry())
	}
	_, again, _ := tk.Issue(42, auth.Access, auth.Session{})
	if again.ID == c.ID {
		t.Error("two tokens share a jti")
	}

	_, err = tk.Parse(access, auth.Refresh)
	wantCode(t, err, chat.CodeTokenNotValid)
	_, err = tk.Parse(refresh, auth.Access)
	wantCode(t, err, chat.CodeTokenNotValid)
	_, err = auth.NewTokens([]byte("another key, also thirty-two bytes!"), time.Minute, time.Hour, clk.Now).Parse(access, auth.Access)
	wantCode(t, err, chat.CodeTokenNotValid)

	clk.Advance(15 * time.Minute)
	_, err = tk.Parse(access, auth.Access)
	wantCode(t, err, chat.CodeTokenNotValid)
	if _, err := tk.Parse(refresh, auth.Refresh); err != nil {
		t.Errorf("refresh expired with the access token: %v", err)
	}
}

func TestTokens_RefuseOtherAlgorithms(t *testing.T) {
	clk := newClock()
	tk := auth.NewTokens(key, 15*time.Minute, 168*time.Hour, clk.Now)
	claims := jwt.MapClaims{"token_type": "access", "user_id": 1, "jti": "j",
		"iat": clk.Now().Unix(), "exp": clk.Now().Add(time.Hour).Unix()}
	for name, tok := range map[string]func() (string, error){
		"none": func() (string, error) {
			return jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
		},
		"HS384": func() (string, error) { return jwt.NewWithClaims(jwt.SigningMethodHS384, claims).SignedString(key) },
		"HS512": func() (string, error) { return jwt.NewWithClaims(jwt.SigningMethodHS512, claims).SignedString(key) },
	} {
		s, err := tok()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tk.Parse(s, auth.Access); chat.ErrorCode(err) != chat.CodeTokenNotValid {
			t.Errorf("%s: %v, want token_not_valid", name, err)
		}
	}
	// The control: HS256 with these claims passes.
	s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if _, err := tk.Parse(s, auth.Access); err != nil {
		t.Errorf("HS256: %v", err)
	}
}

func TestHasher_EveryCharacterCounts(t *testing.T) {
	h := auth.NewHasher(4, auth.HashLimit{})
	ctx := context.Background()
	check := func(hash, pw string) bool {
		t.Helper()
		ok, err := h.Check(ctx, hash, pw)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	// 100 ASCII characters: bcrypt alone reads 72 bytes, so a difference
	// in the last one would go unseen without the pre-hash.
	pw := strings.Repeat("p", 99) + "1"
	hash, err := h.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(hash, pw[:20]) {
		t.Error("the hash contains the password")
	}
	if !check(hash, pw) {
		t.Error("the right password fails")
	}
	if check(hash, strings.Repeat("p", 99)+"2") {
		t.Error("a password differing in the 100th character passes")
	}
	if check("", pw) {
		t.Error("an empty hash passes")
	}
	if auth.NewHasher(0, auth.HashLimit{}).Cost != auth.DefaultCost {
		t.Error("cost 0 is not the default")
	}
}

func TestService_RegisterLoginRefresh(t *testing.T) {
	clk := newClock()
	s, store := newService(t, clk)
	ctx := context.Background()

	u, pair, err := s.Register(ctx, "Alice", "password1", "")
	if err != nil {
		t.Fatal(err)
	}
	if u.DisplayName != "Alice" {
		t.Errorf("display name %q", u.DisplayName)
	}
	_, _, err = s.Register(ctx, "ALICE", "password1", "")
	wantCode(t, err, chat.CodeInvalid)

	got, claims, err := s.Authenticate(ctx, pair.Access)
	if err != nil || got.ID != u.ID || claims.UserID != u.ID {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	_, _, err = s.Authenticate(ctx, pair.Refresh)
	wantCode(t, err, chat.CodeTokenNotValid)

	_, _, err = s.Login(ctx, "alice", "wrong password")
	if !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("wrong password: %v", err)
	}
	_, _, err = s.Login(ctx, "nobody", "wrong password")
	if !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("unknown user: %v", err)
	}

	p2, err := s.Refresh(ctx, pair.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	p3, err := s.Refresh(ctx, p2.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	// Reuse of the first: refused, and the chain (p3 included) is revoked.
	_, err = s.Refresh(ctx, pair.Refresh)
	if !errors.Is(err, chat.ErrTokenReused) {
		t.Errorf("reuse: %v, want ErrTokenReused", err)
	}
	_, err = s.Refresh(ctx, p3.Refresh)
	wantCode(t, err, chat.CodeTokenNotValid)

	// Logout revokes; a second logout finds nothing live.
	_, lp, _ := s.Login(ctx, "alice", "password1")
	if err := s.Logout(ctx, lp.Refresh); err != nil {
		t.Fatal(err)
	}
	_, err = s.Refresh(ctx, lp.Refresh)
	wantCode(t, err, chat.CodeTokenNotValid)
	wantCode(t, s.Logout(ctx, lp.Refresh), chat.CodeTokenNotValid)

	// A deleted user's tokens are not valid.
	_, fp, _ := s.Login(ctx, "alice", "password1")
	if err := store.DeleteUser(ctx, u.ID, time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Authenticate(ctx, fp.Access)
	wantCode(t, err, chat.CodeTokenNotValid)
	_, err = s.Refresh(ctx, fp.Refresh)
	wantCode(t, err, chat.CodeTokenNotValid)
}

func TestService_UpdateMe(t *testing.T) {
	clk := newClock()
	s, _ := newService(t, clk)
	ctx := context.Background()
	u, _, err := s.Register(ctx, "bob", "password1", "Bob")
	if err != nil {
		t.Fatal(err)
	}
	short := "short"
	_, err = s.UpdateMe(ctx, u.ID, "", nil, &short)
	wantCode(t, err, chat.CodeInvalid)
	name, pw := "Robert", "a better password"
	got, err := s.UpdateMe(ctx, u.ID, "", &name, &pw)
	if err != nil || got.DisplayName != "Robert" {
		t.Fatalf("update: %+v %v", got, err)
	}
	if _, _, err := s.Login(ctx, "bob", pw); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
}

// A password change ends every other session of the user: their refresh
// tokens, access tokens and tickets are refused, and SessionsRevoked
// names the session that stays. That session's tokens keep working, and
// so does a login with the new password.
func TestService_PasswordChangeEndsOtherSessions(t *testing.T) {
	clk := newClock()
	store := mustOpenDB(t)
	type revocation struct {
		user int64
		kept string
	}
	var revoked []revocation
	s := auth.NewService(store, auth.NewHasher(4, auth.HashLimit{}),
		auth.NewTokens(key, 15*time.Minute, 168*time.Hour, clk.Now), auth.Options{Now: clk.Now,
			SessionsRevoked: func(id int64, kept string) { revoked = append(revoked, revocation{id, kept}) }})
	ctx := context.Background()
	u, phone, err := s.Register(ctx, "erin", "password1", "")
	if err != nil {
		t.Fatal(err)
	}
	_, laptop, err := s.Login(ctx, "erin", "password1")
	if err != nil {
		t.Fatal(err)
	}
	_, phoneClaims, _ := s.Authenticate(ctx, phone.Access)
	_, laptopClaims, _ := s.Authenticate(ctx, laptop.Access)
	if phoneClaims.SID == "" || phoneClaims.SID == laptopClaims.SID {
		t.Fatalf("sessions %q and %q: want two, distinct", phoneClaims.SID, laptopClaims.SID)
	}
	phoneTicket, err := s.IssueTicket(ctx, phoneClaims)
	if err != nil {
		t.Fatal(err)
	}

	pw := "a better password"
	if _, err := s.UpdateMe(ctx, u.ID, laptopClaims.SID, nil, &pw); err != nil {
		t.Fatal(err)
	}
	if len(revoked) != 1 || revoked[0] != (revocation{u.ID, laptopClaims.SID}) {
		t.Errorf("SessionsRevoked calls %+v, want one for %d keeping %q", revoked, u.ID, laptopClaims.SID)
	}
	_, err = s.Refresh(ctx, phone.Refresh)
	wantCode(t, err, chat.CodeTokenNotValid)
	_, _, err = s.Authenticate(ctx, phone.Access)
	wantCode(t, err, chat.CodeTokenNotValid)
	_, _, err = s.RedeemTicket(ctx, phoneTicket)
	wantCode(t, err, chat.CodeTokenNotValid)

	// The laptop stays signed in, its refreshed tokens too.
	if _, _, err := s.Authenticate(ctx, laptop.Access); err != nil {
		t.Errorf("the changing session's access token: %v", err)
	}
	next, err := s.Refresh(ctx, laptop.Refresh)
	if err != nil {
		t.Fatalf("the changing session's refresh: %v", err)
	}
	if _, c, err := s.Authenticate(ctx, next.Access); err != nil || c.SID != laptopClaims.SID || c.Epoch != 1 {
		t.Errorf("refreshed access token: %+v %v, want session %q of epoch 1", c.Session, err, laptopClaims.SID)
	}
	// Old password out, new one in; a new login is a session of the new
	// epoch.
	_, _, err = s.Login(ctx, "erin", "password1")
	wantCode(t, err, chat.CodeNotAuthenticated)
	_, again, err := s.Login(ctx, "erin", pw)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Authenticate(ctx, again.Access); err != nil {
		t.Errorf("a login after the change: %v", err)
	}
	// Changing the display name alone ends nothing.
	name := "Erin"
	if _, err := s.UpdateMe(ctx, u.ID, "", &name, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Authenticate(ctx, again.Access); err != nil || len(revoked) != 1 {
		t.Errorf("after a display-name change: %v, %d revocations", err, len(revoked))
	}
}

func TestTickets_OneUseWithin30s(t *testing.T) {
	clk := newClock()
	s, store := newService(t, clk)
	ctx := context.Background()
	u, pair, err := s.Register(ctx, "carol", "password1", "")
	if err != nil {
		t.Fatal(err)
	}
	_, claims, _ := s.Authenticate(ctx, pair.Access)

	tk := mustTicket(t, s, u.ID, claims.Expiry())
	got, ticket, err := s.RedeemTicket(ctx, tk)
	if err != nil || got.ID != u.ID || !ticket.AccessExp.Equal(claims.Expiry()) {
		t.Fatalf("redeem: %+v %+v %v", got, ticket, err)
	}
	_, _, err = s.RedeemTicket(ctx, tk)
	wantCode(t, err, chat.CodeTokenNotValid)

	tk = mustTicket(t, s, u.ID, claims.Expiry())
	clk.Advance(auth.TicketTTL + time.Millisecond)
	_, _, err = s.RedeemTicket(ctx, tk)
	wantCode(t, err, chat.CodeTokenNotValid)

	tk = mustTicket(t, s, u.ID, claims.Expiry())
	clk.Advance(auth.TicketTTL - time.Second)
	if _, _, err := s.RedeemTicket(ctx, tk); err != nil {
		t.Errorf("a ticket 29 s old: %v", err)
	}
	_, _, err = s.RedeemTicket(ctx, "made-up")
	wantCode(t, err, chat.CodeTokenNotValid)

	tk = mustTicket(t, s, u.ID, claims.Expiry())
	if err := store.DeleteUser(ctx, u.ID, time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.RedeemTicket(ctx, tk)
	wantCode(t, err, chat.CodeTokenNotValid)
	// A ticket is not a JWT.
	_, _, err = s.Authenticate(ctx, mustTicket(t, s, u.ID, claims.Expiry()))
	wantCode(t, err, chat.CodeTokenNotValid)
}

func TestTickets_ConcurrentRedeemOnce(t *testing.T) {
	clk := newClock()
	s, _ := newService(t, clk)
	ctx := context.Background()
	u, _, err := s.Register(ctx, "dora", "password1", "")
	if err != nil {
		t.Fatal(err)
	}
	tk := mustTicket(t, s, u.ID, clk.Now().Add(time.Minute))
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := s.RedeemTicket(ctx, tk); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 1 {
		t.Errorf("the ticket was redeemed %d times", ok)
	}
}

func mustTicket(t *testing.T, s *auth.Service, userID int64, accessExp time.Time) string {
	t.Helper()
	tk, err := s.IssueTicket(t.Context(), auth.Claims{UserID: userID,
		RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(accessExp)}})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// TestTokens_RepeatedAccessTokenStillChecked: an access token seen before
// is still refused once expired, and a token that differs from it in any
// way (signature, payload) is verified on its own, not taken for it.
func TestTokens_RepeatedAccessTokenStillChecked(t *testing.T) {
	clk := newClock()
	tk := auth.NewTokens(key, 15*time.Minute, 168*time.Hour, clk.Now)
	access, _, err := tk.Issue(42, auth.Access, auth.Session{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if c, err := tk.Parse(access, auth.Access); err != nil || c.UserID != 42 {
			t.Fatalf("parse: %+v %v", c, err)
		}
	}
	dot := strings.LastIndexByte(access, '.')
	for name, bad := range map[string]string{
		"other signature": access[:dot+1] + strings.Repeat("A", len(access)-dot-1),
		"no signature":    access[:dot+1],
		"other payload":   strings.Replace(access, ".", ".e", 1),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tk.Parse(bad, auth.Access)
			wantCode(t, err, chat.CodeTokenNotValid)
		})
	}
	clk.Advance(15*time.Minute - time.Second)
	if _, err := tk.Parse(access, auth.Access); err != nil {
		t.Errorf("a second before expiry: %v", err)
	}
	clk.Advance(time.Second)
	_, err = tk.Parse(access, auth.Access)
	wantCode(t, err, chat.CodeTokenNotValid)
}

// TestTokens_ClockSkewLeeway: a token issued by a node whose clock runs a
// little ahead (iat or nbf up to auth.ClockLeeway in the future) is
// accepted; one from further ahead is refused, and the leeway never
// lengthens a token's life past its exp.
func TestTokens_ClockSkewLeeway(t *testing.T) {
	clk := newClock()
	tk := auth.NewTokens(key, 15*time.Minute, 168*time.Hour, clk.Now)
	now := clk.Now()
	sign := func(iat, nbf, exp time.Time) string {
		t.Helper()
		c := jwt.MapClaims{"token_type": "access", "user_id": 7, "jti": "j" + iat.String() + nbf.String(),
			"iat": iat.Unix(), "exp": exp.Unix()}
		if !nbf.IsZero() {
			c["nbf"] = nbf.Unix()
		}
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	hour := now.Add(time.Hour)
	for _, tc := range []struct {
		name   string
		token  string
		accept bool
	}{
		{"iat now", sign(now, time.Time{}, hour), true},
		{"iat 5s ahead", sign(now.Add(5*time.Second), time.Time{}, hour), true},
		{"iat at the leeway", sign(now.Add(auth.ClockLeeway), time.Time{}, hour), true},
		{"iat past the leeway", sign(now.Add(auth.ClockLeeway+time.Second), time.Time{}, hour), false},
		{"iat an hour ahead", sign(now.Add(time.Hour), time.Time{}, now.Add(2*time.Hour)), false},
		{"nbf 20s ahead", sign(now, now.Add(20*time.Second), hour), true},
		{"nbf a minute ahead", sign(now, now.Add(time.Minute), hour), false},
		{"expired a second ago", sign(now.Add(-time.Hour), time.Time{}, now.Add(-time.Second)), false},
		{"expiring now", sign(now.Add(-time.Hour), time.Time{}, now), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 { // the second time from the verified cache
				_, err := tk.Parse(tc.token, auth.Access)
				if tc.accept && err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !tc.accept {
					wantCode(t, err, chat.CodeTokenNotValid)
				}
			}
		})
	}
}
