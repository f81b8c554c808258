package ws

import (
	"testing"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/hub"
)

// TestJoins_States walks the join/recovery state machine through every
// path: each step is an operation and what it must answer.
func TestJoins_States(t *testing.T) {
	ev := func(conv int64) *hub.Event {
		return &hub.Event{Type: chat.EventNewMessage, ConversationID: conv}
	}
	replayA := []chat.Message{{ID: 5}}
	replayB := []chat.Message{{ID: 7}, {ID: 8}}
	replyA, replyB := &hub.Event{Type: "joined"}, &hub.Event{Type: "joined"}

	type step struct {
		name string
		do   func(j *joins) any
		want any
	}
	begin := func(conv int64, recover bool) step {
		return step{"begin", func(j *joins) any { return j.begin(conv, recover) == nil }, true}
	}
	beginRefused := func(conv int64) step {
		return step{"begin refused", func(j *joins) any {
			fe := j.begin(conv, false)
			return fe != nil && fe.code == codeInvalid
		}, true}
	}
	hold := func(conv int64, want holdResult) step {
		return step{"hold", func(j *joins) any { return j.hold(ev(conv)) }, want}
	}
	ready := func(replay []chat.Message, reply *hub.Event, want bool) step {
		return step{"ready", func(j *joins) any { return j.ready(1, recovery{replay: replay, reply: reply, after: 4}) }, want}
	}
	// take answers "none" or "<replay len>/<reply>/<held>/<after>".
	take := func(wantReplay []chat.Message, wantReply *hub.Event, wantHeld int) step {
		return step{"take", func(j *joins) any {
			r, held, ok := j.take(1)
			if !ok {
				return "none"
			}
			if len(r.replay) != len(wantReplay) || r.reply != wantReply || len(held) != wantHeld || r.after != 4 {
				return "wrong"
			}
			return "taken"
		}, "taken"}
	}
	takeNone := step{"take", func(j *joins) any { _, _, ok := j.take(1); return ok }, false}
	leave := func(want bool) step {
		return step{"leave", func(j *joins) any { return j.leave(1) }, want}
	}
	recovering := func(want bool) step {
		return step{"recovering", func(j *joins) any { return j.recovering(1) }, want}
	}

	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"not joined: dropped", []step{hold(1, holdDrop)}},
		{"joined without recovery: live at once", []step{begin(1, false), hold(1, holdSend), hold(2, holdDrop), recovering(false)}},
		{"recovery holds live events until taken", []step{
			begin(1, true), hold(1, holdHeld), hold(1, holdHeld), recovering(true),
			ready(replayA, replyA, true), hold(1, holdHeld),
			take(replayA, replyA, 3), recovering(false), hold(1, holdSend), takeNone,
		}},
		{"recovered with nothing missed", []step{
			begin(1, true), ready(nil, replyA, true), take(nil, replyA, 0), hold(1, holdSend),
		}},
		{"nothing to take before ready", []step{begin(1, true), takeNone, hold(1, holdHeld), recovering(true)}},
		{"held past the queue size: overflow", []step{
			begin(1, true), hold(1, holdHeld), hold(1, holdHeld), hold(1, holdHeld), hold(1, holdOverflow),
		}},
		{"failure after subscribing: leave clears the recovery", []step{
			begin(1, true), hold(1, holdHeld), leave(true), recovering(false), hold(1, holdDrop),
			// joined again without recovery: live, nothing held
			begin(1, false), hold(1, holdSend), takeNone,
		}},
		{"left meanwhile: the replay is not taken", []step{
			begin(1, true), leave(true), ready(replayA, replyA, false), takeNone, hold(1, holdDrop), leave(false),
		}},
		{"left after ready: nothing is sent", []step{
			begin(1, true), ready(replayA, replyA, true), leave(true), takeNone,
		}},
		{"a newer recovery replaces one under way", []step{
			begin(1, true), hold(1, holdHeld), ready(replayA, replyA, true),
			begin(1, true), takeNone, hold(1, holdHeld),
			ready(replayB, replyB, true), take(replayB, replyB, 1), hold(1, holdSend),
		}},
		{"a join without recovery keeps one under way", []step{
			begin(1, true), begin(1, false), recovering(true), hold(1, holdHeld),
		}},
		{"too many joined", []step{
			begin(1, false), begin(2, false), beginRefused(3), begin(1, true),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJoins(2, 3)
			for i, s := range tc.steps {
				if got := s.do(&j); got != s.want {
					t.Fatalf("step %d (%s) = %v, want %v", i, s.name, got, s.want)
				}
			}
		})
	}
}

func TestJoins_ClearForgetsEverything(t *testing.T) {
	j := newJoins(10, 10)
	j.begin(1, false)
	j.begin(2, true)
	ids := j.clear()
	if len(ids) != 2 || j.joined(1) || j.joined(2) || j.hold(&hub.Event{ConversationID: 2}) != holdDrop {
		t.Fatalf("clear returned %v and left %v", ids, j.m)
	}
}
