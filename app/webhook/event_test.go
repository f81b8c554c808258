package webhook_test

import (
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/confab/confab/app/webhook"
)

func TestParseEvents(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr []string // substrings of the error; nil means no error
	}{
		{"empty is all", "", webhook.Events, nil},
		{"spaces only is all", "  ", webhook.Events, nil},
		{"star is all", "*", webhook.Events, nil},
		{"star with spaces", " * ", webhook.Events, nil},
		{"one", "message.created", []string{"message.created"}, nil},
		{"spaces ignored, order of Events, duplicates once",
			" user.created , message.deleted,message.created ,user.created,",
			[]string{"message.created", "message.deleted", "user.created"}, nil},
		{"unknown names it and lists valid ones", "message.created, message.sent",
			nil, []string{`WEBHOOK_EVENTS: unknown event "message.sent"`, strings.Join(webhook.Events, ", ")}},
		{"names are exact", "Message.Created", nil, []string{`"Message.Created"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := webhook.ParseEvents(tt.in)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("ParseEvents(%q) = %v, want an error", tt.in, got)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseEvents(%q): %v", tt.in, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ParseEvents(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseEvents_ReturnsACopy(t *testing.T) {
	got, err := webhook.ParseEvents("*")
	if err != nil {
		t.Fatal(err)
	}
	got[0] = "changed"
	if webhook.Events[0] != "message.created" {
		t.Fatal("changing ParseEvents' result changed Events")
	}
}

func TestEventBody(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	tests := []struct {
		name    string
		event   webhook.Event
		want    string
		wantErr string
	}{
		{
			name: "milliseconds in UTC",
			event: webhook.Event{Type: "message.created",
				Timestamp: time.Date(2026, 3, 4, 13, 5, 6, 789_654_321, paris),
				Data:      json.RawMessage(` {"id": 7, "text": "<b>&</b>"} `)},
			want: `{"type":"message.created","timestamp":"2026-03-04T12:05:06.789Z","data":{"id":7,"text":"<b>&</b>"}}`,
		},
		{
			name:  "whole second keeps three digits, nil data is null",
			event: webhook.Event{Type: "user.created", Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
			want:  `{"type":"user.created","timestamp":"2026-01-02T03:04:05.000Z","data":null}`,
		},
		{
			name:    "unknown type",
			event:   webhook.Event{Type: "message.sent", Timestamp: time.Now()},
			wantErr: `webhook event "message.sent": unknown type`,
		},
		{
			name:    "no timestamp",
			event:   webhook.Event{Type: "user.created"},
			wantErr: "no timestamp",
		},
		{
			name:    "invalid data",
			event:   webhook.Event{Type: "user.created", Timestamp: time.Now(), Data: json.RawMessage(`{"id":`)},
			wantErr: "encode body",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.event.Body()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Body() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Body(): %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("Body() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestNewID_UniqueAndURLSafe(t *testing.T) {
	shape := regexp.MustCompile(`^msg_[A-Z2-7]{26}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := webhook.NewID()
		if !shape.MatchString(id) {
			t.Fatalf("NewID() = %q, want msg_ and 26 base32 characters", id)
		}
		if url.PathEscape(id) != id || url.QueryEscape(id) != id {
			t.Fatalf("NewID() = %q is not URL-safe", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}
