package config

import (
	"github.com/go-viper/mapstructure/v2"
	"strconv"
	"strings"
	"unicode"
)

// Error is a configuration problem at one key. Its message is one line,
// "config: <key>: <problem>", e.g.
//
//	config: mailboxes[0].imap.tls: must be one of none, starttls, tls (got "ssl")
//
// Key is the full key path (list entries as name[i]); for problems with the
// file itself (missing, not YAML) it is the file's path.
type Error struct {
	Key     string
	Problem string
	// Err is the underlying cause, if any (for errors.Is(err, fs.ErrNotExist)).
	Err error
}

// Error is always one line: a key or value taken from the file may hold
// line breaks (a quoted YAML key can), so control characters are escaped.
func (e *Error) Error() string {
	if e.Key == "" {
		return "config: " + oneLine(e.Problem)
	}
	return "config: " + oneLine(e.Key) + ": " + oneLine(e.Problem)
}

// oneLine escapes control characters the way strconv.Quote would, leaving
// everything else as it is.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// decodeError turns a mapstructure error into a *Error for the first
// failing key. mapstructure joins one error per bad field, in struct field
// order, so "first" is stable; we report one problem per run, the way a
// compiler's first error is the one worth reading.
func decodeError(err error) error {
	de := firstDecodeError(err)
	if de == nil {
		return &Error{Problem: err.Error(), Err: err}
	}
	problem := de.Error()
	if inner := de.Unwrap(); inner != nil {
		// Our decode hook's messages are written for operators; the
		// DecodeError wrapper only adds mapstructure's quoting of the name.
		problem = inner.Error()
	}
	return &Error{Key: de.Name(), Problem: problem, Err: err}
}

// firstDecodeError walks err's tree (including errors.Join) depth first and
// returns the first *mapstructure.DecodeError.
func firstDecodeError(err error) *mapstructure.DecodeError {
	if err == nil {
		return nil
	}
	if de, ok := err.(*mapstructure.DecodeError); ok {
		return de
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if de := firstDecodeError(e); de != nil {
				return de
			}
		}
	case interface{ Unwrap() error }:
		return firstDecodeError(u.Unwrap())
	}
	return nil
}
