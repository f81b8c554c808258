package chat

import (
	"bufio"
	"compress/gzip"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestValidEmoji_EveryEmojiOfUnicode15 checks the emoji grammar against
// Unicode's own list (emoji-test.txt of Unicode 15.0, from Debian's
// unicode-data: its fully-qualified lines, as "code points # name"):
// every emoji a keyboard offers is taken as a reaction.
func TestValidEmoji_EveryEmojiOfUnicode15(t *testing.T) {
	f, err := os.Open("testdata/emoji-test-15.0.txt.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(z)
	n, refused := 0, 0
	for sc.Scan() {
		points, name, _ := strings.Cut(sc.Text(), "#")
		var b strings.Builder
		for _, p := range strings.Fields(points) {
			r, err := strconv.ParseUint(p, 16, 32)
			if err != nil {
				t.Fatalf("%q: %v", sc.Text(), err)
			}
			b.WriteRune(rune(r))
		}
		n++
		if err := validEmoji(b.String()); err != nil {
			refused++
			if refused <= 20 {
				t.Errorf("refused %s (%s)", strings.TrimSpace(name), points)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 3000 {
		t.Fatalf("read %d emoji, want Unicode's ~3,700", n)
	}
	if refused > 0 {
		t.Errorf("%d of %d emoji refused", refused, n)
	}
}
