package agent

import (
	"bufio"
	"strings"
	"testing"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

const trusted = "mx.helpdesk.example"

// header builds a mail header with the given Authentication-Results
// values, topmost first, and From: alice@example.com.
func header(results ...string) mail.Header {
	var h mail.Header
	h.Set("From", "Alice <alice@example.com>")
	for _, r := range results {
		h.Add("Authentication-Results", r)
	}
	return h
}

func TestVerify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		header  mail.Header
		from    string // default alice@example.com
		authsrv string // default trusted; "-" for ""
		ok      bool
		reason  string // substring of Reason
	}{
		{name: "no requirement", header: header(), authsrv: "-", ok: true, reason: "no Authentication-Results required"},
		{name: "no header", header: header(), reason: "no Authentication-Results from " + trusted},
		{name: "wrong authserv-id", header: header("mx.evil.example; dkim=pass header.d=example.com"),
			reason: "no Authentication-Results from"},
		{name: "authserv-id that merely contains ours", header: header("mx.helpdesk.example.evil.net; dkim=pass header.d=example.com"),
			reason: "no Authentication-Results from"},
		{name: "dkim pass aligned", header: header(trusted + "; dkim=pass header.d=example.com header.s=s1"),
			ok: true, reason: "dkim=pass header.d=example.com"},
		{name: "authserv-id case-insensitive", header: header("MX.HelpDesk.Example; dkim=pass header.d=Example.COM."),
			ok: true},
		{name: "dkim pass parent domain aligned", header: func() mail.Header {
			h := header(trusted + "; dkim=pass header.d=example.com")
			h.Set("From", "alice@eu.example.com")
			return h
		}(), from: "alice@eu.example.com", ok: true},
		{name: "dkim pass subdomain aligned", header: header(trusted + "; dkim=pass header.d=mail.example.com"),
			ok: true},
		{name: "dkim pass header.i only", header: header(trusted + "; dkim=pass header.i=@example.com"), ok: true},
		{name: "dkim pass unaligned", header: header(trusted + "; dkim=pass header.d=evil.example.net"),
			reason: "dkim=pass header.d=evil.example.net (not aligned)"},
		{name: "dkim pass lookalike suffix", header: header(trusted + "; dkim=pass header.d=notexample.com"),
			reason: "not aligned"},
		{name: "dkim pass for a TLD", header: header(trusted + "; dkim=pass header.d=com"), reason: "not aligned"},
		{name: "dkim pass without domain", header: header(trusted + "; dkim=pass"), reason: "not aligned"},
		{name: "dkim fail aligned", header: header(trusted + "; dkim=fail header.d=example.com"),
			reason: "dkim=fail header.d=example.com"},
		{name: "dkim pass unaligned and aligned", header: header(trusted + "; dkim=pass header.d=esp.example.net; dkim=pass header.d=example.com"),
			ok: true},
		{name: "spf pass aligned", header: header(trusted + "; spf=pass smtp.mailfrom=bounces@example.com"),
			ok: true, reason: "spf=pass"},
		{name: "spf pass bare domain", header: header(trusted + "; spf=pass smtp.mailfrom=example.com"), ok: true},
		{name: "spf pass unaligned", header: header(trusted + "; spf=pass smtp.mailfrom=bounce@esp.example.net"),
			reason: "not aligned"},
		{name: "spf fail", header: header(trusted + "; spf=fail smtp.mailfrom=alice@example.com"),
			reason: "spf=fail"},
		{name: "spf softfail", header: header(trusted + "; spf=softfail smtp.mailfrom=alice@example.com")},
		{name: "spf pass on helo only", header: header(trusted + "; spf=pass smtp.helo=mail.example.com")},
		{name: "dmarc pass", header: header(trusted + "; dmarc=pass header.from=example.com"),
			ok: true, reason: "dmarc=pass"},
		{name: "dmarc pass other domain", header: header(trusted + "; dmarc=pass header.from=evil.example.net"),
			reason: "not aligned"},
		{name: "dmarc pass without header.from", header: header(trusted + "; dmarc=pass")},
		{name: "dmarc fail", header: header(trusted + "; dmarc=fail header.from=example.com"), reason: "dmarc=fail"},
		{name: "only other methods", header: header(trusted + "; iprev=pass policy.iprev=192.0.2.1; auth=pass smtp.auth=alice"),
			reason: "no dkim, spf or dmarc result"},
		{name: "none", header: header(trusted + "; none"), reason: "no dkim, spf or dmarc result"},
		{name: "malformed: method without value", header: header(trusted + "; dkim header.d=example.com"),
			reason: "malformed field ignored"},
		{name: "malformed: unsupported version", header: header(trusted + " 2; dkim=pass header.d=example.com"),
			reason: "no Authentication-Results from"},
		{name: "malformed: unterminated comment", header: header(trusted + "; dkim=pass (oops header.d=example.com"),
			reason: "malformed field ignored"},
		{name: "malformed trusted field does not lend its pass", header: header(trusted + "; dkim=pass header.d=example.com; garbage"),
			reason: "malformed field ignored"},
		{name: "forged field passes, trusted one fails", header: header(
			trusted+"; dkim=fail header.d=example.com; spf=fail smtp.mailfrom=example.com; dmarc=fail header.from=example.com",
			"mx.helpdesk.example.attacker.net; dkim=pass header.d=example.com; dmarc=pass header.from=example.com",
			"mx.google.com; dkim=pass header.d=example.com"),
			reason: "dkim=fail header.d=example.com; spf=fail"},
		{name: "second trusted field passes", header: header(
			trusted+"; dkim=fail header.d=example.com",
			trusted+"; spf=pass smtp.mailfrom=example.com"), ok: true},
		{name: "version, comments, quotes and spaces", header: header(
			trusted + " 1 (Postfix); dkim = pass (2048-bit key; secure) header.d=\"example.com\" header.i=@example.com header.b=\"AbC+/=\"; spf=none"),
			ok: true},
		{name: "OpenDKIM style", header: header(
			trusted + "; dkim=pass (1024-bit key; unprotected) header.d=example.com header.i=@example.com header.b=\"dGVzdA==\"; dkim-atps=neutral"),
			ok: true},
		{name: "quoted reason with semicolon", header: header(
			trusted + "; dkim=fail reason=\"signature verification failed; body hash\" header.d=example.com; dmarc=pass header.from=example.com"),
			ok: true},
		{name: "Gmail style", header: header(trusted + `; dkim=pass header.i=@example.com header.s=20230601 header.b=XyZ;
       spf=pass (google.com: domain of alice@example.com designates 192.0.2.1 as permitted sender) smtp.mailfrom=alice@example.com;
       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.com`), ok: true},
		{name: "From header names someone else", header: func() mail.Header {
			h := header(trusted + "; dkim=pass header.d=example.com")
			h.Set("From", "bob@example.com")
			return h
		}(), reason: "does not contain alice@example.com"},
		{name: "From header matches case-insensitively", header: func() mail.Header {
			h := header(trusted + "; dkim=pass header.d=example.com")
			h.Set("From", "ALICE@EXAMPLE.COM")
			return h
		}(), ok: true},
		{name: "no From header", header: func() mail.Header {
			h := header(trusted + "; dkim=pass header.d=example.com")
			h.Del("From")
			return h
		}(), ok: true},
		{name: "from is not an address", header: header(trusted + "; dkim=pass header.d=example.com"),
			from: "alice", reason: `sender "alice"`},
		{name: "from is not an address even without requirement", header: header(), from: "", authsrv: "-"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			from := tc.from
			if from == "" && tc.name != "from is not an address even without requirement" {
				from = "alice@example.com"
			}
			srv := tc.authsrv
			switch srv {
			case "":
				srv = trusted
			case "-":
				srv = ""
			}
			got := Verify(tc.header, from, srv)
			if got.OK != tc.ok {
				t.Errorf("Verify().OK = %v, want %v (Reason %q)", got.OK, tc.ok, got.Reason)
			}
			if !strings.Contains(got.Reason, tc.reason) {
				t.Errorf("Verify().Reason = %q, want it to contain %q", got.Reason, tc.reason)
			}
			if got.Reason == "" {
				t.Error("Verify().Reason is empty")
			}
		})
	}
}

// TestVerifyRawHeader reads a folded header the way the ticket engine gets
// it, from raw bytes, with a forged field below the trusted one.
func TestVerifyRawHeader(t *testing.T) {
	t.Parallel()
	raw := "Authentication-Results: mx.helpdesk.example;\r\n" +
		"\tdkim=pass (2048-bit key; unprotected) header.d=example.com\r\n" +
		"\theader.i=@example.com header.a=rsa-sha256 header.s=s1 header.b=\"abc\";\r\n" +
		"\tdkim-atps=neutral\r\n" +
		"Authentication-Results: mx.helpdesk.example.evil.example.net;\r\n dmarc=pass header.from=evil.example.net\r\n" +
		"From: Alice <alice@example.com>\r\n" +
		"Subject: Re: [Ticket#1042] Printer\r\n" +
		"\r\n"
	th, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	h := mail.Header{Header: message.Header{Header: th}}
	if got := Verify(h, "alice@example.com", trusted); !got.OK {
		t.Errorf("alice: Verify() = %+v, want OK", got)
	}
	// The same results do not let the mail act as an agent elsewhere.
	h.Set("From", "mallory@evil.example.net")
	if got := Verify(h, "mallory@evil.example.net", trusted); got.OK {
		t.Errorf("mallory: Verify() = %+v, want not OK", got)
	}
}

func TestSimplifyAuthResults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		err      bool
	}{
		{in: "mx; dkim=pass header.d=example.com", want: "mx; dkim=pass header.d=example.com"},
		{in: "mx (a (nested) comment; x); dkim=pass", want: "mx  ; dkim=pass"},
		{in: `mx; dkim=pass (a \) escaped) header.d=x`, want: "mx; dkim=pass   header.d=x"},
		{in: `mx; dkim=pass header.i="@example.com"`, want: "mx; dkim=pass header.i=@example.com"},
		{in: `mx; x=y reason="two words; and (a comment)"`, want: "mx; x=y reason=_"},
		{in: `mx; x=y reason=""`, want: "mx; x=y reason=_"},
		{in: `mx; x=y reason="a \"quote\""`, want: "mx; x=y reason=_"},
		{in: "mx; dkim \t= \r\n pass", want: "mx; dkim=pass"},
		{in: `mx; dkim=pass "(not a comment)"`, want: "mx; dkim=pass _"},
		{in: "mx; (unterminated", err: true},
		{in: `mx; "unterminated`, err: true},
		{in: `mx; (escaped end\)`, err: true},
	}
	for _, tc := range tests {
		got, err := simplifyAuthResults(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("simplifyAuthResults(%q) error = %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if got != tc.want {
			t.Errorf("simplifyAuthResults(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestAligned(t *testing.T) {
	t.Parallel()
	tests := []struct {
		auth, from string
		want       bool
	}{
		{"example.com", "example.com", true},
		{"mail.example.com", "example.com", true},
		{"example.com", "eu.example.com", true},
		{"a.example.com", "b.example.com", false}, // siblings: no public suffix list to find their organisation
		{"notexample.com", "example.com", false},
		{"example.com", "notexample.com", false},
		{"com", "example.com", false},
		{"", "example.com", false},
		{"example.com", "", false},
	}
	for _, tc := range tests {
		if got := aligned(tc.auth, tc.from); got != tc.want {
			t.Errorf("aligned(%q, %q) = %v, want %v", tc.auth, tc.from, got, tc.want)
		}
	}
}
