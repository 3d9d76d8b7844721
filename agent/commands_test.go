package agent

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParse(t *testing.T) {
	t.Parallel()
	type cmd = Command
	tests := []struct {
		name     string
		in       string
		commands []Command
		body     string
		// errors lists "line: substring of Problem" for each expected Error.
		errors []string
	}{
		{name: "no commands", in: "Hello,\n\nthe printer works again.\n",
			body: "Hello,\n\nthe printer works again.\n"},
		{name: "empty", in: ""},
		{name: "leading blank lines removed from plain text", in: "\n  \n\nHello\n",
			body: "Hello\n"},
		{name: "close", in: "#close\nDone, thanks.", commands: []cmd{{KindClose, "", 1}}, body: "Done, thanks."},
		{name: "resolve", in: "#resolve\n", commands: []cmd{{KindResolve, "", 1}}},
		{name: "pending", in: "#pending\nCould you send a photo?", commands: []cmd{{KindPending, "", 1}},
			body: "Could you send a photo?"},
		{name: "open", in: "#open", commands: []cmd{{KindOpen, "", 1}}},
		{name: "case and surrounding space", in: "   #CLOSE \t\nBye", commands: []cmd{{KindClose, "", 1}}, body: "Bye"},
		{name: "assign me", in: "#assign ME\n", commands: []cmd{{KindAssign, "me", 1}}},
		{name: "assign address", in: "#assign Bob@Example.COM\n", commands: []cmd{{KindAssign, "bob@example.com", 1}}},
		{name: "assign name-addr", in: "#assign Bob Smith <Bob@example.com>", commands: []cmd{{KindAssign, "bob@example.com", 1}}},
		{name: "assign bare name", in: "#assign Zoë\n", commands: []cmd{{KindAssign, "zoë", 1}}},
		{name: "assign with tab", in: "#assign\tbob", commands: []cmd{{KindAssign, "bob", 1}}},
		{name: "team", in: "#team L2-Network", commands: []cmd{{KindTeam, "l2-network", 1}}},
		{name: "priority", in: "#priority Urgent", commands: []cmd{{KindPriority, "urgent", 1}}},
		{name: "priority low normal high", in: "#priority low\n\n#Priority NORMAL\n#priority high", commands: []cmd{
			{KindPriority, "low", 1}, {KindPriority, "normal", 3}, {KindPriority, "high", 4}},
			errors: []string{"3: contradicts #priority low on line 1", "4: contradicts #priority low on line 1"}},
		{name: "cc add and remove", in: "#cc +Ann@Example.org\n#cc -bob@example.com\n", commands: []cmd{
			{KindCC, "+ann@example.org", 1}, {KindCC, "-bob@example.com", 2}}},
		{name: "cc with space and dash quirks", in: "#cc + ann@example.org\n#cc –bob@example.com\n#cc \u2212carl@example.com", commands: []cmd{
			{KindCC, "+ann@example.org", 1}, {KindCC, "-bob@example.com", 2}, {KindCC, "-carl@example.com", 3}}},
		{name: "cc name-addr", in: "#cc +Ann <ann@example.org>", commands: []cmd{{KindCC, "+ann@example.org", 1}}},
		{name: "merge number", in: "#merge 1042", commands: []cmd{{KindMerge, "1042", 1}}},
		{name: "merge hash", in: "#merge #1042", commands: []cmd{{KindMerge, "1042", 1}}},
		{name: "merge tag", in: "#merge [Ticket#1042]", commands: []cmd{{KindMerge, "1042", 1}}},
		{name: "merge tag with spaces and other prefix", in: "#merge [Support # 0042]", commands: []cmd{{KindMerge, "42", 1}}},
		{name: "note with body", in: "#note\nCustomer called, VIP.\n-- \nAlice", commands: []cmd{{KindNote, "", 1}},
			body: "Customer called, VIP.\n-- \nAlice"},
		{name: "several commands with blank lines", in: "\n#assign me\n\n#priority high\n#pending\n\nHi Ann,\n\nplease reboot.\n",
			commands: []cmd{{KindAssign, "me", 2}, {KindPriority, "high", 4}, {KindPending, "", 5}},
			body:     "Hi Ann,\n\nplease reboot.\n"},
		{name: "CRLF", in: "#close\r\n\r\nThanks,\r\nAlice\r\n", commands: []cmd{{KindClose, "", 1}}, body: "Thanks,\nAlice\n"},
		{name: "lone CR", in: "#close\r#priority low\rBye", commands: []cmd{{KindClose, "", 1}, {KindPriority, "low", 2}}, body: "Bye"},
		{name: "invisible characters", in: "\ufeff#close\u200b\n\u00a0\nBye", commands: []cmd{{KindClose, "", 1}}, body: "Bye"},
		{name: "duplicate identical status is harmless", in: "#close\n#CLOSE", commands: []cmd{{KindClose, "", 1}, {KindClose, "", 2}}},

		// Text that looks like commands but is not.
		{name: "hash in prose after block", in: "#close\nThanks!\n#1 priority is the printer\n#hashtag\n#open",
			commands: []cmd{{KindClose, "", 1}}, body: "Thanks!\n#1 priority is the printer\n#hashtag\n#open"},
		{name: "hash digit at top is prose", in: "#1 priority is the printer\n#close", body: "#1 priority is the printer\n#close"},
		{name: "markdown heading is prose", in: "# Summary\nAll good", body: "# Summary\nAll good"},
		{name: "hash alone is prose", in: "#\n#close", body: "#\n#close"},
		{name: "prose first then command-like", in: "Hi\n#close", body: "Hi\n#close"},

		// Errors.
		{name: "typo transposition", in: "#clsoe\nThanks", body: "Thanks",
			errors: []string{`1: unknown command "#clsoe" (did you mean #close?)`}},
		{name: "typo substitution", in: "#asign me", errors: []string{`1: unknown command "#asign" (did you mean #assign?)`}},
		{name: "typo past tense", in: "#resolved", errors: []string{`(did you mean #resolve?)`}},
		{name: "abbreviation", in: "#prio high", errors: []string{`(did you mean #priority?)`}},
		{name: "trailing punctuation", in: "#close.", errors: []string{`unknown command "#close." (did you mean #close?)`}},
		{name: "colon", in: "#assign:bob", errors: []string{`(did you mean #assign?)`}},
		{name: "unknown without suggestion", in: "#hashtag\nHello", body: "Hello",
			errors: []string{`1: unknown command "#hashtag"`}},
		{name: "unknown in the middle of the block", in: "#close\n\n#foo\n#priority low\nText",
			commands: []cmd{{KindClose, "", 1}, {KindPriority, "low", 4}}, body: "Text",
			errors: []string{`3: unknown command "#foo"`}},
		{name: "status with argument", in: "#close thanks", errors: []string{`1: #close takes no argument (got "thanks")`}},
		{name: "note with argument", in: "#note called her", errors: []string{"1: #note takes no argument"}},
		{name: "assign missing", in: "#assign", errors: []string{"1: #assign needs an agent"}},
		{name: "assign two words", in: "#assign bob smith", errors: []string{"1: #assign takes one agent"}},
		{name: "assign bad address", in: "#assign bob@", errors: []string{`1: #assign: bad address "bob@"`}},
		{name: "assign bad name", in: "#assign b*b", errors: []string{`1: #assign: "b*b" is not an agent name`}},
		{name: "team missing", in: "#team", errors: []string{"1: #team needs a team name"}},
		{name: "team bad", in: "#team l2/network", errors: []string{`1: bad team name "l2/network"`}},
		{name: "team two words", in: "#team l2 network", errors: []string{`1: bad team name`}},
		{name: "team too long", in: "#team " + strings.Repeat("a", 65), errors: []string{`1: bad team name`}},
		{name: "priority missing", in: "#priority", errors: []string{"1: #priority needs one of"}},
		{name: "priority bad", in: "#priority hgih", errors: []string{`1: unknown priority "hgih"`}},
		{name: "cc without sign", in: "#cc ann@example.org", errors: []string{"1: #cc needs +address"}},
		{name: "cc sign only", in: "#cc +", errors: []string{"1: #cc needs +address"}},
		{name: "cc missing", in: "#cc", errors: []string{"1: #cc needs +address"}},
		{name: "cc bad address", in: "#cc +ann", errors: []string{`1: #cc: bad address "ann"`}},
		{name: "cc two addresses", in: "#cc +a@example.org, b@example.org", errors: []string{`1: #cc: bad address`}},
		{name: "merge missing", in: "#merge", errors: []string{"1: #merge needs a ticket number"}},
		{name: "merge zero", in: "#merge 0", errors: []string{`1: #merge: "0" is not a ticket number`}},
		{name: "merge negative", in: "#merge -5", errors: []string{"1: #merge needs a ticket number"}},
		{name: "merge words", in: "#merge ticket 5", errors: []string{"1: #merge needs a ticket number"}},
		{name: "merge overflow", in: "#merge 99999999999999999999", errors: []string{"is not a ticket number"}},
		{name: "merge bad tag", in: "#merge [Ticket 1042]", errors: []string{"1: #merge needs a ticket number"}},
		{name: "conflicting status", in: "#close\n#open\nHi",
			commands: []cmd{{KindClose, "", 1}, {KindOpen, "", 2}}, body: "Hi",
			errors: []string{"2: contradicts #close on line 1"}},
		{name: "conflicting assign", in: "#assign me\n#assign bob", commands: []cmd{{KindAssign, "me", 1}, {KindAssign, "bob", 2}},
			errors: []string{"2: contradicts #assign me on line 1"}},
		{name: "conflicting team", in: "#team a\n#team b", commands: []cmd{{KindTeam, "a", 1}, {KindTeam, "b", 2}},
			errors: []string{"2: contradicts #team a on line 1"}},
		{name: "conflicting merge", in: "#merge 1\n#merge 2", commands: []cmd{{KindMerge, "1", 1}, {KindMerge, "2", 2}},
			errors: []string{"2: contradicts #merge 1 on line 1"}},
		{name: "conflicting cc", in: "#cc +a@example.org\n#cc -A@example.org\n#cc -b@example.org",
			commands: []cmd{{KindCC, "+a@example.org", 1}, {KindCC, "-a@example.org", 2}, {KindCC, "-b@example.org", 3}},
			errors:   []string{"2: contradicts #cc +a@example.org on line 1"}},
		{name: "errors in line order", in: "#close\n#open\n#clsoe",
			commands: []cmd{{KindClose, "", 1}, {KindOpen, "", 2}},
			errors:   []string{"2: contradicts #close", "3: unknown command"}},
		{name: "same team in two spellings is no conflict", in: "#team L1\n#team l1",
			commands: []cmd{{KindTeam, "l1", 1}, {KindTeam, "l1", 2}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := Parse(tc.in)
			if diff := cmp.Diff(tc.commands, p.Commands, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Commands mismatch (-want +got):\n%s", diff)
			}
			if p.Body != tc.body {
				t.Errorf("Body = %q, want %q", p.Body, tc.body)
			}
			if len(p.Errors) != len(tc.errors) {
				t.Fatalf("Errors = %q, want %d errors matching %q", p.Errors, len(tc.errors), tc.errors)
			}
			for i, want := range tc.errors {
				got := p.Errors[i].Error()
				// Error() is "line N: TEXT: PROBLEM"; compare against
				// "N: PROBLEM" (or a bare substring of the problem).
				short := strings.TrimPrefix(got, "line ")
				short = strings.Replace(short, ": "+p.Errors[i].Text+":", ":", 1)
				if !strings.Contains(short, want) {
					t.Errorf("Errors[%d] = %q, want it to contain %q", i, short, want)
				}
			}
		})
	}
}

func TestParseErrorFields(t *testing.T) {
	t.Parallel()
	p := Parse("\n  #clsoe   \nHi")
	want := []Error{{Line: 2, Text: "#clsoe", Problem: `unknown command "#clsoe" (did you mean #close?)`}}
	if diff := cmp.Diff(want, p.Errors); diff != "" {
		t.Fatalf("Errors mismatch (-want +got):\n%s", diff)
	}
	if got, want := p.Errors[0].Error(), `line 2: #clsoe: unknown command "#clsoe" (did you mean #close?)`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestParseLimits(t *testing.T) {
	t.Parallel()
	t.Run("long line is shortened in errors", func(t *testing.T) {
		t.Parallel()
		p := Parse("#close " + strings.Repeat("x", 10000))
		if len(p.Errors) != 1 {
			t.Fatalf("Errors = %v, want one", p.Errors)
		}
		if n := len([]rune(p.Errors[0].Text)); n > maxErrorText+1 {
			t.Errorf("Error.Text has %d runes, want at most %d", n, maxErrorText+1)
		}
		if len(p.Errors[0].Problem) > 3*maxErrorText {
			t.Errorf("Error.Problem is %d bytes long", len(p.Errors[0].Problem))
		}
	})
	t.Run("too many command lines", func(t *testing.T) {
		t.Parallel()
		p := Parse(strings.Repeat("#close\n", 1000) + "Body")
		if len(p.Commands) != maxCommandLines {
			t.Errorf("got %d commands, want %d", len(p.Commands), maxCommandLines)
		}
		if len(p.Errors) != 1 || !strings.Contains(p.Errors[0].Problem, "too many command lines") || p.Errors[0].Line != maxCommandLines+1 {
			t.Errorf("Errors = %v, want one 'too many' error on line %d", p.Errors, maxCommandLines+1)
		}
		if p.Body != "Body" {
			t.Errorf("Body = %q, want %q", p.Body, "Body")
		}
	})
}

func TestStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		status string
		ok     bool
	}{
		{"#close", "closed", true},
		{"#resolve", "resolved", true},
		{"#pending", "pending", true},
		{"#open", "open", true},
		{"#assign me\n#close\n#close", "closed", true},
		{"#assign me", "", false},
		{"Hello", "", false},
		{"#close\n#open", "", false},
		{"#clsoe", "", false},
	}
	for _, tc := range tests {
		status, ok := Parse(tc.in).Status()
		if status != tc.status || ok != tc.ok {
			t.Errorf("Parse(%q).Status() = %q, %v; want %q, %v", tc.in, status, ok, tc.status, tc.ok)
		}
	}
}

func TestIsNoteAndCommandsOnly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in            string
		note, cmdOnly bool
	}{
		{"#note\nCalled the customer.", true, false},
		{"#note", true, true},
		{"#close\r\n\r\n \r\n", false, true},
		{"#close\n\u200b\n", false, true},
		{"#close\nThanks", false, false},
		{"Thanks", false, false},
		{"", false, true},
		{"#pending\n#NOTE\n\nWaiting for the vendor.", true, false},
		{"#close\n#note takes no args", false, true},
	}
	for _, tc := range tests {
		p := Parse(tc.in)
		if got := p.IsNote(); got != tc.note {
			t.Errorf("Parse(%q).IsNote() = %v, want %v", tc.in, got, tc.note)
		}
		if got := p.CommandsOnly(); got != tc.cmdOnly {
			t.Errorf("Parse(%q).CommandsOnly() = %v, want %v", tc.in, got, tc.cmdOnly)
		}
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	h := Help()
	lines := strings.Split(strings.TrimSuffix(h, "\n"), "\n")
	if len(lines) > 12 {
		t.Errorf("Help has %d lines, want at most 12", len(lines))
	}
	for i, l := range lines {
		if n := len([]rune(l)); n > 72 {
			t.Errorf("Help line %d is %d columns wide, want at most 72: %q", i+1, n, l)
		}
	}
	// Every command is documented, and every example in it parses.
	for _, k := range allKinds {
		if !strings.Contains(h, "#"+string(k)) {
			t.Errorf("Help does not mention #%s", k)
		}
	}
	for _, ex := range []string{"#assign me", "#assign bob@example.com", "#priority urgent", "#cc +ann@example.org", "#merge 1042", "#team l2"} {
		if p := Parse(ex); len(p.Errors) > 0 || len(p.Commands) != 1 {
			t.Errorf("example %q does not parse: %v", ex, p.Errors)
		}
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"clsoe": "close", "closed": "close", "colse": "close", "resovle": "resolve",
		"pendng": "pending", "opne": "open", "opn": "open", "asign": "assign",
		"taem": "team", "priorty": "priority", "c": "cc", "x": "", "ccc": "cc", "merg": "merge",
		"ntoe": "note", "hashtag": "", "xyz": "", "notes": "note", "todo": "",
	}
	for in, want := range tests {
		if got := suggest(in); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
