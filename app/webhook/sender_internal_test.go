package webhook

import (
	"net/http"
	"testing"
	"time"
)

func TestNewSender_DefaultClientHasDeadlines(t *testing.T) {
	s := NewSender("https://example.com/hook", NewSecret(), nil)
	if s.client.Timeout != 15*time.Second {
		t.Errorf("client Timeout = %v, want 15s", s.client.Timeout)
	}
	if s.client.CheckRedirect == nil {
		t.Error("client follows redirects")
	}
	tr, ok := s.client.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport is %T, want *http.Transport", s.client.Transport)
	}
	if tr.DialContext == nil {
		t.Error("transport has no dialer with a timeout")
	}
	if tr.TLSHandshakeTimeout != 5*time.Second {
		t.Errorf("TLSHandshakeTimeout = %v, want 5s", tr.TLSHandshakeTimeout)
	}
	if tr.ResponseHeaderTimeout != 10*time.Second {
		t.Errorf("ResponseHeaderTimeout = %v, want 10s", tr.ResponseHeaderTimeout)
	}
}
