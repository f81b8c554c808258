package chat

import (
	"strings"
	"testing"
)

// TestValidEmoji: one emoji, as a picker inserts it, is taken; anything
// that is not exactly one emoji is a 400 on emoji.
func TestValidEmoji(t *testing.T) {
	for _, e := range []string{
		"👍", "👍🏽", "❤", "❤️", "👨‍👩‍👧", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🏳️‍⚧️", "🧑🏻‍❤️‍💋‍🧑🏼", "👩🏽‍💻",
		"🇫🇷", "1️⃣", "#⃣", "*️⃣", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "©️", "🦄", "🫠",
	} {
		if err := validEmoji(e); err != nil {
			t.Errorf("%q (%U): %v", e, []rune(e), err)
		}
	}
	for name, e := range map[string]string{
		"empty":                  "",
		"a letter":               "a",
		"a word":                 "ok",
		"a digit":                "1",
		"two emoji":              "👍👍",
		"text and an emoji":      "hi👍",
		"an emoji and a space":   "👍 ",
		"a lone skin tone":       "🏽",
		"a lone ZWJ":             "\u200d",
		"a trailing ZWJ":         "👍\u200d",
		"a lone regional letter": "🇫",
		"two flags":              "🇫🇷🇩🇪",
		"a keycap without its 1": "\u20e3",
		"an unfinished tag":      "🏴\U000E0067\U000E0062",
		"invalid UTF-8":          "\xff",
		"a CJK character":        "字",
		"a combining mark":       "e\u0301",
		"too long":               strings.Repeat("👨‍", 20) + "👨",
		"a VS16 alone":           "\ufe0f",
		"text presentation mark": "👍\ufe0e",
	} {
		if err := validEmoji(e); ErrorCode(err) != CodeInvalid {
			t.Errorf("%s %q: %v; want invalid", name, e, err)
		}
	}
}
