package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/confab/confab/app/chat"
)

// Store is what auth needs of the database.
type Store interface {
	CreateUser(ctx context.Context, username, displayName, passwordHash string, at time.Time) (chat.User, error)
	UserByID(ctx context.Context, id int64) (chat.Account, error)
	UserByUsername(ctx context.Context, username string) (chat.Account, error)
	UpdateUser(ctx context.Context, id int64, displayName, passwordHash *string) (chat.User, error)
	ChangePassword(ctx context.Context, id int64, passwordHash, keepChain string, at time.Time) (chat.Account, error)
	InsertRefreshToken(ctx context.Context, t chat.RefreshToken) error
	RotateRefreshToken(ctx context.Context, old []byte, next chat.RefreshToken, at time.Time) error
	RevokeRefreshChain(ctx context.Context, h []byte, at time.Time) (int64, error)
}

// Pair is what a login or refresh hands out.
type Pair struct {
	Access  string `json:"access"`
	Refresh string `json:"refresh"`
}

// Service manages accounts, logins and tokens.
type Service struct {
	store   Store
	hasher  *Hasher
	tokens  *Tokens
	now     func() time.Time
	tickets TicketStore
	revoked func(userID int64, keptSession string)
}

// Options configure a Service. Each zero value is a working default.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Tickets keeps the socket tickets. Nodes of a cluster share one, so
	// that a ticket issued by one node is redeemed by any. Nil: tickets
	// live in this process's memory.
	Tickets TicketStore
	// SessionsRevoked, when set, is told that a password change ended
	// every session of userID but keptSession (a refresh chain id; empty
	// for none), once that is committed: the sockets of those sessions,
	// on every node, are to be closed.
	SessionsRevoked func(userID int64, keptSession string)
}

// NewService returns a Service.
func NewService(store Store, hasher *Hasher, tokens *Tokens, opt Options) *Service {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Tickets == nil {
		opt.Tickets = &memoryTickets{m: map[string]Ticket{}}
	}
	return &Service{store: store, hasher: hasher, tokens: tokens, now: opt.Now, tickets: opt.Tickets, revoked: opt.SessionsRevoked}
}

// Tokens returns the token issuer.
func (s *Service) Tokens() *Tokens { return s.tokens }

// ErrBadCredentials is the one answer to a failed login, whether or not
// the username exists.
var ErrBadCredentials = &chat.Error{Code: chat.CodeNotAuthenticated, Detail: "No active account found with the given credentials"}

// Register validates and creates an account and logs it in.
func (s *Service) Register(ctx context.Context, username, password, displayName string) (chat.User, Pair, error) {
	v := chat.Invalid{}
	validateUsername(v, username)
	validatePassword(v, password)
	validateDisplayName(v, displayName)
	if err := v.Err(); err != nil {
		return chat.User{}, Pair{}, err
	}
	if displayName == "" {
		displayName = username
	}
	// Fail fast on a taken name before paying for a hash.
	if _, err := s.store.UserByUsername(ctx, username); err == nil {
		return chat.User{}, Pair{}, chat.InvalidField("username", "A user with that username already exists.")
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return chat.User{}, Pair{}, err
	}
	u, err := s.store.CreateUser(ctx, username, displayName, hash, s.now())
	if chat.ErrorCode(err) == chat.CodeConflict {
		return chat.User{}, Pair{}, chat.InvalidField("username", "A user with that username already exists.")
	}
	if err != nil {
		return chat.User{}, Pair{}, err
	}
	p, err := s.newLogin(ctx, u.ID, 0)
	return u, p, err
}

// Login checks a username and password. Every failure is ErrBadCredentials
// and takes the time of one hash comparison.
func (s *Service) Login(ctx context.Context, username, password string) (chat.User, Pair, error) {
	a, err := s.store.UserByUsername(ctx, username)
	if err != nil && !errors.Is(err, chat.ErrNotFound) {
		return chat.User{}, Pair{}, err
	}
	ok, err := s.hasher.Check(ctx, a.PasswordHash, password)
	if err != nil {
		return chat.User{}, Pair{}, err
	}
	if !ok {
		return chat.User{}, Pair{}, ErrBadCredentials
	}
	// Said only to whoever knows the password.
	if !a.Active() {
		return chat.User{}, Pair{}, chat.ErrAccountDisabled
	}
	p, err := s.newLogin(ctx, a.ID, a.TokenEpoch)
	return a.User, p, err
}

// newLogin starts a session: a new refresh chain.
func (s *Service) newLogin(ctx context.Context, userID, epoch int64) (Pair, error) {
	sess := Session{SID: randomHex(16), Epoch: epoch}
	return s.issuePair(ctx, userID, sess, func(rt chat.RefreshToken) error {
		rt.ChainID = sess.SID
		return s.store.InsertRefreshToken(ctx, rt)
	})
}

func (s *Service) issuePair(ctx context.Context, userID int64, sess Session, store func(chat.RefreshToken) error) (Pair, error) {
	access, _, err := s.tokens.Issue(userID, Access, sess)
	if err != nil {
		return Pair{}, err
	}
	refresh, rc, err := s.tokens.Issue(userID, Refresh, sess)
	if err != nil {
		return Pair{}, err
	}
	rt := chat.RefreshToken{Hash: hashToken(refresh), UserID: userID, ExpiresAt: rc.Expiry(), CreatedAt: s.now()}
	if err := store(rt); err != nil {
		return Pair{}, err
	}
	return Pair{Access: access, Refresh: refresh}, nil
}

// Refresh spends a refresh token for a new pair. Reusing a spent token
// revokes its whole login chain.
func (s *Service) Refresh(ctx context.Context, refresh string) (Pair, error) {
	c, err := s.tokens.Parse(refresh, Refresh)
	if err != nil {
		return Pair{}, err
	}
	a, err := s.store.UserByID(ctx, c.UserID)
	if err != nil {
		return Pair{}, notValid(err)
	}
	if !a.Active() { // (its chains were revoked too)
		return Pair{}, chat.ErrAccountDisabled
	}
	// The chain is the store's to check: a password change revoked every
	// chain but the one that made it. The new tokens are of this epoch.
	return s.issuePair(ctx, c.UserID, Session{SID: c.SID, Epoch: a.TokenEpoch}, func(next chat.RefreshToken) error {
		return s.store.RotateRefreshToken(ctx, hashToken(refresh), next, s.now())
	})
}

// Logout revokes the login chain of a refresh token.
func (s *Service) Logout(ctx context.Context, refresh string) error {
	if _, err := s.tokens.Parse(refresh, Refresh); err != nil {
		return err
	}
	_, err := s.store.RevokeRefreshChain(ctx, hashToken(refresh), s.now())
	return err
}

// Authenticate verifies an access token and returns its user. A token of a
// user that no longer exists is not valid; one of a deactivated account
// is chat.ErrAccountDisabled.
func (s *Service) Authenticate(ctx context.Context, access string) (chat.User, Claims, error) {
	c, err := s.tokens.Parse(access, Access)
	if err != nil {
		return chat.User{}, Claims{}, err
	}
	a, err := s.store.UserByID(ctx, c.UserID)
	if err != nil {
		return chat.User{}, Claims{}, notValid(err)
	}
	if err := current(a, c.Session); err != nil {
		return chat.User{}, Claims{}, err
	}
	return a.User, c, nil
}

// Recheck reads the account again and refuses the session as
// Authenticate would now. A socket calls it once it listens for the
// account's events: a deactivation or password change made between the
// handshake's check and then has no event left to close it by.
func (s *Service) Recheck(ctx context.Context, userID int64, sess Session) error {
	a, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return notValid(err)
	}
	return current(a, sess)
}

// current refuses a token of a deactivated account, and one of a session
// that a password change ended: one issued before the user's last change,
// in another login than the one that made it.
func current(a chat.Account, s Session) error {
	if !a.Active() {
		return chat.ErrAccountDisabled
	}
	if s.Epoch >= a.TokenEpoch || s.SID != "" && s.SID == a.KeptSession {
		return nil
	}
	return &chat.Error{Code: ErrTokenNotValid.Code, Detail: ErrTokenNotValid.Detail,
		Err: errors.New("session ended by a password change")}
}

// notValid turns "user not found" into an invalid token.
func notValid(err error) error {
	if errors.Is(err, chat.ErrNotFound) {
		return &chat.Error{Code: chat.CodeTokenNotValid, Detail: "User not found", Err: err}
	}
	return err
}

// UpdateMe changes the caller's display name and/or password. A new
// password ends every other session of the user: their refresh chains
// are revoked, their access tokens refused, and SessionsRevoked is told
// so that their sockets close. The session the change is made in (sid,
// its refresh chain) stays signed in with the tokens it has.
func (s *Service) UpdateMe(ctx context.Context, userID int64, sid string, displayName, password *string) (chat.User, error) {
	v := chat.Invalid{}
	if displayName != nil {
		validateDisplayName(v, *displayName)
	}
	if password != nil {
		validatePassword(v, *password)
	}
	if err := v.Err(); err != nil {
		return chat.User{}, err
	}
	if password == nil {
		return s.store.UpdateUser(ctx, userID, displayName, nil)
	}
	hash, err := s.hasher.Hash(ctx, *password)
	if err != nil {
		return chat.User{}, err
	}
	a, err := s.store.ChangePassword(ctx, userID, hash, sid, s.now())
	if err != nil {
		return chat.User{}, err
	}
	if s.revoked != nil {
		s.revoked(userID, sid)
	}
	if displayName == nil {
		return a.User, nil
	}
	return s.store.UpdateUser(ctx, userID, displayName, nil)
}

// ErrWrongPassword refuses an action that asks for the account's
// password again (deleting it) when the one given is not it.
var ErrWrongPassword = &chat.Error{Code: chat.CodeForbidden, Detail: "The password is not correct."}

// CheckPassword confirms that password is user userID's: nil, or
// ErrWrongPassword; a missing one is a 400 on "password".
func (s *Service) CheckPassword(ctx context.Context, userID int64, password string) error {
	if password == "" {
		return chat.InvalidField("password", "This field is required.")
	}
	a, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return notValid(err)
	}
	ok, err := s.hasher.Check(ctx, a.PasswordHash, password)
	if err != nil {
		return err
	}
	if !ok {
		return ErrWrongPassword
	}
	return nil
}

// Username, password and display name rules (lengths in code points).
const (
	MinUsername    = 3
	MaxUsername    = 32
	MinPassword    = 8
	MaxPassword    = 128
	MaxDisplayName = 64
)

func validateUsername(v chat.Invalid, s string) {
	n := utf8.RuneCountInString(s)
	switch {
	case s == "":
		v.Add("username", "This field is required.")
	case n < MinUsername || n > MaxUsername:
		v.Add("username", "Must be 3 to 32 characters.")
	default:
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
				v.Add("username", "Only letters, digits and _ . - are allowed.")
				return
			}
		}
	}
}

func validatePassword(v chat.Invalid, s string) {
	n := utf8.RuneCountInString(s)
	switch {
	case s == "":
		v.Add("password", "This field is required.")
	case !utf8.ValidString(s):
		v.Add("password", "Must be valid UTF-8.")
	case n < MinPassword || n > MaxPassword:
		v.Add("password", "Must be 8 to 128 characters.")
	}
}

func validateDisplayName(v chat.Invalid, s string) {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxDisplayName {
		v.Add("display_name", "Must be at most 64 characters.")
	}
}

// Tickets: one-time WebSocket credentials.

// TicketTTL is how long a ticket can be redeemed.
const TicketTTL = 30 * time.Second

// Ticket is what a one-time WebSocket ticket stands for.
type Ticket struct {
	UserID    int64
	ExpiresAt time.Time // of the ticket
	AccessExp time.Time // of the access token it was issued against
	Session   Session   // of that access token
}

// TicketStore keeps tickets until they are redeemed or expire. Take must
// hand a ticket out at most once.
type TicketStore interface {
	PutTicket(ctx context.Context, key string, t Ticket) error
	TakeTicket(ctx context.Context, key string) (t Ticket, ok bool, err error)
}

type memoryTickets struct {
	mu sync.Mutex
	m  map[string]Ticket
}

func (mt *memoryTickets) PutTicket(_ context.Context, key string, t Ticket) error {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	for k, v := range mt.m { // keep the map to live tickets
		if t.ExpiresAt.Sub(v.ExpiresAt) > TicketTTL {
			delete(mt.m, k)
		}
	}
	mt.m[key] = t
	return nil
}

func (mt *memoryTickets) TakeTicket(_ context.Context, key string) (Ticket, bool, error) {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	t, ok := mt.m[key]
	delete(mt.m, key)
	return t, ok, nil
}

// IssueTicket returns a one-time ticket for the holder of the access
// token with claims c.
func (s *Service) IssueTicket(ctx context.Context, c Claims) (string, error) {
	t := randomHex(24)
	err := s.tickets.PutTicket(ctx, t, Ticket{UserID: c.UserID, ExpiresAt: s.now().Add(TicketTTL), AccessExp: c.Expiry(), Session: c.Session})
	if err != nil {
		return "", fmt.Errorf("store ticket: %w", err)
	}
	return t, nil
}

// RedeemTicket spends a ticket and returns its user and the ticket as
// stored: the expiry and session of the access token it stands for. A
// ticket of a session a password change ended is not valid.
func (s *Service) RedeemTicket(ctx context.Context, t string) (chat.User, Ticket, error) {
	tk, ok, err := s.tickets.TakeTicket(ctx, t)
	if err != nil {
		return chat.User{}, Ticket{}, fmt.Errorf("redeem ticket: %w", err)
	}
	if !ok || s.now().After(tk.ExpiresAt) {
		return chat.User{}, Ticket{}, ErrTokenNotValid
	}
	a, err := s.store.UserByID(ctx, tk.UserID)
	if err != nil {
		return chat.User{}, Ticket{}, notValid(err)
	}
	if err := current(a, tk.Session); err != nil {
		return chat.User{}, Ticket{}, err
	}
	return a.User, tk, nil
}
