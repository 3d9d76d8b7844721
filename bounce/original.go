package bounce

import (
	"strings"

	"github.com/emersion/go-message/textproto"
)

// original is what is known of the returned message: its ids and who sent
// it to whom.
type original struct {
	messageID string
	refs      []string // References, then In-Reply-To ids not already listed
	rcpts     []string // To and Cc addresses
	senders   []string // From, Sender, Reply-To, Return-Path addresses
}

// returned reads the header of a returned message (message/rfc822,
// text/rfc822-headers and the like). The first one with a Message-ID wins.
func (s *scan) returned(body []byte) {
	s.returnedParts++
	if s.orig != nil && s.orig.messageID != "" {
		return
	}
	h, _ := readHeader(body, maxReturnedBytes, true)
	o := originalFrom(func(k string) []string { return h.Values(k) })
	if s.orig == nil || o.messageID != "" {
		s.orig = &o
	}
}

// originalFrom builds an original from a field lookup.
func originalFrom(values func(key string) []string) original {
	var o original
	for _, v := range values("Message-Id") {
		if o.messageID = msgID(v); o.messageID != "" {
			break
		}
	}
	for _, k := range []string{"References", "In-Reply-To"} {
		for _, v := range values(k) {
			for _, id := range msgIDs(v, maxRefs) {
				if len(o.refs) < maxRefs && !contains(o.refs, id) && id != o.messageID {
					o.refs = append(o.refs, id)
				}
			}
		}
	}
	for _, k := range []string{"To", "Cc"} {
		for _, v := range values(k) {
			for _, a := range findAddrs(v) {
				if len(o.rcpts) < maxRecipients && !contains(o.rcpts, a) {
					o.rcpts = append(o.rcpts, a)
				}
			}
		}
	}
	for _, k := range []string{"From", "Sender", "Reply-To", "Return-Path"} {
		for _, v := range values(k) {
			if len(o.senders) < maxRecipients {
				o.senders = append(o.senders, findAddrs(v)...)
			}
		}
	}
	return o
}

// maxQuotedTries bounds the quoted blocks read when none has a usable
// Message-ID.
const maxQuotedTries = 20

// quotedBlock is a header block of a returned message found inside report
// text: lines [start, end) of the text.
type quotedBlock struct {
	start, end int
	orig       original
}

// findQuoted finds the first quoted header block that has a Message-ID line.
// Only the fields of that block are read, so that the bounce's prose and
// the returned body do not contribute.
//
// QUIRK: a Message-ID field folded onto the next line ("Message-Id:\n <id>")
// and fields without a space after the colon are accepted.
func findQuoted(ls []string) (quotedBlock, bool) {
	tries := 0
	for i := 0; i < len(ls) && tries < maxQuotedTries; i++ {
		l := ls[i]
		t := strings.TrimLeft(l, " \t")
		if len(t) < 11 || !strings.EqualFold(t[:11], "message-id:") {
			continue
		}
		// An indented block (some reports indent the returned header)
		// is read with that indent removed.
		indent := len(l) - len(t)
		start := i
		for start > 0 && headerLike(ls[start-1]) {
			start--
		}
		end := i + 1
		for end < len(ls) && headerLike(ls[end]) {
			end++
		}
		o := originalFrom(fieldLookup(blockFields(ls[start:end], indent)))
		if o.messageID == "" {
			// Every Message-ID line of this block gives the same
			// answer: go on after it, so that the scan stays linear.
			tries++
			i = end - 1
			continue
		}
		return quotedBlock{start: start, end: end, orig: o}, true
	}
	return quotedBlock{}, false
}

// fieldLookup returns a lookup of the values of a field, in order.
func fieldLookup(fields []field) func(key string) []string {
	return func(key string) []string {
		var vs []string
		for _, f := range fields {
			if strings.EqualFold(f.key, key) {
				vs = append(vs, f.value)
			}
		}
		return vs
	}
}

// headerLike reports whether a line can belong to a quoted header block: a
// field or a continuation line.
func headerLike(l string) bool {
	if strings.TrimSpace(l) == "" {
		return false
	}
	if l[0] == ' ' || l[0] == '\t' {
		return true
	}
	_, _, ok := splitField(l)
	return ok
}

// blockFields unfolds the lines of a quoted header block after removing up
// to indent leading blanks from each.
func blockFields(ls []string, indent int) []field {
	var fs []fieldBuf
	for _, l := range ls {
		for k := 0; k < indent && len(l) > 1 && (l[0] == ' ' || l[0] == '\t'); k++ {
			l = l[1:]
		}
		if l[0] == ' ' || l[0] == '\t' {
			if n := len(fs); n > 0 {
				fs[n-1].val = unfold(fs[n-1].val, l)
			}
			continue
		}
		if k, v, ok := splitField(l); ok {
			fs = append(fs, fieldBuf{k, []byte(v[:min(len(v), maxFieldBytes)])})
		}
	}
	return finish(fs)
}

// headerAddrs returns the addresses of the given fields of h.
func headerAddrs(h textproto.Header, keys ...string) []string {
	var out []string
	for _, k := range keys {
		for _, v := range h.Values(k) {
			out = append(out, findAddrs(v)...)
		}
	}
	return out
}
