package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/confab/confab/app/hub"
)

// Limits of the rules, in code points.
const (
	MaxContent  = 4000
	MaxClientID = 64
	MaxTitle    = 128
	// MaxBatch is the most messages one group commit writes.
	MaxBatch = 256
)

// DefaultCommitTimeout bounds a group commit when Options.CommitTimeout
// is zero.
const DefaultCommitTimeout = 10 * time.Second

// DefaultQueueSize bounds the sends waiting for the group commit when
// Options.QueueSize is zero: sixteen full batches, far more than a laptop
// or a healthy server ever has waiting, and few enough that a stalled
// disk turns into refusals rather than thousands of parked requests.
const DefaultQueueSize = 16 * MaxBatch

// Reasons a send is refused without being stored, for Options.Refused.
const (
	// RefusedQueueFull: Options.QueueSize sends were already waiting
	// for the writer; refused at once.
	RefusedQueueFull = "queue_full"
	// RefusedQueueTimeout: the writer did not take the send within
	// twice Options.CommitTimeout: it is stuck in a commit that does
	// not end at its deadline (an fsync the disk does not finish).
	RefusedQueueTimeout = "queue_timeout"
	// RefusedStorageFull: its commit failed because the database's disk
	// is full (CodeStorageFull); nothing of it was stored.
	RefusedStorageFull = "storage_full"
)

// ErrOverloaded is returned by SendMessage when the message was refused
// before the writer took it: the queue in front of the group commit was
// full, or the writer did not take it in time. It was not stored.
var ErrOverloaded = &Error{Code: CodeOverloaded,
	Detail: "The server is busy and did not store the message; retry shortly."}

// ErrUnavailable is returned once the service is shutting down.
var ErrUnavailable = &Error{Code: CodeUnavailable, Detail: "The server is shutting down; retry shortly."}

// ErrTimedOut stands for a deadline (a request's, a frame's) that passed
// before what it waited for answered: a database that does not answer.
// The REST and socket edges answer it in place of
// context.DeadlineExceeded.
var ErrTimedOut = &Error{Code: CodeUnavailable, Detail: "The server could not answer in time; retry shortly."}

// ErrMaybeStored is returned by SendMessage when the writer had taken the
// message but no answer came in time: the caller's context ended while
// the commit was in flight, or the commit passed its deadline
// (Options.CommitTimeout). The message may or may not have been stored.
// Sending it again with the same client_id is safe: if it was stored, the
// original is returned (created false), never a second copy.
var ErrMaybeStored = &Error{Code: CodeUnavailable,
	Detail: "The message may have been stored; retrying with the same client_id is safe."}

// Options configure a Service. Each zero value is a working default.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives the service's errors; nil discards them.
	Log *slog.Logger
	// SharedStore says that other processes (nodes) change the same
	// store: the writer's participant cache then lives for one group
	// commit only, since another node could make its entries stale.
	// False: the cache lives until this service changes participants.
	SharedStore bool
	// ObserveSend, when set, is called once per message a group commit
	// stored, with the time from SendMessage taking it to its commit
	// (queueing included): the latency of the ack. Nil: not observed.
	ObserveSend func(time.Duration)
	// CommitTimeout bounds each group commit, and each store read the
	// writer makes for a batch, so that a database that stops answering
	// turns into errors (ErrMaybeStored) instead of waiting senders.
	// Zero or less means DefaultCommitTimeout.
	CommitTimeout time.Duration
	// QueueSize bounds the sends that may wait for the writer to take
	// them (the queue in front of the group commit, apart from the batch
	// being committed). A send past it fails at once with ErrOverloaded,
	// and so does one the writer has not taken within twice
	// CommitTimeout (time for the commit in progress to end at its
	// deadline and the next to take it): no send waits longer in line.
	// Zero or less means DefaultQueueSize.
	QueueSize int
	// AttachmentURLs, when set, sets the signed URLs of an attachment
	// (Attachment.URL and ThumbnailURL) in every message the service
	// returns or publishes. Nil: they stay empty.
	AttachmentURLs func(*Attachment)
	// Refused, when set, is called once per send that was not stored and
	// whose sender is told so, with the reason: RefusedQueueFull and
	// RefusedQueueTimeout (ErrOverloaded), RefusedStorageFull (a commit
	// failed for a full disk). Nil: not reported.
	Refused func(reason string)
	// Committed, when set, is called after each group commit that
	// stored at least one new message, from the writer goroutine, so it
	// must not block (the push dispatcher's Nudge). Nil: not called.
	Committed func()
	// UsernameReservedFor is how long a deleted account's username
	// stays reserved (DeleteUser). Zero: it is free at once.
	UsernameReservedFor time.Duration
	// EraseEvery is how often the eraser looks for deleted accounts
	// whose messages are not all erased yet (after a restart, or a
	// deletion that ran out of time). Zero or less means a minute.
	EraseEvery time.Duration
}

// Service holds the rules. Every edge calls it.
type Service struct {
	store Store
	pub   Publisher
	now   func() time.Time
	log   *slog.Logger
	opt   Options

	// mu makes "commit, then publish" one critical section for every
	// write that emits events, so that each subscriber sees events in
	// commit order (and messages in id order).
	mu sync.Mutex
	// members caches each conversation's participant ids for the
	// writer's notifications. Guarded by mu: every change of
	// participants happens under mu and drops the entry.
	members map[int64][]int64
	// others is publishMessage's scratch list of recipients. Guarded by
	// mu.
	others []int64
	// jsons is commitBatch's scratch list of the batch's encoded
	// messages. Guarded by mu.
	jsons [][]byte

	sends chan *sendReq
	// queued counts the senders admitted to wait on sends and not yet
	// taken or gone; Options.QueueSize bounds it. A sender leaves the
	// count once it sees its message taken, so for a moment the count
	// may include a few that the writer already took: it errs on the
	// side of refusing.
	queued atomic.Int64
	// overload and full log refused sends and commits that failed for
	// a full disk at most once per logEvery each: they come at the rate
	// clients send, and one line per send would flood the log.
	overload, full Throttle
	// timers are stopped *time.Timer for the waits of a send (timer),
	// reused: a send waits at most twice, and each wait needs a bound,
	// but a timer made per wait was a third of a send's allocations.
	timers sync.Pool

	// eraseKick wakes the eraser (erase.go); buffered, one is enough.
	eraseKick chan struct{}
	eraseDone chan struct{}

	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type sendReq struct {
	msg NewMessage
	// tail is the message's JSON after seq (encodeTail), encoded by the
	// sender before the commit, as the store is expected to store it.
	tail  []byte
	reply chan sent
	start time.Time // monotonic, for ObserveSend
}

// sent is the writer's answer to one sendReq.
type sent struct {
	Inserted
	json []byte // the message's JSON, when this send created it
}

// storedAsSent reports whether m, as the store stored it, is the message
// r encoded its tail from.
func (r *sendReq) storedAsSent(m *Message) bool {
	nm := &r.msg
	return m.Sender == nm.Sender && m.Content == nm.Content && m.ReplyTo == nil && len(m.Mentions) == len(nm.Mentions) &&
		m.CreatedAt.UnixMilli() == nm.At.UnixMilli() && m.EditedAt == nil && !m.IsDeleted &&
		(m.ClientID == nil && nm.ClientID == "" || m.ClientID != nil && *m.ClientID == nm.ClientID)
}

// NewService starts the service's group-commit writer; Close stops it.
func NewService(store Store, pub Publisher, opt Options) *Service {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.CommitTimeout <= 0 {
		opt.CommitTimeout = DefaultCommitTimeout
	}
	if opt.QueueSize <= 0 {
		opt.QueueSize = DefaultQueueSize
	}
	s := &Service{
		store: store, pub: pub, now: opt.Now, log: opt.Log, opt: opt,
		sends:     make(chan *sendReq), // unbuffered: a request is either taken or refused, never stranded
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
		eraseKick: make(chan struct{}, 1),
		eraseDone: make(chan struct{}),
	}
	if s.opt.EraseEvery <= 0 {
		s.opt.EraseEvery = time.Minute
	}
	go s.writer()
	go s.eraser()
	return s
}

// Close stops the writer after the batch in progress, and the eraser
// after its batch; later sends get ErrUnavailable.
func (s *Service) Close() {
	s.closeOnce.Do(func() { close(s.quit) })
	<-s.done
	<-s.eraseDone
}

// writer is the group commit loop: it takes every send that is waiting,
// writes them in one transaction, publishes them in id order, then
// answers each sender.
func (s *Service) writer() {
	defer close(s.done)
	batch := make([]*sendReq, 0, MaxBatch)
	msgs := make([]NewMessage, 0, MaxBatch)
	for {
		select {
		case r := <-s.sends:
			batch = append(batch, r)
		case <-s.quit:
			return
		}
	more:
		for len(batch) < MaxBatch {
			select {
			case r := <-s.sends:
				batch = append(batch, r)
			default:
				break more
			}
		}
		msgs = msgs[:0]
		for _, r := range batch {
			msgs = append(msgs, r.msg)
		}
		s.commitBatch(batch, msgs)
		clear(batch)
		batch = batch[:0]
	}
}

func (s *Service) commitBatch(batch []*sendReq, msgs []NewMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opt.SharedStore {
		s.members = nil
	}
	// The senders' contexts are not used: a batch is one transaction
	// shared by many requests, and one caller giving up must not roll
	// back the others. The commit has its own deadline instead.
	ctx, cancel := context.WithTimeout(context.Background(), s.opt.CommitTimeout)
	res, err := s.store.InsertMessages(ctx, msgs)
	expired := ctx.Err() != nil
	cancel()
	if err != nil {
		if ErrorCode(err) == CodeStorageFull {
			if s.opt.Refused != nil {
				for range batch {
					s.opt.Refused(RefusedStorageFull)
				}
			}
			if n, ok := s.full.Note(); ok {
				s.log.Error("group commit failed: the database's disk is full; sends fail until space is freed",
					"err", err, "failed_commits", n)
			}
		} else {
			s.log.Error("group commit failed", "err", err, "batch", len(msgs))
		}
		if expired {
			// Past the deadline the outcome is unknown: a commit can
			// succeed on the server after its answer was given up on.
			err = ErrMaybeStored
		}
		for _, r := range batch {
			r.reply <- sent{Inserted: Inserted{Err: err}}
		}
		return
	}
	jsons := s.jsons[:0]
	for i := range res {
		var b []byte
		if m := &res[i].Message; res[i].Created {
			tail := batch[i].tail
			if tail == nil || !batch[i].storedAsSent(m) {
				signAttachments(s.opt.AttachmentURLs, m.Attachments)
				tail = encodeTail(m)
			}
			b = s.publishMessage(m, tail, s.participants(m.ConversationID))
		}
		jsons = append(jsons, b)
	}
	if s.opt.Committed != nil {
		for i := range res {
			if res[i].Created {
				s.opt.Committed()
				break
			}
		}
	}
	for i, r := range batch {
		if s.opt.ObserveSend != nil && res[i].Err == nil {
			s.opt.ObserveSend(time.Since(r.start))
		}
		r.reply <- sent{res[i], jsons[i]}
	}
	clear(jsons)
	s.jsons = jsons
}

// publishMessage publishes the new message m, whose JSON after seq is
// tail, to its conversation, and a notification to the other recipients:
// reason "mention" to those m mentions (even one the recipients miss, a
// stale cache's newcomer), "message" to the rest. Each is one event for
// all its users, as it crosses to other nodes. It returns m's JSON.
func (s *Service) publishMessage(m *Message, tail []byte, recipients []int64) []byte {
	ev, msg := newMessageEvent(m, tail)
	s.pub.Publish(hub.ConversationTopic(m.ConversationID), ev)
	others := s.others[:0]
	for _, uid := range recipients {
		if uid != m.Sender.ID && !slices.Contains(m.Mentions, uid) {
			others = append(others, uid)
		}
	}
	s.others = others
	if len(others) > 0 {
		ev := notificationEvent(m.ConversationID, ReasonMessage, msg)
		ev.Actor = m.Sender.ID
		s.pub.PublishUsers(others, ev)
	}
	if len(m.Mentions) > 0 {
		var to []int64
		for _, uid := range m.Mentions {
			if uid != m.Sender.ID { // mentioning oneself notifies nobody
				to = append(to, uid)
			}
		}
		if len(to) > 0 {
			// A socket of someone who blocks the sender takes it as
			// a plain message (MentionAsMessage), or drops it.
			ev := notificationEvent(m.ConversationID, ReasonMention, msg)
			ev.Actor = m.Sender.ID
			s.pub.PublishUsers(to, ev)
		}
	}
	return msg
}

// participants returns convID's participant ids from the cache, loading
// them on a miss. Callers hold s.mu. A failed load is logged and yields no
// notifications: the message itself is committed and published.
func (s *Service) participants(convID int64) []int64 {
	if ids, ok := s.members[convID]; ok {
		return ids
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opt.CommitTimeout)
	ids, err := s.store.ParticipantIDs(ctx, convID)
	cancel()
	if err != nil {
		s.log.Error("participants for notifications", "err", err, "conversation_id", convID)
		return nil
	}
	if s.members == nil || len(s.members) >= maxCachedConversations {
		s.members = map[int64][]int64{}
	}
	s.members[convID] = ids
	return ids
}

// maxCachedConversations bounds the participant cache; past it, it starts
// over.
const maxCachedConversations = 1 << 14

// forgetMembers drops cached participants: of one conversation, or of all
// (id 0). Callers hold s.mu.
func (s *Service) forgetMembers(convID int64) {
	if convID == 0 {
		s.members = nil
		return
	}
	delete(s.members, convID)
}

// Messages

// Sent is the outcome of a send.
type Sent struct {
	Message Message
	// Created is false when the client_id repeated an earlier send:
	// Message is then the original.
	Created bool
	// JSON is Message as the contract encodes it (a response body).
	JSON []byte
}

// SendMessage validates and stores a message and publishes it. created is
// false when clientID repeats an earlier send: the original is returned.
//
// When ctx is cancelled before the writer takes the message, it was not
// stored and ctx's error is returned. When Options.QueueSize sends are
// already waiting for the writer, or the writer does not take this one
// within twice Options.CommitTimeout, it returns ErrOverloaded (not
// stored); when ctx's deadline passes first, a CodeOverloaded error that
// wraps context.DeadlineExceeded.
// Once taken, it waits for the commit until ctx ends or the commit passes
// its deadline (and a second, for a commit that its deadline does not
// stop); either way, without an answer it returns ErrMaybeStored. It
// returns ErrUnavailable once the service is closed.
func (s *Service) SendMessage(ctx context.Context, sender UserLite, convID int64, content, clientID string) (Message, bool, error) {
	r, err := s.Send(ctx, sender, convID, content, clientID, 0)
	return r.Message, r.Created, err
}

// Send is SendMessage, with the message's JSON encoded as well: for the
// edges, which answer with it. A replyToID that is not zero makes the
// message a reply to that message, which must be one of the same
// conversation (ErrReplyTo otherwise: a 400 on reply_to_id).
//
// The @names in content are resolved here, in the sender's goroutine and
// before the commit, against the conversation's participants (one query,
// only for content with an @): those found are the message's Mentions.
//
// attachmentIDs (at most MaxAttachments, each once) are uploads of the
// sender's to attach, in order (ErrAttachments for any other); with at
// least one, content may be blank.
func (s *Service) Send(ctx context.Context, sender UserLite, convID int64, content, clientID string, replyToID int64, attachmentIDs ...int64) (Sent, error) {
	if err := validAttachmentIDs(attachmentIDs); err != nil {
		return Sent{}, err
	}
	content, err := validContent(content)
	if err != nil && (len(attachmentIDs) == 0 || strings.TrimSpace(content) != "") {
		return Sent{}, err
	}
	if utf8.RuneCountInString(clientID) > MaxClientID {
		return Sent{}, InvalidField("client_id", "Must be at most 64 characters.")
	}
	if replyToID < 0 {
		return Sent{}, ErrReplyTo
	}
	mentions, err := s.mentions(ctx, convID, content)
	if err != nil {
		return Sent{}, err
	}
	r := &sendReq{
		msg: NewMessage{ConversationID: convID, Sender: sender, Content: content, ClientID: clientID,
			ReplyToID: replyToID, Mentions: mentions, AttachmentIDs: attachmentIDs, At: s.now()},
		reply: make(chan sent, 1),
		start: time.Now(),
	}
	// Encoded here, in the sender's goroutine, rather than on the writer.
	// A reply's tail is encoded by the writer, which reads its original,
	// and so is that of a message with attachments, which it attaches.
	m := Message{Sender: sender, Content: content, CreatedAt: UnixMilli(r.msg.At.UnixMilli()), Mentions: mentions}
	if clientID != "" {
		m.ClientID = &clientID
	}
	if replyToID == 0 && len(attachmentIDs) == 0 {
		r.tail = encodeTail(&m)
	}
	// Admission: a bounded number of senders may wait for the writer;
	// past that, the answer is at once, not after a wait in line.
	if s.queued.Add(1) > int64(s.opt.QueueSize) {
		s.queued.Add(-1)
		return Sent{}, s.refuse(RefusedQueueFull)
	}
	t := s.timer(2 * s.opt.CommitTimeout)
	defer func() {
		t.Stop()
		s.timers.Put(t)
	}()
	err = s.handOff(ctx, r, t)
	s.queued.Add(-1)
	if err != nil {
		return Sent{}, err
	}
	// Once taken, the send commits or fails with its batch. A caller who
	// stops waiting is told that it may have been stored; the writer's
	// answer goes to the buffered reply, so nothing waits for it. So is
	// one whose commit outlives its deadline by replySlack: a commit
	// stuck in an fsync that the disk does not finish, which no deadline
	// interrupts, must not hold its senders without an answer.
	t.Reset(s.opt.CommitTimeout + replySlack) // since Go 1.23, no stale tick survives a Reset
	var res sent
	select {
	case res = <-r.reply:
	case <-ctx.Done():
		return Sent{}, ErrMaybeStored
	case <-t.C:
		return Sent{}, ErrMaybeStored
	}
	if res.Err != nil {
		return Sent{}, res.Err
	}
	if res.json == nil { // the original of a repeated client_id
		one := []Message{res.Message}
		if err := s.withDetails(ctx, sender.ID, one); err != nil {
			return Sent{}, err
		}
		res.Message = one[0]
		if res.json, err = json.Marshal(&res.Message); err != nil {
			return Sent{}, fmt.Errorf("encode message: %w", err)
		}
	}
	return Sent{Message: res.Message, Created: res.Created, JSON: res.json}, nil
}

// mentions resolves the @names of content among convID's participants.
// A sender who is not a participant finds nobody, and the store refuses
// the message.
func (s *Service) mentions(ctx context.Context, convID int64, content string) ([]int64, error) {
	names := mentionNames(content)
	if len(names) == 0 {
		return nil, nil
	}
	found, err := s.store.ParticipantsNamed(ctx, convID, names)
	if err != nil {
		return nil, fmt.Errorf("mentions: %w", err)
	}
	return mentioned(names, found), nil
}

// Queued returns how many sends wait for the writer to take them: the
// length of the queue Options.QueueSize bounds.
func (s *Service) Queued() int { return int(s.queued.Load()) }

// handOff gives r to the writer. It returns ctx's error, ErrUnavailable
// (closed) or CodeOverloaded (not taken before t fires, twice the commit
// deadline, or before ctx's deadline) when the writer did not take r:
// then r is not stored.
func (s *Service) handOff(ctx context.Context, r *sendReq, t *time.Timer) error {
	select {
	case s.sends <- r:
		return nil
	case <-s.quit:
		return ErrUnavailable
	case <-ctx.Done():
		if ctx.Err() != context.DeadlineExceeded {
			return ctx.Err() // the caller went away: nobody to answer
		}
		// The caller's own deadline (a socket frame's) passed in line:
		// not stored either, and overloaded is what it should be told.
		s.refuse(RefusedQueueTimeout)
		return &Error{Code: CodeOverloaded, Detail: ErrOverloaded.Detail, Err: ctx.Err()}
	case <-t.C:
		return s.refuse(RefusedQueueTimeout)
	}
}

// timer returns a running timer that fires after d, reused from
// s.timers when one is there.
func (s *Service) timer(d time.Duration) *time.Timer {
	if t, ok := s.timers.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

// refuse reports a send refused for reason and returns ErrOverloaded.
func (s *Service) refuse(reason string) error {
	if s.opt.Refused != nil {
		s.opt.Refused(reason)
	}
	if n, ok := s.overload.Note(); ok {
		s.log.Warn("sends refused: the group commit is not keeping up (answered 503 overloaded)",
			"reason", reason, "refused", n, "queue_size", s.opt.QueueSize)
	}
	return ErrOverloaded
}

// replySlack is how long past the commit deadline a sender waits for
// the writer's answer before it answers ErrMaybeStored itself: time for
// a commit that ended at its deadline to be answered.
const replySlack = time.Second

// logEvery is the least time between two log lines of one Throttle.
const logEvery = 10 * time.Second

// Throttle counts events and says when one may be logged: the first,
// then at most one per logEvery, each with the number of events since
// the last line. Safe for concurrent use; the zero value is ready.
type Throttle struct {
	n    atomic.Int64
	next atomic.Int64 // unix nanoseconds before which nothing is logged
}

// Note counts one event and reports whether to log now, with the count
// it stands for.
func (t *Throttle) Note() (n int64, log bool) {
	t.n.Add(1)
	now := time.Now().UnixNano()
	next := t.next.Load()
	if now < next || !t.next.CompareAndSwap(next, now+int64(logEvery)) {
		return 0, false
	}
	return t.n.Swap(0), true
}

// validAttachmentIDs checks the form of a send's attachment_ids: at most
// MaxAttachments ids, each positive and named once.
func validAttachmentIDs(ids []int64) error {
	if len(ids) > MaxAttachments {
		return InvalidField("attachment_ids", fmt.Sprintf("Ensure this field has no more than %d elements.", MaxAttachments))
	}
	for i, id := range ids {
		if id <= 0 || slices.Contains(ids[:i], id) {
			return ErrAttachments
		}
	}
	return nil
}

func validContent(content string) (string, error) {
	if !utf8.ValidString(content) {
		return "", InvalidField("content", "Must be valid UTF-8.")
	}
	c := strings.TrimSpace(content)
	switch n := utf8.RuneCountInString(c); {
	case n == 0:
		return "", InvalidField("content", "This field may not be blank.")
	case n > MaxContent:
		return "", InvalidField("content", fmt.Sprintf("Ensure this field has no more than %d characters.", MaxContent))
	}
	return c, nil
}

// Messages returns a page of a conversation's history for a participant.
func (s *Service) Messages(ctx context.Context, viewer, convID int64, q PageQuery) (Page, error) {
	if q.Before > 0 && q.After > 0 {
		return Page{}, InvalidField("before", "Use either before or after, not both.")
	}
	if q.Limit == 0 {
		q.Limit = 50
	}
	if q.Limit < 1 || q.Limit > 100 {
		return Page{}, InvalidField("limit", "Must be between 1 and 100.")
	}
	if _, _, err := s.store.Membership(ctx, convID, viewer); err != nil {
		return Page{}, err
	}
	p, err := s.store.Messages(ctx, convID, q)
	if err != nil {
		return Page{}, err
	}
	return p, s.withDetails(ctx, viewer, p.Results)
}

// Missed returns up to limit messages of convID after id afterID, for
// recovery, with their reactions as viewer sees them; viewer must be a
// participant.
func (s *Service) Missed(ctx context.Context, viewer, convID, afterID int64, limit int) (Page, error) {
	p, err := s.store.Messages(ctx, convID, PageQuery{After: afterID, FromStart: afterID == 0, Limit: limit})
	if err != nil {
		return Page{}, err
	}
	if p.HasMore {
		return p, nil // not replayed: no reactions to read
	}
	return p, s.withDetails(ctx, viewer, p.Results)
}

// withDetails sets the reactions of msgs, as viewer sees them (Me for
// viewer; left out for 0, in what goes to many sockets), and their
// attachments: one query for each, for all of them.
func (s *Service) withDetails(ctx context.Context, viewer int64, msgs []Message) error {
	return withDetails(ctx, s.store, s.opt.AttachmentURLs, viewer, msgs)
}

// withDetails sets what a message object carries beside its row: its
// reactions (with Me for viewer, unless 0) and its attachments, whose
// URLs sign sets.
func withDetails(ctx context.Context, store Store, sign func(*Attachment), viewer int64, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	ids := make([]int64, len(msgs))
	for i := range msgs {
		ids[i] = msgs[i].ID
	}
	rs, err := store.Reactions(ctx, viewer, ids)
	if err != nil {
		return err
	}
	as, err := store.Attachments(ctx, ids)
	if err != nil {
		return err
	}
	for i := range msgs {
		msgs[i].Reactions = rs[msgs[i].ID]
		msgs[i].Attachments = as[msgs[i].ID]
		signAttachments(sign, msgs[i].Attachments)
	}
	return nil
}

// signAttachments sets the URLs of as with sign (none when nil).
func signAttachments(sign func(*Attachment), as Attachments) {
	if sign == nil {
		return
	}
	for i := range as {
		sign(&as[i])
	}
}

// messageFor loads a message that viewer may see: not a participant looks
// like not found.
func (s *Service) messageFor(ctx context.Context, viewer, msgID int64) (Message, string, bool, error) {
	m, err := s.store.Message(ctx, msgID)
	if err != nil {
		return Message{}, "", false, err
	}
	role, group, err := s.store.Membership(ctx, m.ConversationID, viewer)
	if err != nil {
		return Message{}, "", false, err
	}
	return m, role, group, nil
}

// EditMessage changes the content of the caller's own message.
func (s *Service) EditMessage(ctx context.Context, editor, msgID int64, content string) (Message, error) {
	content, err := validContent(content)
	if err != nil {
		return Message{}, err
	}
	m, _, _, err := s.messageFor(ctx, editor, msgID)
	if err != nil {
		return Message{}, err
	}
	if m.Sender.ID != editor {
		return Message{}, Errorf(CodeForbidden, "You can only edit your own messages.")
	}
	if m.IsDeleted {
		return Message{}, InvalidField("content", "A deleted message cannot be edited.")
	}
	// An edit recomputes the mentions, so that they say what the content
	// says; it notifies nobody (a mention added by an edit is seen live
	// in message_updated, not as a notification).
	mentions, err := s.mentions(ctx, m.ConversationID, content)
	if err != nil {
		return Message{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err = s.store.EditMessage(ctx, msgID, content, mentions, s.now())
	if err != nil {
		if errors.Is(err, ErrNotFound) { // deleted meanwhile
			return Message{}, InvalidField("content", "A deleted message cannot be edited.")
		}
		return Message{}, err
	}
	// The event carries the current reactions, without Me (one payload
	// for every socket); the editor's answer has their own.
	one := []Message{m}
	if err := s.withDetails(ctx, 0, one); err != nil {
		s.log.Error("reactions of an edited message", "err", err, "message_id", m.ID)
	}
	s.pub.Publish(hub.ConversationTopic(m.ConversationID), ChangeEvent(&one[0]))
	if err := s.withDetails(ctx, editor, one); err != nil {
		return Message{}, err
	}
	return one[0], nil
}

// DeleteMessage tombstones a message: its author, or an admin of a group.
func (s *Service) DeleteMessage(ctx context.Context, deleter, msgID int64) error {
	m, role, group, err := s.messageFor(ctx, deleter, msgID)
	if err != nil {
		return err
	}
	if m.Sender.ID != deleter && !(group && role == RoleAdmin) {
		return Errorf(CodeForbidden, "You can only delete your own messages.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, changed, err := s.store.DeleteMessage(ctx, msgID, s.now())
	if err != nil || !changed {
		return err
	}
	s.pub.Publish(hub.ConversationTopic(m.ConversationID), ChangeEvent(&m))
	return nil
}

// React adds (add) or removes user's reaction emoji to message msgID, as
// a participant of its conversation, and returns the message with its
// reactions as user sees them. A change is published as one
// reaction_updated event to the conversation; a reaction already there
// (add) or not there (remove) changes nothing and publishes nothing.
func (s *Service) React(ctx context.Context, user UserLite, msgID int64, emoji string, add bool) (Message, error) {
	if err := validEmoji(emoji); err != nil {
		return Message{}, err
	}
	m, _, _, err := s.messageFor(ctx, user.ID, msgID)
	if err != nil {
		return Message{}, err
	}
	if m.IsDeleted {
		return Message{}, InvalidField("message", "A deleted message takes no reactions.")
	}
	s.mu.Lock()
	rc, err := s.store.React(ctx, msgID, user.ID, emoji, add, s.now())
	if err == nil && rc.Changed {
		// Ordered by its version among the conversation's changes, like
		// every other (hub.Event.Version).
		ev := encode(EventReactionUpdated, rc.ConversationID,
			reactionEvent{EventReactionUpdated, rc.ConversationID, msgID, emoji, rc.Count, user.ID, add, rc.Version})
		ev.MessageID, ev.Version, ev.Prev = msgID, rc.Version, rc.Prev
		s.pub.Publish(hub.ConversationTopic(rc.ConversationID), ev)
	}
	s.mu.Unlock()
	if err != nil {
		return Message{}, err
	}
	if m, err = s.store.Message(ctx, msgID); err != nil {
		return Message{}, err
	}
	one := []Message{m}
	if err := s.withDetails(ctx, user.ID, one); err != nil {
		return Message{}, err
	}
	return one[0], nil
}

// MarkRead moves the reader's read mark forward to msgID; a mark that would
// move backwards changes nothing and is not broadcast.
func (s *Service) MarkRead(ctx context.Context, reader, convID, msgID int64) (ReadMark, error) {
	if msgID <= 0 {
		return ReadMark{}, InvalidField("message_id", "A valid message id is required.")
	}
	if _, _, err := s.store.Membership(ctx, convID, reader); err != nil {
		return ReadMark{}, err
	}
	m, err := s.store.Message(ctx, msgID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return ReadMark{}, err // not the client's fault: a database that did not answer
	}
	if err != nil || m.ConversationID != convID {
		return ReadMark{}, InvalidField("message_id", "No such message in this conversation.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mark, moved, err := s.store.MarkRead(ctx, convID, reader, msgID)
	if err != nil || !moved {
		return mark, err
	}
	s.pub.Publish(hub.ConversationTopic(convID), encode(EventReadReceipt, convID,
		readEvent{EventReadReceipt, convID, reader, msgID, Time{s.now()}}))
	return mark, nil
}

// Typing tells the conversation's other connections that user is (or
// stopped) typing. origin is the connection to leave out.
func (s *Service) Typing(ctx context.Context, user UserLite, convID int64, isTyping bool, origin uint64) error {
	if _, _, err := s.store.Membership(ctx, convID, user.ID); err != nil {
		return err
	}
	ev := encode(EventTyping, convID, typingEvent{EventTyping, convID, user.ID, user.Username, isTyping})
	ev.Sheddable, ev.Origin, ev.Actor = true, origin, user.ID // a socket of someone who blocks user drops it
	s.pub.Publish(hub.ConversationTopic(convID), ev)
	return nil
}

// Presence publishes a user's status ("online" or "offline") to every
// conversation they are in.
func (s *Service) Presence(ctx context.Context, userID int64, status string) error {
	ids, err := s.store.ConversationIDs(ctx, userID)
	if err != nil {
		return err
	}
	ev := encode(EventPresence, 0, presenceEvent{EventPresence, userID, status})
	ev.Sheddable = true
	for _, id := range ids {
		s.pub.Publish(hub.ConversationTopic(id), ev)
	}
	return nil
}

// CheckMember returns ErrNotFound unless userID is in convID.
func (s *Service) CheckMember(ctx context.Context, convID, userID int64) error {
	_, _, err := s.store.Membership(ctx, convID, userID)
	return err
}

// OnlineUserIDs lists the participants of convID that are online.
func (s *Service) OnlineUserIDs(ctx context.Context, convID int64) ([]int64, error) {
	ids, err := s.store.ParticipantIDs(ctx, convID)
	if err != nil {
		return nil, err
	}
	on := s.pub.OnlineAmong(ctx, ids)
	if on == nil {
		on = []int64{} // the contract's empty list, not null
	}
	return on, nil
}

// ConversationVersion returns convID's version (Conversation.Version);
// the caller must be a participant.
func (s *Service) ConversationVersion(ctx context.Context, convID int64) (int64, error) {
	m, err := s.store.LastVersions(ctx, []int64{convID})
	if err != nil {
		return 0, err
	}
	v, ok := m[convID]
	if !ok {
		return 0, ErrNotFound
	}
	return v, nil
}

// Changes returns the messages of convID created or changed after
// version after and up to version upTo, as viewer sees them, ascending,
// at most limit: a join's since_version replay. The caller must be a
// participant.
func (s *Service) Changes(ctx context.Context, viewer, convID, after, upTo int64, limit int) ([]Change, error) {
	changes, err := s.store.Changes(ctx, convID, after, upTo+1, limit)
	if err != nil {
		return nil, err
	}
	return changes, changeDetails(ctx, s.store, s.opt.AttachmentURLs, viewer, changes)
}

// changeDetails sets the Reactions of the messages of changes, as
// viewer sees them: one query for all of them.
func changeDetails(ctx context.Context, store Store, sign func(*Attachment), viewer int64, changes []Change) error {
	msgs := make([]Message, len(changes))
	for i := range changes {
		msgs[i] = changes[i].Message
	}
	if err := withDetails(ctx, store, sign, viewer, msgs); err != nil {
		return err
	}
	for i := range changes {
		changes[i].Message.Reactions = msgs[i].Reactions
		changes[i].Message.Attachments = msgs[i].Attachments
	}
	return nil
}
