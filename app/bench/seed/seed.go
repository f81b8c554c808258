// Package seed is confab bench seed: it writes a new SQLite file of a
// given scale (users, conversations, messages) for the server to start on,
// so that anyone can reproduce a measurement of reads at that scale
// (confab bench reads) without sending millions of messages through the
// API first.
//
// The schema is the server's own: the file is made by db.Open, which runs
// the embedded migrations, and seed only inserts rows. Every column the
// server keeps beside the messages (a conversation's last_seq,
// last_message_id, updated_at and member_count; a participant's read
// mark and last_read_seq) ends as the send path and the read path would
// have left it, so the server reads the file exactly as if the messages
// had been sent through the API. Passwords are hashed once, by the
// server's hasher, and the hash is shared.
//
// seed writes only the file it creates, and never one that exists. The
// loading pragmas (no journal, no sync, an exclusive lock) are those of
// its own connection while it writes, never the server's.
package seed

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/confab/confab/app/auth"
	"github.com/confab/confab/db"
)

// Password is the password of every seeded user.
const Password = "confab-seed-password"

// Username returns the name of seeded user n, whose id is n.
func Username(n int) string { return "seed_" + strconv.Itoa(n) }

// Defaults of Config, at which the scale figure is measured.
const (
	DefaultUsers         = 100000
	DefaultConversations = 50000
	DefaultMessages      = 10000000
)

// heavyUsers are the users in many conversations, at DefaultConversations: the
// accounts whose conversation list is long. Their counts scale down with
// Config.Conversations.
func heavyUsers() [3]struct{ user, conversations int } {
	return [3]struct{ user, conversations int }{{1, 10000}, {2, 2000}, {3, 1000}}
}

// groupShare is the share of conversations that are groups (the rest are
// direct), and groupMin, groupMax the sizes of a group.
const (
	groupShare         = 0.15
	groupMin, groupMax = 3, 50
)

// Config is what to write.
type Config struct {
	// Path is the SQLite file to create; it must not exist.
	Path string
	// Users, Conversations and Messages are how many of each; zero is
	// none (Users must be at least MinUsers).
	Users, Conversations, Messages int
	// Seed picks the data: the same Config writes the same rows.
	Seed uint64
	// BigGroup, when not zero, adds one group of users 1…BigGroup,
	// beyond Conversations (users 1–3 are then in one more conversation
	// each). Zero: none.
	BigGroup int
	// Words is what message contents are made of: WordsChat (also "")
	// or WordsUniform.
	Words string
	// PasswordCost is the bcrypt cost of the shared password hash; zero
	// is auth.DefaultCost, the server's.
	PasswordCost int
	// Progress receives a line this often while rows are written; nil or
	// a zero ProgressEvery: no lines.
	Progress      io.Writer
	ProgressEvery time.Duration
}

// MinUsers is the fewest users seed writes: the heavy users and enough
// others to fill a group.
const MinUsers = 10

// Result says what was written.
type Result struct {
	Users         int64         `json:"users"`
	Conversations int64         `json:"conversations"`
	Participants  int64         `json:"participants"`
	Messages      int64         `json:"messages"`
	Rows          int64         `json:"rows"`
	Elapsed       time.Duration `json:"-"`
	Seconds       float64       `json:"seconds"`
	RowsPerSecond float64       `json:"rows_per_second"`
	Bytes         int64         `json:"file_bytes"`
}

// Time bases of the data: fixed, so that a seed gives the same rows on
// any day. Users are made first, then conversations, then messages, each
// a moment after the one before.
const epoch = 1767225600000 // 2026-01-01T00:00:00Z, in Unix milliseconds

// maxGap is the most milliseconds between two messages (1 to maxGap,
// uniformly): 10 million messages span about twelve days.
const maxGap = 200

// Write creates cfg.Path with the server's schema and the rows cfg asks
// for. On error the file is removed.
func Write(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.check(); err != nil {
		return Result{}, err
	}
	if _, err := os.Lstat(cfg.Path); err == nil {
		return Result{}, fmt.Errorf("%s already exists: seed writes a new file (remove it, or choose another path)", cfg.Path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return Result{}, err
	}
	start := time.Now()
	res, err := write(ctx, cfg)
	if err != nil {
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			os.Remove(cfg.Path + suffix)
		}
		return Result{}, err
	}
	res.Elapsed = time.Since(start)
	res.Seconds = math.Round(res.Elapsed.Seconds()*100) / 100
	res.Rows = res.Users + res.Conversations + res.Participants + res.Messages
	res.RowsPerSecond = math.Round(float64(res.Rows) / res.Elapsed.Seconds())
	if fi, err := os.Stat(cfg.Path); err == nil {
		res.Bytes = fi.Size()
	}
	return res, nil
}

func (cfg Config) check() error {
	switch {
	case cfg.Path == "":
		return errors.New("no path: give the file to create")
	case cfg.Users < MinUsers:
		return fmt.Errorf("users: %d is too few, at least %d", cfg.Users, MinUsers)
	case cfg.Conversations < 0 || cfg.Messages < 0 || cfg.BigGroup < 0:
		return errors.New("conversations, messages and the big group cannot be negative")
	case cfg.Messages > 0 && cfg.Conversations == 0 && cfg.BigGroup == 0:
		return errors.New("messages need a conversation to go to")
	case cfg.Words != "" && cfg.Words != WordsChat && cfg.Words != WordsUniform:
		return fmt.Errorf("words: %q is neither %q nor %q", cfg.Words, WordsChat, WordsUniform)
	case cfg.BigGroup > cfg.Users:
		return fmt.Errorf("big group: %d members, and there are %d users", cfg.BigGroup, cfg.Users)
	case cfg.BigGroup == 1:
		return errors.New("big group: a group has at least 2 members")
	case cfg.Users > math.MaxInt32 || cfg.Conversations > math.MaxInt32-1:
		return errors.New("too many users or conversations")
	}
	return nil
}

// write makes the schema with the server's migrations, then loads.
func write(ctx context.Context, cfg Config) (Result, error) {
	s, err := db.Open(ctx, cfg.Path)
	if err != nil {
		return Result{}, err
	}
	if err := s.Close(); err != nil {
		return Result{}, fmt.Errorf("close after migrating: %w", err)
	}
	hash, err := auth.NewHasher(cfg.PasswordCost, auth.HashLimit{}).Hash(ctx, Password)
	if err != nil {
		return Result{}, fmt.Errorf("hash the password: %w", err)
	}

	// Loading pragmas, on this connection only: no rollback journal and
	// no fsync (a failed seed is deleted, not recovered), an exclusive
	// lock, and a cache that holds the indexes being filled. Foreign keys
	// are not checked row by row: rows are written children first
	// (messages before the conversations they count), and the tests
	// check the finished file with foreign_key_check.
	dsn := "file:" + (&url.URL{Path: cfg.Path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(OFF)&_pragma=synchronous(OFF)" +
		"&_pragma=locking_mode(EXCLUSIVE)&_pragma=foreign_keys(0)&_pragma=cache_size(-1048576)&_pragma=temp_store(MEMORY)"
	conn, err := sql.Open("sqlite", dsn)
	if err != nil {
		return Result{}, err
	}
	defer conn.Close()
	conn.SetMaxOpenConns(1)

	l := &loader{cfg: cfg, db: conn, hash: hash}
	stop := l.startProgress()
	err = l.load(ctx)
	stop()
	if err != nil {
		return Result{}, err
	}
	// The search index is built once, from every message stored, and
	// its mark (search_indexed) set past them in the same transaction, so
	// that the server's indexer has nothing left to add.
	if err := indexAll(ctx, conn); err != nil {
		return Result{}, fmt.Errorf("index the messages: %w", err)
	}
	// Leave the file as the server keeps it: in WAL mode, everything in
	// the main file.
	if _, err := conn.ExecContext(ctx, `PRAGMA journal_mode=WAL`); err != nil {
		return Result{}, fmt.Errorf("journal mode: %w", err)
	}
	if err := conn.Close(); err != nil {
		return Result{}, err
	}
	return Result{Users: l.users.Load(), Conversations: l.convs.Load(), Participants: l.parts.Load(), Messages: l.msgs.Load()}, nil
}

// loader is one seed in progress.
type loader struct {
	cfg  Config
	db   *sql.DB
	hash string

	// Rows written so far, for the progress line.
	users, convs, parts, msgs atomic.Int64
	phase                     atomic.Pointer[string]
}

// conversation is a conversation as planned, then as its messages leave it.
type conversation struct {
	members  []int32 // user ids; members[0] is the creator, its admin
	part     int     // index of its first participant in the flat arrays
	lastSeq  int64
	lastID   int64
	lastAt   int64
	isGroup  bool
	readNext int // next of byCut whose read mark is not yet known
}

// participant is one member's state beyond the conversation's.
type participant struct {
	cut     int64 // the newest message id this member has read (their read mark's limit)
	readSeq int64 // seq of the newest message at or before cut
	readID  int64 // its id: last_read_message_id
	ownSeq  int64 // seq of the newest message they sent
}

func (l *loader) load(ctx context.Context) error {
	cfg := l.cfg
	rnd := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	if err := l.insertUsers(ctx); err != nil {
		return err
	}
	convs, err := plan(rnd, cfg)
	if err != nil {
		return err
	}

	// Every participant's read mark: half have read everything, the
	// others up to a message of the whole history taken at random.
	var parts []participant
	byCut := make([][]int, len(convs)) // each conversation's participants by cut
	for i := range convs {
		c := &convs[i]
		c.part = len(parts)
		for range c.members {
			p := participant{cut: math.MaxInt64}
			if cfg.Messages > 0 && rnd.IntN(2) == 0 {
				p.cut = rnd.Int64N(int64(cfg.Messages) + 1)
			}
			parts = append(parts, p)
		}
		order := make([]int, len(c.members))
		for k := range order {
			order[k] = c.part + k
		}
		slices.SortFunc(order, func(a, b int) int { return cmp.Compare(parts[a].cut, parts[b].cut) })
		byCut[i] = order
	}

	if err := l.insertMessages(ctx, rnd, convs, parts, byCut); err != nil {
		return err
	}
	// Marks past the last message of their conversation.
	for i := range convs {
		c := &convs[i]
		for ; c.readNext < len(byCut[i]); c.readNext++ {
			p := &parts[byCut[i][c.readNext]]
			p.readSeq, p.readID = c.lastSeq, c.lastID
		}
	}
	if err := l.insertConversations(ctx, convs); err != nil {
		return err
	}
	return l.insertParticipants(ctx, convs, parts)
}

// heavyCount is how many conversations heavy user h is in, scaled to n
// conversations.
func heavyCount(h, n int) int {
	c := heavyUsers()[h].conversations
	if n < DefaultConversations {
		c = int(math.Ceil(float64(c) * float64(n) / DefaultConversations))
	}
	return c
}

// plan lays out the conversations and their members: groupShare of them
// groups of groupMin–groupMax members, the rest direct conversations of
// two, each pair at most once; the heavy users in their share; then the
// big group.
func plan(rnd *rand.Rand, cfg Config) ([]conversation, error) {
	n := cfg.Conversations
	convs := make([]conversation, n, n+1)
	for i := range convs {
		convs[i].isGroup = rnd.Float64() < groupShare
	}
	// The heavy users, each in their count of conversations chosen at
	// random; a direct conversation holds at most one of them, so that
	// no pair of them repeats. With only a handful of conversations
	// there may be no room for all of them: they get fewer.
	heavy := heavyUsers()
	heavyIn := make([][]int32, n)
	for h := range heavy {
		want := heavyCount(h, n)
		for got, tries := 0, 0; got < want && tries < 100*n+1000; tries++ {
			i := rnd.IntN(n)
			if slices.Contains(heavyIn[i], int32(heavy[h].user)) || (!convs[i].isGroup && len(heavyIn[i]) > 0) {
				continue
			}
			heavyIn[i] = append(heavyIn[i], int32(heavy[h].user))
			got++
		}
	}
	// Everyone else is drawn from the users after the heavy ones.
	first := int32(len(heavy) + 1)
	others := int32(cfg.Users) - first + 1
	other := func() int32 { return first + rnd.Int32N(others) }
	pairs := make(map[[2]int32]bool, n)
	for i := range convs {
		c := &convs[i]
		if !c.isGroup {
			for tries := 0; ; tries++ {
				if tries > 1000 {
					return nil, fmt.Errorf("too few users (%d) for %d direct conversations", cfg.Users, n)
				}
				a := other()
				if len(heavyIn[i]) > 0 {
					a = heavyIn[i][0]
				}
				b := other()
				key := [2]int32{min(a, b), max(a, b)}
				if a == b || pairs[key] {
					continue
				}
				pairs[key] = true
				c.members = []int32{a, b}
				break
			}
			continue
		}
		size := groupMin + rnd.IntN(groupMax-groupMin+1)
		size = min(size, len(heavyIn[i])+int(others))
		c.members = append(make([]int32, 0, size), heavyIn[i]...)
		for len(c.members) < size {
			if u := other(); !slices.Contains(c.members, u) {
				c.members = append(c.members, u)
			}
		}
		rnd.Shuffle(len(c.members), func(a, b int) { c.members[a], c.members[b] = c.members[b], c.members[a] })
	}
	if cfg.BigGroup > 0 {
		big := conversation{isGroup: true, members: make([]int32, cfg.BigGroup)}
		for k := range big.members {
			big.members[k] = int32(k + 1)
		}
		convs = append(convs, big)
	}
	return convs, nil
}

// convCreated is when conversation i (id i+1) was made: after every user.
func (l *loader) convCreated(i int) int64 { return epoch + int64(l.cfg.Users) + 1000 + int64(i) }

// messagesStart is when the first message was sent: after every
// conversation.
func (l *loader) messagesStart(n int) int64 { return l.convCreated(n) + 1000 }

// insertUsers writes users 1…Users: seed_n, with the one password hash.
func (l *loader) insertUsers(ctx context.Context) error {
	l.setPhase("users")
	const cols = `(id, username, username_key, display_name, display_key, password_hash, created_at)`
	return l.batched(ctx, `INSERT INTO users `+cols+` VALUES `, 7, l.cfg.Users, &l.users, func(i int, args []any) {
		n := i + 1
		name, display := Username(n), "Seed User "+strconv.Itoa(n)
		// Both are already as sqlq.Fold folds them: ASCII lower case
		// for the username; the key of the display name is folded here.
		args[0], args[1], args[2], args[3], args[4], args[5], args[6] =
			n, name, name, display, strings.ToLower(display), l.hash, epoch+int64(n)
	})
}

// insertMessages writes the messages in the order they were sent, ids
// 1, 2, 3…: each to a conversation drawn by its weight (a few are much
// busier than most), from one of its members. As it goes it keeps what
// the send path keeps: each conversation's last_seq, last message and
// activity, each sender's own newest seq, and each read mark.
func (l *loader) insertMessages(ctx context.Context, rnd *rand.Rand, convs []conversation, parts []participant, byCut [][]int) error {
	l.setPhase("messages")
	if l.cfg.Messages == 0 {
		return nil
	}
	// Weights from a log-normal distribution: skewed, with no
	// conversation taking a large share of everything.
	cum := make([]float64, len(convs))
	total := 0.0
	for i := range convs {
		total += math.Exp(1.5 * rnd.NormFloat64())
		cum[i] = total
	}
	at := l.messagesStart(len(convs))
	var content []byte
	// The words draw from a generator of their own, so that the rows
	// (who sends what to which conversation, when) are the same
	// whichever words fill them.
	wordRnd := rand.New(rand.NewPCG(l.cfg.Seed, 0x770d5))
	src := newWordSource(l.cfg.Words, wordRnd)
	const cols = `(id, conversation_id, seq, sender_id, content, created_at)`
	return l.batched(ctx, `INSERT INTO messages `+cols+` VALUES `, 6, l.cfg.Messages, &l.msgs, func(i int, args []any) {
		id := int64(i + 1)
		ci, _ := slices.BinarySearch(cum, rnd.Float64()*total)
		ci = min(ci, len(convs)-1)
		c := &convs[ci]
		k := rnd.IntN(len(c.members))
		at += 1 + rnd.Int64N(maxGap)
		// Members who had read up to the message before this one.
		order := byCut[ci]
		for ; c.readNext < len(order) && parts[order[c.readNext]].cut < id; c.readNext++ {
			p := &parts[order[c.readNext]]
			p.readSeq, p.readID = c.lastSeq, c.lastID
		}
		c.lastSeq++
		c.lastID, c.lastAt = id, at
		parts[c.part+k].ownSeq = c.lastSeq
		content = appendContent(content[:0], wordRnd, src)
		args[0], args[1], args[2], args[3], args[4], args[5] = id, ci+1, c.lastSeq, c.members[k], string(content), at
	})
}

// insertConversations writes the conversations with what their messages
// made of them.
func (l *loader) insertConversations(ctx context.Context, convs []conversation) error {
	l.setPhase("conversations")
	const cols = `(id, title, is_group, direct_key, created_by, created_at, updated_at, last_message_id, last_seq, member_count)`
	return l.batched(ctx, `INSERT INTO conversations `+cols+` VALUES `, 10, len(convs), &l.convs, func(i int, args []any) {
		c := &convs[i]
		created := l.convCreated(i)
		updated, last := created, any(nil)
		if c.lastID > 0 {
			updated, last = c.lastAt, c.lastID
		}
		title, direct := "", any(nil)
		if c.isGroup {
			title = "Seed group " + strconv.Itoa(i+1)
		} else {
			a, b := c.members[0], c.members[1]
			direct = fmt.Sprintf("%d:%d", min(a, b), max(a, b))
		}
		args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8], args[9] =
			i+1, title, c.isGroup, direct, c.members[0], created, updated, last, c.lastSeq, len(c.members)
	})
}

// insertParticipants writes every member with their read mark. A sender
// has read what they sent (the send path moves last_read_seq, not the
// read receipt, last_read_message_id).
func (l *loader) insertParticipants(ctx context.Context, convs []conversation, parts []participant) error {
	l.setPhase("participants")
	type row struct {
		conv int
		k    int
	}
	rows := make([]row, 0, len(parts))
	for i := range convs {
		for k := range convs[i].members {
			rows = append(rows, row{i, k})
		}
	}
	const cols = `(conversation_id, user_id, role, joined_at, last_read_message_id, last_read_seq)`
	return l.batched(ctx, `INSERT INTO participants `+cols+` VALUES `, 6, len(rows), &l.parts, func(i int, args []any) {
		r := rows[i]
		c := &convs[r.conv]
		p := &parts[c.part+r.k]
		role := "member"
		if r.k == 0 {
			role = "admin"
		}
		args[0], args[1], args[2], args[3], args[4], args[5] =
			r.conv+1, c.members[r.k], role, l.convCreated(r.conv), p.readID, max(p.readSeq, p.ownSeq)
	})
}

// Rows per statement and per transaction of batched.
const (
	rowsPerStatement = 100
	rowsPerTx        = 200000
)

// batched inserts n rows, rowsPerStatement to a prepared multi-row
// INSERT (prefix followed by the rows' placeholders) and rowsPerTx to a
// transaction; fill sets the cols arguments of row i, in order of i.
func (l *loader) batched(ctx context.Context, prefix string, cols, n int, done *atomic.Int64, fill func(i int, args []any)) error {
	if n == 0 {
		return nil
	}
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	stmtFor := map[int]*sql.Stmt{}
	defer func() {
		for _, st := range stmtFor {
			st.Close()
		}
	}()
	args := make([]any, rowsPerStatement*cols)
	// BEGIN and COMMIT as statements: the pool has one connection, and a
	// statement prepared for the last, shorter batch must not wait for a
	// transaction to give it back.
	inTx := false
	defer func() {
		if inTx {
			l.db.Exec(`ROLLBACK`)
		}
	}()
	for i := 0; i < n; {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := min(rowsPerStatement, n-i)
		st := stmtFor[k]
		if st == nil {
			var err error
			query := prefix + strings.TrimSuffix(strings.Repeat(one+",", k), ",")
			if st, err = l.db.PrepareContext(ctx, query); err != nil {
				return fmt.Errorf("prepare: %w", err)
			}
			stmtFor[k] = st
		}
		if !inTx {
			if _, err := l.db.ExecContext(ctx, `BEGIN`); err != nil {
				return fmt.Errorf("begin: %w", err)
			}
			inTx = true
		}
		for j := range k {
			fill(i+j, args[j*cols:(j+1)*cols])
		}
		if _, err := st.ExecContext(ctx, args[:k*cols]...); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		i += k
		done.Add(int64(k))
		if i%rowsPerTx < k || i == n {
			if _, err := l.db.ExecContext(ctx, `COMMIT`); err != nil {
				return fmt.Errorf("commit: %w", err)
			}
			inTx = false
		}
	}
	return nil
}

func (l *loader) setPhase(name string) { l.phase.Store(&name) }

// startProgress prints a line every ProgressEvery until the returned
// function is called.
func (l *loader) startProgress() (stop func()) {
	if l.cfg.Progress == nil || l.cfg.ProgressEvery <= 0 {
		return func() {}
	}
	done, exited := make(chan struct{}), make(chan struct{})
	start := time.Now()
	go func() {
		defer close(exited)
		t := time.NewTicker(l.cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				phase := ""
				if p := l.phase.Load(); p != nil {
					phase = *p
				}
				rows := l.users.Load() + l.msgs.Load() + l.convs.Load() + l.parts.Load()
				el := time.Since(start)
				fmt.Fprintf(l.cfg.Progress, "seed %6.1fs  %s: users %d/%d, messages %d/%d, conversations %d, participants %d (%.0f rows/s)\n",
					el.Seconds(), phase, l.users.Load(), l.cfg.Users, l.msgs.Load(), l.cfg.Messages,
					l.convs.Load(), l.parts.Load(), float64(rows)/el.Seconds())
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// Texts seeded messages are made of (Config.Words).
const (
	// WordsChat draws each word by Zipf's law (s = 1.07, about as in
	// English text) from a vocabulary of vocabularySize: the common
	// chat words of commonWords first, commonest first, then made-up
	// ones. At a million messages "the" is in about half of them,
	// "coffee" in about 2 % and most words in a handful.
	WordsChat = "chat"
	// WordsUniform draws commonWords alone, each as likely: every word
	// is then in about 13 % of all messages, as frequent as "the": a
	// harsher test of search than any real text.
	WordsUniform = "uniform"
)

// commonWords are the words of chat lines, about commonest first.
const commonWords = (`the you i to a it is ok yes no hi and for on in at with that this so
	what here there now see later today tomorrow thanks sure maybe hello lunch call meeting
	soon about project update ship review code test deploy fix bug coffee team plan week
	weekend night morning great good fine cool done wait`)

// vocabularySize is how many words WordsChat draws from.
const vocabularySize = 5000

// wordSource picks the words of message contents.
type wordSource struct {
	vocabulary []string
	pick       func() int // an index into vocabulary
}

// newWordSource returns the source of words (WordsChat when "") drawing
// from rnd.
func newWordSource(words string, rnd *rand.Rand) wordSource {
	common := strings.Fields(commonWords)
	if words == WordsUniform {
		return wordSource{common, func() int { return rnd.IntN(len(common)) }}
	}
	vocabulary := append(common, madeUpWords(vocabularySize-len(common), common, rnd)...)
	zipf := rand.NewZipf(rnd, 1.07, 1, uint64(len(vocabulary)-1))
	return wordSource{vocabulary, func() int { return int(zipf.Uint64()) }}
}

// madeUpWords returns n words of two or three syllables, none of them in
// taken, in an order drawn from rnd.
func madeUpWords(n int, taken []string, rnd *rand.Rand) []string {
	const consonants, vowels = "bcdfghklmnprstvwz", "aeiou"
	var syllables []string
	for _, c := range consonants {
		for _, v := range vowels {
			syllables = append(syllables, string(c)+string(v))
		}
	}
	seen := make(map[string]bool, n+len(taken))
	for _, w := range taken {
		seen[w] = true
	}
	out := make([]string, 0, n)
	for len(out) < n {
		w := syllables[rnd.IntN(len(syllables))] + syllables[rnd.IntN(len(syllables))]
		if rnd.IntN(2) == 0 {
			w += syllables[rnd.IntN(len(syllables))]
		}
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

// appendContent appends 2–12 words of src to b.
func appendContent(b []byte, rnd *rand.Rand, src wordSource) []byte {
	n := 2 + rnd.IntN(11)
	for i := range n {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, src.vocabulary[src.pick()]...)
	}
	return b
}

// indexAll rebuilds the search index (migration 00009) from every message
// and moves its mark to the last one, in one transaction.
func indexAll(ctx context.Context, conn *sql.DB) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE search_indexed SET id = (SELECT coalesce(max(id), 0) FROM messages)`); err != nil {
		return err
	}
	return tx.Commit()
}
