package notify_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/notify"
)

func TestParseMute_FormsAndRefusals(t *testing.T) {
	at := time.Date(2026, 12, 1, 8, 0, 0, 123456789, time.UTC)
	tests := []struct {
		raw  string
		want notify.Mute
	}{
		{`null`, notify.Mute{}},
		{``, notify.Mute{}},
		{`"forever"`, notify.Mute{Forever: true}},
		{`"2026-12-01T10:00:00.123456789+02:00"`, notify.Mute{Until: at.Truncate(time.Millisecond)}},
	}
	for _, tt := range tests {
		got, err := notify.ParseMute(json.RawMessage(tt.raw))
		if err != nil || got.Forever != tt.want.Forever || !got.Until.Equal(tt.want.Until) {
			t.Errorf("ParseMute(%s) = %+v, %v; want %+v", tt.raw, got, err, tt.want)
		}
	}
	for _, raw := range []string{`"Forever"`, `"2026-12-01"`, `12`, `{}`, `"tomorrow"`} {
		_, err := notify.ParseMute(json.RawMessage(raw))
		var ce *chat.Error
		if !errors.As(err, &ce) || ce.Fields["muted_until"] == nil {
			t.Errorf("ParseMute(%s): %v, want invalid muted_until", raw, err)
		}
	}
}

func TestMuteOf_EndedIsNotMuted(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if m := notify.MuteOf(notify.MutedForever, now); !m.Forever {
		t.Errorf("forever: %+v", m)
	}
	if m := notify.MuteOf(now.UnixMilli(), now); m != (notify.Mute{}) {
		t.Errorf("ending now: %+v", m)
	}
	if m := notify.MuteOf(0, now); m != (notify.Mute{}) {
		t.Errorf("never muted: %+v", m)
	}
	later := now.Add(time.Hour)
	if m := notify.MuteOf(later.UnixMilli(), now); !m.Until.Equal(later) {
		t.Errorf("an hour: %+v", m)
	}
	for m, want := range map[notify.Mute]string{{}: `null`, {Forever: true}: `"forever"`, {Until: later}: `"2026-03-01T13:00:00.000Z"`} {
		if b, _ := json.Marshal(m); string(b) != want {
			t.Errorf("%+v encodes as %s, want %s", m, b, want)
		}
	}
}
