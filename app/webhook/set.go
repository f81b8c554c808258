package webhook

import "slices"

// Set is a set of event types, as WEBHOOK_EVENTS chooses them: the stores
// ask it, on the write path, whether a change's event is to be kept. Its
// zero value holds no type: webhooks are off.
type Set uint16

// NewSet returns the set of types, ignoring any that is not one of Events.
func NewSet(types []string) Set {
	var s Set
	for _, t := range types {
		if i := slices.Index(Events, t); i >= 0 {
			s |= 1 << i
		}
	}
	return s
}

// Has reports whether typ is in s.
func (s Set) Has(typ string) bool {
	if s == 0 {
		return false // off: no lookup at all
	}
	i := slices.Index(Events, typ)
	return i >= 0 && s&(1<<i) != 0
}

// CheckURL reports whether rawURL is a URL a Sender can post to: http or
// https, with a host. Its error names WEBHOOK_URL and never repeats the
// URL, which may carry a token.
func CheckURL(rawURL string) error {
	_, err := parseURL(rawURL)
	return err
}
