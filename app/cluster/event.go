package cluster

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/confab/confab/app/hub"
)

// An event on the channel is a small binary header, then the frame as the
// publishing node encoded it:
//
//	version (1) | node (16) | flags | topic id, conversation id, message
//	id, version, previous version, actor, sent (varints) | [users: count (uvarint), ids (varints)] |
//	type length (uvarint) | type | frame
//
// An event for many users' topics (flagUsers) lists them instead of
// naming one topic.
const (
	// eventVersion 1 carried a seq where 2 carries two versions; 3
	// adds the actor. A node drops the events of another format (nodes
	// of one cluster run one release).
	eventVersion = 3
	nodeLen      = 16

	flagUser      = 1 << 0
	flagSheddable = 1 << 1
	flagUsers     = 1 << 2

	// maxUsers bounds a decoded user list (a group's members).
	maxUsers = 1 << 20
)

func encodeEvent(node string, t hub.Topic, users []int64, ev *hub.Event, sent time.Time) []byte {
	b := make([]byte, 0, 2+nodeLen+(7+len(users))*binary.MaxVarintLen64+len(ev.Type)+len(ev.Data)+1)
	b = append(b, eventVersion)
	b = append(b, node...)
	var flags byte
	switch {
	case users != nil:
		flags |= flagUsers
	case !t.IsConversation():
		flags |= flagUser
	}
	if ev.Sheddable {
		flags |= flagSheddable
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, t.ID())
	b = binary.AppendVarint(b, ev.ConversationID)
	b = binary.AppendVarint(b, ev.MessageID)
	b = binary.AppendVarint(b, ev.Version)
	b = binary.AppendVarint(b, ev.Prev)
	b = binary.AppendVarint(b, ev.Actor)
	b = binary.AppendVarint(b, sent.UnixNano())
	if users != nil {
		b = binary.AppendUvarint(b, uint64(len(users)))
		for _, id := range users {
			b = binary.AppendVarint(b, id)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(ev.Type)))
	b = append(b, ev.Type...)
	return append(b, ev.Data...)
}

var errBadEvent = errors.New("malformed cluster event")

// decodeEvent parses an event. Origin is left zero: connection ids are
// per node, so another node's origin names none of this node's.
// users is non-nil for an event to many users' topics.
func decodeEvent(p string) (node string, t hub.Topic, users []int64, ev *hub.Event, sent time.Time, err error) {
	if len(p) < 2+nodeLen || p[0] != eventVersion {
		return "", t, nil, nil, sent, errBadEvent
	}
	node = p[1 : 1+nodeLen]
	flags := p[1+nodeLen]
	b := []byte(p[2+nodeLen:])
	var v [7]int64
	for i := range v {
		x, n := binary.Varint(b)
		if n <= 0 {
			return "", t, nil, nil, sent, errBadEvent
		}
		v[i], b = x, b[n:]
	}
	if flags&flagUsers != 0 {
		count, n := binary.Uvarint(b)
		if n <= 0 || count > maxUsers || count > uint64(len(b)) {
			return "", t, nil, nil, sent, errBadEvent
		}
		b = b[n:]
		users = make([]int64, count)
		for i := range users {
			x, n := binary.Varint(b)
			if n <= 0 {
				return "", t, nil, nil, sent, errBadEvent
			}
			users[i], b = x, b[n:]
		}
	}
	tl, n := binary.Uvarint(b)
	if n <= 0 || tl > uint64(len(b)-n) {
		return "", t, nil, nil, sent, errBadEvent
	}
	b = b[n:]
	ev = &hub.Event{
		Type:           string(b[:tl]),
		Data:           b[tl:],
		ConversationID: v[1],
		MessageID:      v[2],
		Version:        v[3],
		Prev:           v[4],
		Actor:          v[5],
		Sheddable:      flags&flagSheddable != 0,
	}
	if flags&flagUser != 0 {
		t = hub.UserTopic(v[0])
	} else {
		t = hub.ConversationTopic(v[0])
	}
	if v[6] > 0 {
		sent = time.Unix(0, v[6])
	}
	return node, t, users, ev, sent, nil
}
