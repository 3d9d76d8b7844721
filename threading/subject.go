package threading

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxTagsScanned bounds how many tag candidates one subject can make us
// look up.
const maxTagsScanned = 16

// FindTag finds the first ticket tag "[<prefix>#<id>]" in subject. The match
// is case-insensitive, allows blanks around every element ("[ ticket # 1042 ]")
// and may sit anywhere, so reply prefixes such as "Re:", "AW:" or "RE :" in
// front of it do not matter. Only ids in 1..2^64-1 are accepted.
func FindTag(subject, prefix string) (id uint64, ok bool) {
	ids := findTags(subject, prefix, 1)
	if len(ids) == 0 {
		return 0, false
	}
	return ids[0], true
}

// findTags returns up to max tag ids in the order they appear.
func findTags(subject, prefix string, max int) []uint64 {
	prefix = strings.TrimSpace(prefix)
	var ids []uint64
	for i := 0; i < len(subject) && len(ids) < max; i++ {
		if subject[i] != '[' {
			continue
		}
		if id, ok := parseTag(subject[i+1:], prefix); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// parseTag parses `<prefix>#<id>]` (blanks allowed between the elements)
// at the start of s.
func parseTag(s, prefix string) (uint64, bool) {
	s = trimBlankLeft(s)
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return 0, false
	}
	s = trimBlankLeft(s[len(prefix):])
	if !strings.HasPrefix(s, "#") {
		return 0, false
	}
	s = trimBlankLeft(s[1:])
	n := 0
	for n < len(s) && '0' <= s[n] && s[n] <= '9' {
		n++
	}
	if n == 0 || n > 24 {
		return 0, false
	}
	id, err := strconv.ParseUint(s[:n], 10, 64)
	if err != nil || id == 0 {
		return 0, false // overflow or the non-ticket 0
	}
	if rest := trimBlankLeft(s[n:]); !strings.HasPrefix(rest, "]") {
		return 0, false
	}
	return id, true
}

// trimBlankLeft removes leading Unicode white space (NBSP and ideographic
// space included: mail clients insert them).
func trimBlankLeft(s string) string {
	return strings.TrimLeftFunc(s, unicode.IsSpace)
}

// AddTag returns subject with "[<prefix>#<id>] " in front, unless a tag for
// this id is already in it. Line breaks and control characters are replaced
// so the result is safe in a header.
func AddTag(subject, prefix string, id uint64) string {
	s := cleanLine(strings.ToValidUTF8(subject, "\uFFFD"))
	prefix = cleanLine(strings.ToValidUTF8(prefix, "\uFFFD"))
	for _, have := range findTags(s, prefix, maxTagsScanned) {
		if have == id {
			return s
		}
	}
	tag := "[" + prefix + "#" + strconv.FormatUint(id, 10) + "]"
	if s == "" {
		return tag
	}
	return tag + " " + s
}

// replyPrefixes are the reply and forward abbreviations removed by
// BaseSubject, lower case: RFC 5256 "re", "fw", "fwd" and the localized ones
// mail clients write (German AW/WG, Nordic SV/VS/VB, Dutch Antw/Doorst,
// Italian R/RIF/I, Polish Odp/PD, French TR/RE, Spanish RV/Enc, Turkish YNT,
// Finnish VL/VS, Greek, Russian and CJK clients).
var replyPrefixes = []string{
	"re", "fw", "fwd", "aw", "wg", "sv", "vs", "vb", "antw", "antwort", "doorst",
	"r", "rif", "i", "odp", "pd", "tr", "rv", "enc", "res", "ref", "réf",
	"ynt", "ilt", "vl", "fs", "rsp",
	"απ", "σχετ", "πρθ", "отв", "ответ", "пересл", "переслать",
	"回复", "回覆", "答复", "答覆", "转发", "轉寄", "轉發", "返信", "転送",
}

// BaseSubject returns the RFC 5256 base subject of s: reply and forward
// prefixes (also localized ones and "Re[2]:"), leading "[...]" blobs such as
// list names or ticket tags, trailing "(fwd)" and "[fwd: ...]" wrappers are
// removed and white space is collapsed. Case is kept.
func BaseSubject(s string) string {
	s = cleanLine(strings.ToValidUTF8(s, "\uFFFD"))
	for {
		prev := s
		// (2) trailing "(fwd)" and white space.
		for {
			s = strings.TrimSpace(s)
			if len(s) >= 5 && strings.EqualFold(s[len(s)-5:], "(fwd)") {
				s = s[:len(s)-5]
				continue
			}
			break
		}
		// (3) and (4): leaders, then blobs when something follows them.
		s = stripLeaders(s)
		// (6) "[fwd: subject]".
		if len(s) > 6 && strings.EqualFold(s[:5], "[fwd:") && strings.HasSuffix(s, "]") {
			s = s[5 : len(s)-1]
		}
		if s == prev {
			return s
		}
	}
}

// stripLeaders applies RFC 5256 steps (3) and (4) until neither changes
// anything: remove a subj-leader (leading blobs followed by a reply prefix
// and its colon), else remove leading blobs as long as something follows
// them. Each round consumes what it scans, so the work is linear even for a
// subject of a million "[x]" blobs.
func stripLeaders(s string) string {
	for {
		t := strings.TrimSpace(s)
		u, lastBlob := t, ""
		for {
			blob, rest := cutBlob(u)
			if !blob {
				break
			}
			lastBlob = u
			u = strings.TrimSpace(rest)
		}
		if rest, ok := cutReplyPrefix(u); ok {
			s = rest // (3)
			continue
		}
		switch {
		case lastBlob == "":
			return t
		case u != "":
			s = u // (4), once per blob: what follows is neither blob nor prefix
		default:
			return lastBlob // (4) stops before the last blob: nothing follows it
		}
	}
}

// cutBlob removes a leading "[...]" (no nested brackets) from s.
func cutBlob(s string) (bool, string) {
	if !strings.HasPrefix(s, "[") {
		return false, s
	}
	end := strings.IndexAny(s[1:], "[]")
	if end < 0 || s[1+end] != ']' {
		return false, s
	}
	return true, s[end+2:]
}

// cutReplyPrefix removes `prefix *WSP [blob] ":"` (or a full-width colon)
// from the start of s.
func cutReplyPrefix(s string) (string, bool) {
	for _, p := range replyPrefixes {
		if len(s) <= len(p) || !strings.EqualFold(s[:len(p)], p) {
			continue
		}
		rest := strings.TrimLeftFunc(s[len(p):], unicode.IsSpace)
		if blob, r := cutBlob(rest); blob {
			rest = strings.TrimLeftFunc(r, unicode.IsSpace)
		}
		if strings.HasPrefix(rest, ":") {
			return rest[1:], true
		}
		if r, size := utf8.DecodeRuneInString(rest); r == '：' {
			return rest[size:], true
		}
	}
	return s, false
}
