package chat

import "strings"

// MaxMentions bounds the distinct @names of one message that are looked
// up; later ones are not mentions.
const MaxMentions = 20

// mentionNames returns the distinct @names in content, folded as
// usernames compare (lower case), in order of first appearance. A name
// is what a username may be made of (letters, digits, _ . -) after an @
// that starts the content or follows a character no username has (so an
// e-mail address is no mention). A name that ends in . or - stands for
// itself and for itself without them: "@bob." at the end of a sentence.
func mentionNames(content string) []string {
	var names []string
	add := func(n string) {
		if len(n) < 3 || len(n) > 32 || len(names) >= 2*MaxMentions {
			return
		}
		for _, m := range names {
			if m == n {
				return
			}
		}
		names = append(names, n)
	}
	for i := 0; i < len(content); i++ {
		if content[i] != '@' || i > 0 && usernameByte(content[i-1]) {
			continue
		}
		j := i + 1
		for j < len(content) && usernameByte(content[j]) {
			j++
		}
		name := strings.ToLower(content[i+1 : j])
		add(name)
		if t := strings.TrimRight(name, ".-"); t != name {
			add(t)
		}
		i = j - 1
	}
	return names
}

func usernameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

// mentioned orders the ids found for names (by folded username) as the
// names came, at most MaxMentions of them, each once.
func mentioned(names []string, found map[string]int64) []int64 {
	var ids []int64
	for _, n := range names {
		id, ok := found[n]
		if !ok || len(ids) >= MaxMentions {
			continue
		}
		dup := false
		for _, x := range ids {
			dup = dup || x == id
		}
		if !dup {
			ids = append(ids, id)
		}
	}
	return ids
}
