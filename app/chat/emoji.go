package chat

import (
	"unicode/utf8"
)

// MaxEmojiBytes bounds an emoji's UTF-8 length: the longest emoji
// sequences (a couple with two skin tones, a subdivision flag) take less
// than 40 bytes.
const MaxEmojiBytes = 64

// maxEmojiElements bounds the emoji a ZWJ sequence joins.
const maxEmojiElements = 8

const (
	zwj           = 0x200D
	vs16          = 0xFE0F
	keycapMark    = 0x20E3
	tagCancel     = 0xE007F
	regionalFirst = 0x1F1E6
	regionalLast  = 0x1F1FF
)

// validEmoji checks that emoji is one emoji as a user picks it: one
// grapheme cluster whose base is an emoji character. It accepts
//
//   - an Extended_Pictographic character, with an optional VS16 or skin
//     tone modifier, and an optional tag sequence (the subdivision flags);
//   - such characters joined by ZWJ (families, professions, 🏳️‍🌈);
//   - a pair of regional indicators (a country flag);
//   - a keycap: 0-9, # or *, an optional VS16, and U+20E3.
//
// Each form is one extended grapheme cluster by the rules of UAX #29, so
// two emoji side by side, a letter, a digit or text around an emoji are
// all refused.
func validEmoji(emoji string) error {
	if emoji == "" {
		return InvalidField("emoji", "This field may not be blank.")
	}
	if len(emoji) > MaxEmojiBytes || !utf8.ValidString(emoji) || !isEmoji(emoji) {
		return InvalidField("emoji", "Must be one emoji.")
	}
	return nil
}

func isEmoji(s string) bool {
	rs := []rune(s)
	switch {
	case len(rs) == 2 && isRegional(rs[0]) && isRegional(rs[1]):
		return true
	case isKeycapBase(rs[0]):
		return len(rs) == 2 && rs[1] == keycapMark ||
			len(rs) == 3 && rs[1] == vs16 && rs[2] == keycapMark
	}
	for n := 1; ; n++ {
		rest, ok := emojiElement(rs)
		if !ok || n > maxEmojiElements {
			return false
		}
		if len(rest) == 0 {
			return true
		}
		if rest[0] != zwj {
			return false
		}
		rs = rest[1:]
	}
}

// emojiElement reads one Extended_Pictographic character with what may
// follow it in the same emoji, and returns the rest.
func emojiElement(rs []rune) (rest []rune, ok bool) {
	if len(rs) == 0 || !isPictographic(rs[0]) {
		return nil, false
	}
	rs = rs[1:]
	if len(rs) > 0 && (rs[0] == vs16 || isSkinTone(rs[0])) {
		rs = rs[1:]
	}
	if len(rs) > 0 && isTag(rs[0]) {
		for len(rs) > 0 && isTag(rs[0]) {
			rs = rs[1:]
		}
		if len(rs) == 0 || rs[0] != tagCancel {
			return nil, false
		}
		rs = rs[1:]
	}
	return rs, true
}

func isRegional(r rune) bool   { return r >= regionalFirst && r <= regionalLast }
func isSkinTone(r rune) bool   { return r >= 0x1F3FB && r <= 0x1F3FF }
func isTag(r rune) bool        { return r >= 0xE0020 && r <= 0xE007E }
func isKeycapBase(r rune) bool { return r >= '0' && r <= '9' || r == '#' || r == '*' }

// isPictographic reports the Extended_Pictographic property of Unicode's
// emoji data (emoji-data.txt), which grows only by taking in reserved code
// points of these ranges.
func isPictographic(r rune) bool {
	if r < 0xA9 {
		return false
	}
	lo, hi := 0, len(pictographic)
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case r < pictographic[m][0]:
			hi = m
		case r > pictographic[m][1]:
			lo = m + 1
		default:
			return true
		}
	}
	return false
}

// pictographic are the Extended_Pictographic ranges, ascending.
var pictographic = [...][2]rune{
	{0x00A9, 0x00A9}, {0x00AE, 0x00AE}, {0x203C, 0x203C}, {0x2049, 0x2049},
	{0x2122, 0x2122}, {0x2139, 0x2139}, {0x2194, 0x2199}, {0x21A9, 0x21AA},
	{0x231A, 0x231B}, {0x2328, 0x2328}, {0x2388, 0x2388}, {0x23CF, 0x23CF},
	{0x23E9, 0x23F3}, {0x23F8, 0x23FA}, {0x24C2, 0x24C2}, {0x25AA, 0x25AB},
	{0x25B6, 0x25B6}, {0x25C0, 0x25C0}, {0x25FB, 0x25FE}, {0x2600, 0x2605},
	{0x2607, 0x2612}, {0x2614, 0x2685}, {0x2690, 0x2705}, {0x2708, 0x2712},
	{0x2714, 0x2714}, {0x2716, 0x2716}, {0x271D, 0x271D}, {0x2721, 0x2721},
	{0x2728, 0x2728}, {0x2733, 0x2734}, {0x2744, 0x2744}, {0x2747, 0x2747},
	{0x274C, 0x274C}, {0x274E, 0x274E}, {0x2753, 0x2755}, {0x2757, 0x2757},
	{0x2763, 0x2767}, {0x2795, 0x2797}, {0x27A1, 0x27A1}, {0x27B0, 0x27B0},
	{0x27BF, 0x27BF}, {0x2934, 0x2935}, {0x2B05, 0x2B07}, {0x2B1B, 0x2B1C},
	{0x2B50, 0x2B50}, {0x2B55, 0x2B55}, {0x3030, 0x3030}, {0x303D, 0x303D},
	{0x3297, 0x3297}, {0x3299, 0x3299}, {0x1F000, 0x1F0FF}, {0x1F10D, 0x1F10F},
	{0x1F12F, 0x1F12F}, {0x1F16C, 0x1F171}, {0x1F17E, 0x1F17F}, {0x1F18E, 0x1F18E},
	{0x1F191, 0x1F19A}, {0x1F1AD, 0x1F1E5}, {0x1F201, 0x1F20F}, {0x1F21A, 0x1F21A},
	{0x1F22F, 0x1F22F}, {0x1F232, 0x1F23A}, {0x1F23C, 0x1F23F}, {0x1F249, 0x1F3FA},
	{0x1F400, 0x1F53D}, {0x1F546, 0x1F64F}, {0x1F680, 0x1F6FF}, {0x1F774, 0x1F77F},
	{0x1F7D5, 0x1F7FF}, {0x1F80C, 0x1F80F}, {0x1F848, 0x1F84F}, {0x1F85A, 0x1F85F},
	{0x1F888, 0x1F88F}, {0x1F8AE, 0x1F8FF}, {0x1F90C, 0x1F93A}, {0x1F93C, 0x1F945},
	{0x1F947, 0x1FAFF}, {0x1FC00, 0x1FFFD},
}
