package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetrics_WebSocketCounts(t *testing.T) {
	m := New(Options{})
	m.ConnOpened()
	m.ConnOpened()
	m.ConnClosed(4008)
	m.ConnClosed(4321) // not a code Confab knows: "other"
	m.FrameIn("ping")
	m.FrameIn("ping")
	m.FrameIn("no_such_type")
	m.FrameOut("message_ack")
	m.Dropped(DropSlow)
	m.Dropped(DropRateLimited)
	m.Dropped(DropRateLimited)

	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"open", testutil.ToFloat64(m.wsOpen), 0},
		{"closed 4008", testutil.ToFloat64(m.wsClosed[4008]), 1},
		{"closed other", testutil.ToFloat64(m.wsClosed[otherCode]), 1},
		{"in ping", testutil.ToFloat64(m.framesIn["ping"]), 2},
		{"in other", testutil.ToFloat64(m.framesIn[otherType]), 1},
		{"out message_ack", testutil.ToFloat64(m.framesOut["message_ack"]), 1},
		{"dropped slow", testutil.ToFloat64(m.dropped[DropSlow]), 1},
		{"dropped rate_limited", testutil.ToFloat64(m.dropped[DropRateLimited]), 2},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	// Odd frame types never become series of their own.
	n, err := testutil.GatherAndCount(m.reg, "confab_ws_frames_received_total")
	if err != nil {
		t.Fatal(err)
	}
	if want := len(frameTypes()) + 1; n != want {
		t.Errorf("%d frames_received series, want %d", n, want)
	}
}

func TestMetrics_HotPathsDoNotAllocate(t *testing.T) {
	m := New(Options{})
	store := m.StoreObserver("messages")
	if n := testing.AllocsPerRun(100, func() {
		m.FrameIn("new_message")
		m.FrameOut("new_message")
		m.ConnOpened()
		m.ConnClosed(1000)
		m.ObserveSend(1000)
		store(1000)
	}); n != 0 {
		t.Errorf("%v allocations per run", n)
	}
}
