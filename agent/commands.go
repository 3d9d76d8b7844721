package agent

import (
	"cmp"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind names one agent command. Its value is the command's name as written
// after the '#', lower-cased.
type Kind string

// The commands an agent may write at the top of a reply.
const (
	KindClose    Kind = "close"    // set the status to closed
	KindResolve  Kind = "resolve"  // set the status to resolved
	KindPending  Kind = "pending"  // set the status to pending (waiting for the customer)
	KindOpen     Kind = "open"     // set the status to open
	KindAssign   Kind = "assign"   // assign the ticket to an agent
	KindTeam     Kind = "team"     // route the ticket to a team
	KindPriority Kind = "priority" // set the priority
	KindCC       Kind = "cc"       // add or remove a Cc of the customer conversation
	KindMerge    Kind = "merge"    // merge this ticket into another one
	KindNote     Kind = "note"     // the text is an internal note, not relayed to the customer
)

// allKinds is the order in which suggestions are tried; it is read-only.
var allKinds = [...]Kind{
	KindClose, KindResolve, KindPending, KindOpen, KindAssign,
	KindTeam, KindPriority, KindCC, KindMerge, KindNote,
}

// statusOf maps the status commands to the ticket status they ask for; the
// values are the store's status names.
func statusOf(k Kind) (string, bool) {
	switch k {
	case KindClose:
		return "closed", true
	case KindResolve:
		return "resolved", true
	case KindPending:
		return "pending", true
	case KindOpen:
		return "open", true
	}
	return "", false
}

// Command is one understood command line.
type Command struct {
	Kind Kind
	// Arg is the normalised argument; it is empty for the status commands
	// and #note. For KindAssign it is "me", a lower-cased address, or a
	// lower-cased bare name the caller must resolve against its agents. For
	// KindTeam a lower-cased team name (letters, digits, ".", "-", "_"). For
	// KindPriority one of low, normal, high, urgent. For KindCC "+addr" or
	// "-addr" with the address lower-cased. For KindMerge the ticket number
	// as decimal digits without leading zeros.
	Arg string
	// Line is the 1-based line of the command in the text given to Parse.
	Line int
}

// Error is one command line Parse could not accept.
type Error struct {
	Line    int    // 1-based line in the text given to Parse
	Text    string // the line as written, without surrounding space; shortened if very long
	Problem string // what is wrong, written for the agent to read
}

// Error formats e as one line for the bounce sent back to the agent.
func (e Error) Error() string {
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Text, e.Problem)
}

// Parsed is the result of Parse.
type Parsed struct {
	// Commands are the understood commands in the order written. When
	// Errors is non-empty they must not be applied.
	Commands []Command
	// Body is the text after the command block with leading blank lines
	// removed and line endings normalised to "\n". Without commands it is
	// the whole text less its leading blank lines.
	Body string
	// Errors lists unknown commands, bad arguments and conflicts.
	Errors []Error
}

// Limits that keep a hostile or broken mail from making Parse output grow
// with its input. No agent writes dozens of commands.
const (
	maxCommandLines = 50  // lines of the command block turned into Commands or Errors
	maxErrorText    = 120 // runes of a line echoed back in Error.Text
	maxTeamLen      = 64  // same bound as the configuration's team names
)

// Parse reads the command block at the top of an agent's new text (quoted
// history already removed).
//
// The block is made of command lines and blank lines; it ends at the first
// other line, which starts Body. A command line starts with '#' directly
// followed by a letter, after optional surrounding white space; the name is
// case-insensitive and runs to the first white space; the rest of the line
// is its argument. A line such as "#1 priority" or "# Heading" is not a
// command line and so ends the block. Below the block nothing is a command:
// "#hashtag" in prose is text. Inside the block an unknown name is an Error
// (with a suggestion when it looks like a typo), so a mistyped command is
// never relayed to the customer.
//
// Arguments are validated: status commands and #note take none; #assign
// takes "me", one address, or one bare agent name; #team one team name;
// #priority low, normal, high or urgent; #cc "+address" or "-address"; #merge
// a positive ticket number written 1042, #1042 or [Ticket#1042] (the tag's
// prefix is not compared with the configured one). Commands that contradict
// each other (#close and #open, two different #assign, #cc +a and #cc -a) are
// Errors; an exact repetition is harmless and kept.
//
// Parse accepts "\n", "\r\n" and lone "\r" line endings.
func Parse(text string) Parsed {
	text = normaliseNewlines(text)
	var (
		p     Parsed
		texts []string // the written line of each Commands entry, for conflict messages
		lines int      // command lines seen, to enforce maxCommandLines
	)
	rest := text
	lineNo := 0
	for rest != "" {
		line, next, _ := strings.Cut(rest, "\n")
		lineNo++
		t := trimLine(line)
		if t == "" {
			rest = next
			continue
		}
		name, arg, ok := splitCommand(t)
		if !ok {
			break
		}
		rest = next
		lines++
		if lines > maxCommandLines {
			if lines == maxCommandLines+1 {
				p.Errors = append(p.Errors, Error{Line: lineNo, Text: shorten(t),
					Problem: fmt.Sprintf("too many command lines (at most %d)", maxCommandLines)})
			}
			continue
		}
		c, problem := parseCommand(name, arg)
		if problem != "" {
			p.Errors = append(p.Errors, Error{Line: lineNo, Text: shorten(t), Problem: problem})
			continue
		}
		c.Line = lineNo
		p.Commands = append(p.Commands, c)
		texts = append(texts, shorten(t))
	}
	p.Body = rest
	p.Errors = append(p.Errors, conflicts(p.Commands, texts)...)
	// Conflicts are found after the block; the agent reads errors in the
	// order of the lines.
	slices.SortStableFunc(p.Errors, func(a, b Error) int { return cmp.Compare(a.Line, b.Line) })
	return p
}

// Status returns the ticket status ("closed", "resolved", "pending" or
// "open") asked for by the status commands. ok is false when there is none,
// or when they contradict each other.
func (p Parsed) Status() (status string, ok bool) {
	for _, c := range p.Commands {
		s, isStatus := statusOf(c.Kind)
		if !isStatus {
			continue
		}
		if ok && s != status {
			return "", false
		}
		status, ok = s, true
	}
	return status, ok
}

// IsNote reports whether the agent marked the text as an internal note,
// which must not be relayed to the customer.
func (p Parsed) IsNote() bool {
	for _, c := range p.Commands {
		if c.Kind == KindNote {
			return true
		}
	}
	return false
}

// CommandsOnly reports whether Body holds no text, so there is nothing to
// relay or to store as a note. It is also true for an empty mail without
// commands.
func (p Parsed) CommandsOnly() bool {
	return trimLine(p.Body) == ""
}

// Help is the cheat-sheet appended to notification mails. It fits in
// twelve lines of at most 72 columns.
func Help() string {
	return `Commands: one per line at the very top of your reply.
  #close  #resolve  #pending  #open     set the status
  #assign me | #assign bob@example.com  assign the ticket
  #team NAME                            route to a team
  #priority low|normal|high|urgent      set the priority
  #cc +ann@example.org | #cc -ann@...   add or remove a Cc
  #merge 1042                           merge this ticket into #1042
  #note                                 internal note, not sent out
Text below the commands goes to the customer (unless #note).
A reply with only commands sends nothing to the customer.
`
}

// normaliseNewlines turns "\r\n" and lone "\r" into "\n".
func normaliseNewlines(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	// QUIRK: a lone CR is a line break from old Mac clients or from a
	// broken CRLF conversion; treating it as one keeps a command on the
	// line it appears to be on.
	return strings.ReplaceAll(s, "\r", "\n")
}

// trimLine removes white space and the invisible characters some clients
// put at the start of a line.
func trimLine(s string) string {
	return strings.TrimFunc(s, func(r rune) bool {
		switch r {
		// QUIRK: byte order mark, zero-width space/joiners and word joiner
		// are left by copy-paste and rich-text editors; they are not text.
		case '\ufeff', '\u200b', '\u200c', '\u200d', '\u2060':
			return true
		}
		return unicode.IsSpace(r)
	})
}

// splitCommand splits a trimmed line into a lower-cased command name and its
// trimmed argument; ok is false when the line is not a command line.
func splitCommand(t string) (name, arg string, ok bool) {
	if !strings.HasPrefix(t, "#") {
		return "", "", false
	}
	r, _ := utf8.DecodeRuneInString(t[1:])
	if !unicode.IsLetter(r) {
		return "", "", false
	}
	word := t[1:]
	if i := strings.IndexFunc(word, unicode.IsSpace); i >= 0 {
		word, arg = word[:i], word[i:]
	}
	return strings.ToLower(word), trimLine(arg), true
}

// parseCommand validates one command; problem is empty on success.
func parseCommand(name, arg string) (c Command, problem string) {
	k := Kind(name)
	switch k {
	case KindClose, KindResolve, KindPending, KindOpen:
		if arg != "" {
			return c, fmt.Sprintf("#%s takes no argument (got %q)", k, shorten(arg))
		}
	case KindNote:
		if arg != "" {
			return c, "#note takes no argument; write the note on the lines below the commands"
		}
	case KindAssign:
		a, err := parseAssign(arg)
		if err != nil {
			return c, err.Error()
		}
		arg = a
	case KindTeam:
		switch {
		case arg == "":
			return c, "#team needs a team name"
		case !isTeamName(arg):
			return c, fmt.Sprintf(`bad team name %q: want one name of letters, digits, ".", "-" or "_"`, shorten(arg))
		}
		arg = strings.ToLower(arg)
	case KindPriority:
		switch p := strings.ToLower(arg); p {
		case "low", "normal", "high", "urgent":
			arg = p
		case "":
			return c, "#priority needs one of low, normal, high, urgent"
		default:
			return c, fmt.Sprintf("unknown priority %q: want low, normal, high or urgent", shorten(arg))
		}
	case KindCC:
		a, err := parseCC(arg)
		if err != nil {
			return c, err.Error()
		}
		arg = a
	case KindMerge:
		n, err := parseTicketNumber(arg)
		if err != nil {
			return c, err.Error()
		}
		arg = n
	default:
		problem = fmt.Sprintf("unknown command %q", "#"+shorten(name))
		if s := suggest(name); s != "" {
			problem += fmt.Sprintf(" (did you mean #%s?)", s)
		}
		return c, problem
	}
	return Command{Kind: k, Arg: arg}, ""
}

// parseAssign accepts "me", one address (bare, <addr> or Name <addr>) or
// one bare agent name.
func parseAssign(arg string) (string, error) {
	switch {
	case arg == "":
		return "", errors.New("#assign needs an agent: me, an address or a name")
	case strings.EqualFold(arg, "me"):
		return "me", nil
	case strings.Contains(arg, "@"):
		a, err := parseAddress(arg)
		if err != nil {
			return "", fmt.Errorf("#assign: %w", err)
		}
		return a, nil
	case strings.IndexFunc(arg, unicode.IsSpace) >= 0:
		return "", fmt.Errorf("#assign takes one agent, not %q: write me, an address or one name", shorten(arg))
	case !isAgentName(arg):
		return "", fmt.Errorf("#assign: %q is not an agent name or address", shorten(arg))
	}
	return strings.ToLower(arg), nil
}

// parseCC accepts "+addr" or "-addr" and returns the sign and lower-cased
// address.
func parseCC(arg string) (string, error) {
	const want = "#cc needs +address to add a Cc or -address to remove one"
	r, size := utf8.DecodeRuneInString(arg)
	var sign string
	switch r {
	case '+':
		sign = "+"
	// QUIRK: word processors and phone keyboards turn "-" into an en dash
	// or a minus sign.
	case '-', '–', '−':
		sign = "-"
	default:
		return "", errors.New(want)
	}
	// QUIRK: "+ ann@example.org" with a space is accepted.
	rest := trimLine(arg[size:])
	if rest == "" {
		return "", errors.New(want)
	}
	a, err := parseAddress(rest)
	if err != nil {
		return "", fmt.Errorf("#cc: %w", err)
	}
	return sign + a, nil
}

// parseAddress validates one RFC 5322 address with net/mail and returns its
// address part lower-cased, the form the store keeps.
func parseAddress(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", fmt.Errorf("bad address %q: %w", shorten(s), err)
	}
	addr := strings.ToLower(a.Address)
	// net/mail unquotes the local part ("a b"@example.com becomes
	// a b@example.com); such an address could not be written back into a
	// header or compared with a configured agent, so it is refused.
	if b, err := mail.ParseAddress(addr); err != nil || b.Address != addr {
		return "", fmt.Errorf("unsupported address %q: quoted local parts are not accepted", shorten(s))
	}
	return addr, nil
}

// parseTicketNumber accepts 1042, #1042 and [Prefix#1042] (with optional
// spaces around '#', like subject tags) and returns the number without
// leading zeros.
func parseTicketNumber(arg string) (string, error) {
	const want = "#merge needs a ticket number like 1042 or [Ticket#1042]"
	s := arg
	switch {
	case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
		inner := s[1 : len(s)-1]
		i := strings.LastIndexByte(inner, '#')
		if i < 0 || strings.ContainsAny(inner[:i], "[]") {
			return "", fmt.Errorf("%s (got %q)", want, shorten(arg))
		}
		s = inner[i+1:]
	case strings.HasPrefix(s, "#"):
		s = s[1:]
	}
	s = trimLine(s)
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return "", fmt.Errorf("%s (got %q)", want, shorten(arg))
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return "", fmt.Errorf("#merge: %q is not a ticket number", shorten(arg))
	}
	return strconv.FormatUint(n, 10), nil
}

// isTeamName applies the configuration's rule for team names.
func isTeamName(s string) bool {
	if s == "" || len(s) > maxTeamLen {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '.', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}

// isAgentName accepts one word of letters, digits and the punctuation found
// in names and local parts ("zoë", "o'neil", "j.doe"). Configured names are
// free text, so this only rejects what cannot be meant as a name.
func isAgentName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) && !strings.ContainsRune(".-_'", r) {
			return false
		}
	}
	return true
}

// conflicts reports commands that contradict an earlier one. Status
// commands conflict with each other; assign, team, priority and merge with
// another of their kind with a different argument; cc with the opposite cc
// of the same address.
func conflicts(cmds []Command, texts []string) []Error {
	type first struct {
		c    Command
		text string
	}
	var (
		out    []Error
		status *first
		single = map[Kind]first{}
		cc     = map[string]first{} // address → first cc command for it
	)
	for i, c := range cmds {
		var prev *first
		switch {
		case c.Kind == KindClose || c.Kind == KindResolve || c.Kind == KindPending || c.Kind == KindOpen:
			if status == nil {
				status = &first{c, texts[i]}
			} else if status.c.Kind != c.Kind {
				prev = status
			}
		case c.Kind == KindAssign || c.Kind == KindTeam || c.Kind == KindPriority || c.Kind == KindMerge:
			if f, ok := single[c.Kind]; !ok {
				single[c.Kind] = first{c, texts[i]}
			} else if f.c.Arg != c.Arg {
				prev = &f
			}
		case c.Kind == KindCC:
			addr := c.Arg[1:]
			if f, ok := cc[addr]; !ok {
				cc[addr] = first{c, texts[i]}
			} else if f.c.Arg != c.Arg {
				prev = &f
			}
		}
		if prev != nil {
			out = append(out, Error{Line: c.Line, Text: texts[i],
				Problem: fmt.Sprintf("contradicts %s on line %d", prev.text, prev.c.Line)})
		}
	}
	return out
}

// suggest returns the known command name a mistyped name most likely meant,
// or "".
func suggest(name string) string {
	// "#close." or "#assign:bob": the letters before the punctuation may be
	// exactly a command.
	letters := name
	if i := strings.IndexFunc(name, func(r rune) bool { return !unicode.IsLetter(r) }); i > 0 {
		letters = name[:i]
	}
	for _, k := range allKinds {
		if letters == string(k) {
			return string(k)
		}
	}
	best, bestDist := "", 3
	for _, k := range allKinds {
		d := editDistance(letters, string(k))
		limit := 2
		if len(k) <= 4 {
			limit = 1
		}
		if d <= limit && d < bestDist {
			best, bestDist = string(k), d
		}
	}
	if best != "" {
		return best
	}
	// An abbreviation: "#prio", "#ass".
	if len(letters) >= 3 {
		for _, k := range allKinds {
			if strings.HasPrefix(string(k), letters) {
				return string(k)
			}
		}
	}
	return ""
}

// editDistance is the optimal string alignment distance (Levenshtein plus
// adjacent transpositions, so "clsoe" is one edit from "close"), in runes.
// Both inputs are short: names are compared only against command names.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 32 {
		// Far longer than any command name; avoid quadratic work.
		return len(ra)
	}
	// d[i][j] is the distance between ra[:i] and rb[:j].
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// shorten bounds text echoed back in errors.
func shorten(s string) string {
	if utf8.RuneCountInString(s) <= maxErrorText {
		return s
	}
	r := []rune(s)
	return string(r[:maxErrorText]) + "…"
}
