package quote

import (
	"strings"

	"github.com/k3a/html2text"
)

// StripHTML is Strip for an HTML body. It removes the containers in which
// mail clients put quoted history (blockquote, Gmail's gmail_quote, Outlook
// web's divRplyFwdMsg/appendonsend, Thunderbird's moz-cite-prefix, Yahoo's
// yahoo_quoted, Outlook for Mac's OLK_SRC_BODY_SECTION, …) and signature
// containers, converts the rest to text with html2text and runs Strip on it,
// which catches the history that is not in a container (a plain "From: …
// Sent: …" block under an <hr>, "-----Original Message-----"). If nothing
// is left, it returns the whole body as text, trimmed.
func StripHTML(html string) string {
	reply := Strip(htmlToText(cleanHTML(html, true)))
	if reply == "" {
		// QUIRK: a body that is only a quote (a forward without comment, or
		// markup we misread) is still returned, as text, rather than lost.
		reply = Strip(htmlToText(cleanHTML(html, false)))
	}
	return reply
}

// blockBreak marks a block boundary in the HTML handed to html2text, which
// does not break lines at </div>; htmlToText turns runs of it into at most
// one line break. It is a private-use rune that real mail does not contain;
// one that does is taken for a block boundary too, which is harmless.
const blockBreak = '\uE000'

// blockTags end the current line when they open or close.
var blockTags = map[string]bool{
	"address": true, "article": true, "aside": true, "blockquote": true, "center": true,
	"dd": true, "div": true, "dl": true, "dt": true, "fieldset": true, "figure": true,
	"footer": true, "form": true, "h1": true, "h2": true, "h3": true, "h4": true,
	"h5": true, "h6": true, "header": true, "li": true, "main": true, "nav": true,
	"ol": true, "p": true, "pre": true, "section": true, "table": true, "tbody": true,
	"tr": true, "ul": true, "body": true, "html": true,
}

// rawTextTags have content that is never shown.
var rawTextTags = map[string]bool{
	"script": true, "style": true, "title": true, "template": true, "xml": true, "noscript": true,
}

// voidTags never have an end tag.
var voidTags = map[string]bool{
	"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true,
	"img": true, "input": true, "link": true, "meta": true, "param": true,
	"source": true, "track": true, "wbr": true,
}

// quoteClasses and quoteIDs mark elements whose whole subtree is quoted
// history or a signature. Outlook on the web copies class names with an
// "x_" prefix when it forwards, so that prefix is ignored.
var quoteClasses = map[string]bool{
	"gmail_quote": true, "gmail_quote_container": true, "gmail_attr": true,
	"gmail_signature": true, "moz-cite-prefix": true, "moz-signature": true,
	"yahoo_quoted": true, "protonmail_quote": true, "zmail_extra": true,
	"tutanota_quote": true, "ms-outlook-mobile-reference-message": true,
}

var quoteIDs = map[string]bool{
	"olk_src_body_section": true, "mail-editor-reference-message-container": true,
	"signature": true, "isforwardcontent": true,
}

// cutIDs and cutClasses mark the start of the history in clients that put
// the quoted message after the marker instead of inside it: everything from
// the marker to the end of the document is dropped.
var cutIDs = map[string]bool{
	"divrplyfwdmsg": true, "appendonsend": true, "stopspelling": true,
}

var cutClasses = map[string]bool{
	"outlookmessageheader": true,
}

// cleanHTML rewrites an HTML body for html2text: it drops comments, head,
// raw-text elements and — when removeQuotes is set — quoted containers and
// everything after a cut marker; it marks block boundaries with blockBreak,
// turns <hr> into a separator line, normalises <br> and makes mailto:,
// javascript: and in-page links plain text. It is a single forward scan; element nesting is tracked only
// for the element being removed, by counting tags of its name.
func cleanHTML(h string, removeQuotes bool) string {
	var out strings.Builder
	out.Grow(len(h))
	lower := asciiLower(h)
	skipName, skipDepth := "", 0 // removing a subtree while skipDepth > 0
	var anchors []bool           // per open <a>: was it rewritten to plain text
	i := 0
	for i < len(h) {
		lt := strings.IndexByte(h[i:], '<')
		if lt < 0 {
			if skipDepth == 0 {
				writeText(&out, h[i:])
			}
			break
		}
		if skipDepth == 0 {
			writeText(&out, h[i:i+lt])
		}
		i += lt
		switch {
		case strings.HasPrefix(h[i:], "<!--"):
			end := strings.Index(h[i+4:], "-->")
			if end < 0 {
				return out.String()
			}
			i += 4 + end + 3
			continue
		case strings.HasPrefix(h[i:], "<!") || strings.HasPrefix(h[i:], "<?"):
			end := strings.IndexByte(h[i:], '>')
			if end < 0 {
				return out.String()
			}
			i += end + 1
			continue
		}
		tag, next, ok := readTag(h, lower, i)
		if !ok {
			// QUIRK: a '<' that starts no tag ("a < b") is text.
			if skipDepth == 0 {
				out.WriteString("&lt;")
			}
			i++
			continue
		}
		i = next
		if !tag.end && rawTextTags[tag.name] && !tag.selfClosing {
			// Skip to the matching end tag; the content is not markup.
			end := strings.Index(lower[i:], "</"+tag.name)
			if end < 0 {
				break
			}
			i += end
			continue
		}
		if skipDepth > 0 {
			if tag.name == skipName && !tag.selfClosing {
				if tag.end {
					skipDepth--
				} else if !voidTags[tag.name] {
					skipDepth++
				}
			}
			if skipDepth == 0 {
				out.WriteRune(blockBreak)
			}
			continue
		}
		if !tag.end {
			id, class := tag.attr(h, "id"), tag.attr(h, "class")
			if removeQuotes && isMarked(id, class, cutIDs, cutClasses, "") {
				break
			}
			if tag.name == "head" || (removeQuotes && (tag.name == "blockquote" || isMarked(id, class, quoteIDs, quoteClasses, "yahoo_quoted"))) {
				if !tag.selfClosing && !voidTags[tag.name] {
					skipName, skipDepth = tag.name, 1
				}
				out.WriteRune(blockBreak)
				continue
			}
		}
		switch {
		case tag.name == "br":
			out.WriteString("<br>")
		case tag.name == "hr":
			out.WriteRune(blockBreak)
			out.WriteString("________________________________")
			out.WriteRune(blockBreak)
		case tag.name == "a" && !tag.end:
			// Links whose target says nothing to a reader become their text.
			href := asciiLower(strings.TrimSpace(tag.attr(h, "href")))
			plain := href == "" || strings.HasPrefix(href, "#") ||
				strings.HasPrefix(href, "mailto:") || strings.HasPrefix(href, "javascript:")
			anchors = append(anchors, plain)
			if !plain {
				out.WriteString(h[tag.start:tag.stop])
			}
		case tag.name == "a" && tag.end:
			plain := true
			if len(anchors) > 0 {
				plain = anchors[len(anchors)-1]
				anchors = anchors[:len(anchors)-1]
			}
			if !plain {
				out.WriteString("</a>")
			}
		case tag.name == "td" || tag.name == "th":
			out.WriteByte(' ')
		case tag.name == "li" && !tag.end:
			out.WriteRune(blockBreak)
			out.WriteString("- ")
		case blockTags[tag.name]:
			out.WriteRune(blockBreak)
		}
	}
	return out.String()
}

// writeText copies text between tags. html2text takes any '>' for the end
// of a tag, so a literal one is written as an entity, which it decodes.
func writeText(out *strings.Builder, s string) {
	if !strings.Contains(s, ">") {
		out.WriteString(s)
		return
	}
	out.WriteString(strings.ReplaceAll(s, ">", "&gt;"))
}

// isMarked reports whether an element's id or one of its classes is in the
// given sets, or contains substr (Yahoo prefixes and numbers its markers:
// class "ydp9yahoo_quoted", id "ydp9yahoo_quoted_1234"). Matching ignores
// ASCII case.
func isMarked(id, class string, ids, classes map[string]bool, substr string) bool {
	if id != "" {
		lid := strings.TrimPrefix(asciiLower(id), "x_")
		if ids[lid] || (substr != "" && strings.Contains(lid, substr)) {
			return true
		}
	}
	for _, c := range strings.Fields(class) {
		lc := strings.TrimPrefix(asciiLower(c), "x_")
		if classes[lc] || (substr != "" && strings.Contains(lc, substr)) {
			return true
		}
	}
	return false
}

// tagInfo describes one tag found by readTag.
type tagInfo struct {
	name        string // lower case
	end         bool   // </name>
	selfClosing bool   // <name … />
	start, stop int    // the tag is h[start:stop]
	attrFrom    int    // the attributes are h[attrFrom:attrTo]
	attrTo      int
}

// readTag parses the tag at h[i] (which is '<'). It returns ok=false if no
// tag starts there. Quoted attribute values may contain '>'.
func readTag(h, lower string, i int) (tagInfo, int, bool) {
	t := tagInfo{start: i}
	j := i + 1
	if j < len(h) && h[j] == '/' {
		t.end = true
		j++
	}
	nameFrom := j
	for j < len(h) && (isASCIILetter(h[j]) || (j > nameFrom && (h[j] == '-' || h[j] == ':' || (h[j] >= '0' && h[j] <= '9')))) {
		j++
	}
	if j == nameFrom {
		return t, 0, false
	}
	t.name = lower[nameFrom:j]
	t.attrFrom = j
	var quote byte
	for ; j < len(h); j++ {
		c := h[j]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			t.attrTo = j
			t.stop = j + 1
			t.selfClosing = j > t.attrFrom && h[j-1] == '/'
			return t, j + 1, true
		}
	}
	// QUIRK: an unterminated tag at the end of the body is dropped.
	t.attrTo, t.stop = len(h), len(h)
	return t, len(h), true
}

// attr returns the value of the named attribute of the tag, or "".
func (t tagInfo) attr(h, name string) string {
	s := h[t.attrFrom:t.attrTo]
	for k := 0; k < len(s); {
		// skip to an attribute name
		for k < len(s) && !isASCIILetter(s[k]) {
			if s[k] == '"' || s[k] == '\'' {
				if e := strings.IndexByte(s[k+1:], s[k]); e >= 0 {
					k += e + 2
					continue
				}
				return ""
			}
			k++
		}
		from := k
		for k < len(s) && s[k] != '=' && s[k] != ' ' && s[k] != '\t' && s[k] != '\n' && s[k] != '\r' && s[k] != '>' && s[k] != '/' {
			k++
		}
		attrName := asciiLower(s[from:k])
		for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r') {
			k++
		}
		if k >= len(s) || s[k] != '=' {
			continue
		}
		k++
		for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r') {
			k++
		}
		var val string
		if k < len(s) && (s[k] == '"' || s[k] == '\'') {
			q := s[k]
			e := strings.IndexByte(s[k+1:], q)
			if e < 0 {
				val, k = s[k+1:], len(s)
			} else {
				val, k = s[k+1:k+1+e], k+e+2
			}
		} else {
			from := k
			for k < len(s) && s[k] != ' ' && s[k] != '\t' && s[k] != '\n' && s[k] != '\r' && s[k] != '>' {
				k++
			}
			val = s[from:k]
		}
		if attrName == name {
			return val
		}
	}
	return ""
}

func isASCIILetter(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }

// asciiLower lower-cases ASCII letters only, so byte offsets into the result
// are valid in the original.
func asciiLower(s string) string {
	b := []byte(s)
	changed := false
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 0x20
			changed = true
		}
	}
	if !changed {
		return s
	}
	return string(b)
}

// htmlToText converts cleaned HTML to text with html2text and resolves the
// block markers: each run of them becomes one line break unless the text is
// already at the start of a line. Spaces at line ends and starts are removed
// (html2text turns source line breaks into spaces) and non-breaking spaces
// become plain ones.
func htmlToText(cleaned string) string {
	raw := html2text.HTML2TextWithOptions(cleaned, html2text.WithUnixLineBreaks(), html2text.WithLinksInnerText())
	var b strings.Builder
	b.Grow(len(raw))
	atLineStart := true
	pendingSpace := false
	for _, r := range raw {
		switch {
		case r == blockBreak:
			pendingSpace = false
			if !atLineStart {
				b.WriteByte('\n')
				atLineStart = true
			}
		case r == '\n':
			pendingSpace = false
			b.WriteByte('\n')
			atLineStart = true
		case r == ' ' || r == '\t' || r == '\u00a0':
			if !atLineStart {
				pendingSpace = true
			}
		default:
			if pendingSpace {
				b.WriteByte(' ')
				pendingSpace = false
			}
			b.WriteRune(r)
			atLineStart = false
		}
	}
	return b.String()
}
