package blob_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/confab/confab/app/blob"
)

func TestCheckKey(t *testing.T) {
	tests := []struct {
		key  string
		want string // a word of the error, "" for valid
	}{
		{"a", ""},
		{"ab/cd/0123456789abcdef.jpg", ""},
		{"x-y_z.0/a.b.c", ""},
		{strings.Repeat("a", 200), ""},
		{"", "empty"},
		{strings.Repeat("a", 201), "longer"},
		{"../x", ".."},
		{"a..b", ".."},
		{"/x", "empty name"},
		{"a//b", "empty name"},
		{"a/", "empty name"},
		{".x", `starts with "."`},
		{"a/.tmp-x", `starts with "."`},
		{"Upper", "character"},
		{"a b", "character"},
		{"a\\b", "character"},
		{"é", "character"},
	}
	for _, tt := range tests {
		err := blob.CheckKey(tt.key)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("CheckKey(%q) = %v, want nil", tt.key, err)
		case tt.want != "" && !errors.Is(err, blob.ErrBadKey):
			t.Errorf("CheckKey(%q) = %v, want ErrBadKey", tt.key, err)
		case tt.want != "" && !strings.Contains(err.Error(), tt.want):
			t.Errorf("CheckKey(%q) = %v, want it to say %q", tt.key, err, tt.want)
		}
	}
}
