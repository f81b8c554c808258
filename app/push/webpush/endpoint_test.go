package webpush_test

import (
	"errors"
	"testing"

	"github.com/confab/confab/app/push/webpush"
)

func TestCheckEndpoint_Default(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string
		ok       bool
	}{
		// What the four push services hand out.
		{"fcm", "https://fcm.googleapis.com/fcm/send/dGhpcyBpcyBhIHRva2Vu:APA91bH", true},
		{"mozilla", "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABh", true},
		{"apple", "https://web.push.apple.com/QGuQyavXutnMcZ-gbRBk", true},
		{"windows", "https://wns2-par02p.notify.windows.com/w/?token=BQYAAAB%2fKx", true},
		{"windows upper case host", "https://DB5P.Notify.Windows.com/w/?token=x", true},
		{"explicit default port", "https://fcm.googleapis.com:443/fcm/send/x", true},

		// Look-alike hosts.
		{"suffix added to host", "https://fcm.googleapis.com.evil.com/fcm/send/x", false},
		{"prefix added to host", "https://evilfcm.googleapis.com/fcm/send/x", false},
		{"sub-domain of exact host", "https://a.fcm.googleapis.com/x", false},
		{"trailing dot host", "https://fcm.googleapis.com./x", false},
		{"host as userinfo", "https://fcm.googleapis.com@evil.com/x", false},
		{"userinfo before host", "https://user:pw@fcm.googleapis.com/x", false},
		{"backslash trick", `https://evil.com\@fcm.googleapis.com/x`, false},
		{"windows bare domain", "https://notify.windows.com/w/", false},
		{"windows two labels", "https://a.b.notify.windows.com/w/", false},
		{"windows look-alike", "https://evilnotify.windows.com/w/", false},
		{"windows suffix added", "https://db5p.notify.windows.com.evil.com/w/", false},
		{"windows empty label", "https://.notify.windows.com/w/", false},
		{"windows literal wildcard", "https://*.notify.windows.com/w/", false},
		{"ip address", "https://142.250.1.1/fcm/send/x", false},

		// Scheme and port.
		{"plain http", "http://fcm.googleapis.com/fcm/send/x", false},
		{"other port", "https://fcm.googleapis.com:8443/fcm/send/x", false},
		{"empty port", "https://fcm.googleapis.com:/fcm/send/x", false},
		{"no scheme", "//fcm.googleapis.com/x", false},
		{"opaque", "https:fcm.googleapis.com/x", false},
		{"javascript", "javascript:alert(1)", false},

		// Paths that could resolve elsewhere on the way.
		{"dot dot", "https://fcm.googleapis.com/fcm/../x", false},
		{"escaped dot dot", "https://fcm.googleapis.com/fcm/%2e%2E/x", false},
		{"dot", "https://fcm.googleapis.com/./x", false},
		{"escaped slash", "https://fcm.googleapis.com/a%2Fb", false},
		{"escaped backslash", "https://fcm.googleapis.com/a%5cb", false},
		{"double slash", "https://fcm.googleapis.com//evil.com/x", false},
		{"fragment", "https://fcm.googleapis.com/x#y", false},
		{"space", "https://fcm.googleapis.com/a b", false},
		{"newline", "https://fcm.googleapis.com/a\nHost: evil.com", false},
		{"non-ascii", "https://fcm.googleapis.com/é", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webpush.CheckEndpoint(tt.endpoint, nil)
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok {
				if err == nil {
					t.Fatal("allowed")
				}
				if !errors.Is(err, webpush.ErrNotAllowed) {
					t.Fatalf("err = %v, want ErrNotAllowed", err)
				}
			}
		})
	}
}

func TestCheckEndpoint_Prefix(t *testing.T) {
	tests := []struct {
		name     string
		allowed  string
		endpoint string
		ok       bool
	}{
		{"path prefix", "https://push.example.com/push/", "https://push.example.com/push/abc", true},
		{"outside path prefix", "https://push.example.com/push/", "https://push.example.com/admin/abc", false},
		{"dot dot out of prefix", "https://push.example.com/push/", "https://push.example.com/push/../admin", false},
		{"named port", "http://127.0.0.1:8080/", "http://127.0.0.1:8080/push/x", true},
		{"other port than named", "http://127.0.0.1:8080/", "http://127.0.0.1:8081/push/x", false},
		{"default port when prefix names one", "http://127.0.0.1:8080/", "http://127.0.0.1/push/x", false},
		{"http prefix refuses https", "http://127.0.0.1:8080/", "https://127.0.0.1:8080/push/x", false},
		{"https prefix refuses http", "https://push.example.com/", "http://push.example.com/x", false},
		{"malformed prefix", "https://push.example.com:bad/", "https://push.example.com/x", false},
		{"prefix with userinfo", "https://u@push.example.com/", "https://push.example.com/x", false},
		{"wildcard too broad", "https://*.com/", "https://evil.com/x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webpush.CheckEndpoint(tt.endpoint, []string{tt.allowed})
			if tt.ok != (err == nil) {
				t.Fatalf("CheckEndpoint(%q, %q) = %v, want ok %v", tt.endpoint, tt.allowed, err, tt.ok)
			}
		})
	}
}

func TestCheckAllowed(t *testing.T) {
	if err := webpush.CheckAllowed(webpush.DefaultAllowed()); err != nil {
		t.Errorf("the default list: %v", err)
	}
	if err := webpush.CheckAllowed([]string{"http://127.0.0.1:9999/"}); err != nil {
		t.Errorf("a local stand-in: %v", err)
	}
	for _, bad := range []string{"ftp://x.example/", "https://", "https://a.example/?q=1", "https://*.com/", "https://x*.example.com/"} {
		if err := webpush.CheckAllowed([]string{"https://fcm.googleapis.com/", bad}); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}
