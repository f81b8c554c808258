package chat

import (
	"slices"
	"testing"
)

func TestMentionNames_WhatCountsAsAnAtName(t *testing.T) {
	for _, tc := range []struct {
		content string
		want    []string
	}{
		{"no names", nil},
		{"@Ann hi", []string{"ann"}},
		{"hi @ann and @ANN", []string{"ann"}},
		{"mail me@example.com", nil},
		{"(@bob) @cy_1, @dan.", []string{"bob", "cy_1", "dan.", "dan"}},
		{"@ab is too short, @ alone", nil},
		{"@éva is not a username", nil},
	} {
		if got := mentionNames(tc.content); !slices.Equal(got, tc.want) {
			t.Errorf("mentionNames(%q) = %q, want %q", tc.content, got, tc.want)
		}
	}
}

func TestMentioned_OrderOnceAndBounded(t *testing.T) {
	found := map[string]int64{"ann": 1, "bob": 2, "dan": 3}
	if got := mentioned([]string{"bob", "nobody", "ann", "dan.", "dan"}, found); !slices.Equal(got, []int64{2, 1, 3}) {
		t.Errorf("mentioned = %v", got)
	}
	var names []string
	found = map[string]int64{}
	for i := range 2 * MaxMentions {
		n := string(rune('a'+i%26)) + "xx" + string(rune('a'+i/26))
		names = append(names, n)
		found[n] = int64(i + 1)
	}
	if got := mentioned(names, found); len(got) != MaxMentions {
		t.Errorf("%d mentions, want at most %d", len(got), MaxMentions)
	}
}
