package webhook_test

import (
	"testing"

	"github.com/confab/confab/app/webhook"
)

func TestSet(t *testing.T) {
	var off webhook.Set
	for _, typ := range webhook.Events {
		if off.Has(typ) {
			t.Errorf("zero Set has %s", typ)
		}
	}
	all := webhook.NewSet(webhook.Events)
	for _, typ := range webhook.Events {
		if !all.Has(typ) {
			t.Errorf("set of every event lacks %s", typ)
		}
	}
	some := webhook.NewSet([]string{"message.deleted", "user.created", "nonsense"})
	for _, typ := range webhook.Events {
		want := typ == "message.deleted" || typ == "user.created"
		if some.Has(typ) != want {
			t.Errorf("Has(%s) = %v, want %v", typ, !want, want)
		}
	}
	if all.Has("message.sent") {
		t.Error("Has of an unknown type is true")
	}
}

func TestCheckURL(t *testing.T) {
	for in, ok := range map[string]bool{
		"https://hooks.example.com/confab": true,
		"http://127.0.0.1:9000/":           true,
		"ftp://example.com/":               false,
		"https:///path":                    false,
		"https://example.com/%zz":          false,
	} {
		if err := webhook.CheckURL(in); (err == nil) != ok {
			t.Errorf("CheckURL(%q) = %v, want ok=%v", in, err, ok)
		}
	}
}
