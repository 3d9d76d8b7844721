package inbox

import (
	"encoding/base64"
	"strings"
	"testing"
)

// TestXOAUTH2ClientBytes pins the XOAUTH2 initial response byte for byte
// (the format Google and Microsoft document) and its answer to the error
// challenge.
func TestXOAUTH2ClientBytes(t *testing.T) {
	t.Parallel()
	c := newXOAUTH2Client("support@example.com", "ya29.tok-en")
	mech, ir, err := c.Start()
	if err != nil || mech != "XOAUTH2" {
		t.Fatalf("Start = %q, %v", mech, err)
	}
	const want = "user=support@example.com\x01auth=Bearer ya29.tok-en\x01\x01"
	if string(ir) != want {
		t.Errorf("initial response = %q, want %q", ir, want)
	}
	// Google's documented example, base64 of the same layout.
	const googleExample = "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
	g := newXOAUTH2Client("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
	if _, ir, _ := g.Start(); base64.StdEncoding.EncodeToString(ir) != googleExample {
		t.Errorf("initial response = %s, want Google's example %s", base64.StdEncoding.EncodeToString(ir), googleExample)
	}

	// On failure the server sends a JSON challenge; the client answers
	// with a dummy response (see newXOAUTH2Client for why not an empty
	// one) and remembers why.
	resp, err := c.Next([]byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`))
	if err != nil || string(resp) != "\x01" {
		t.Errorf("Next = %q, %v; want %q", resp, err, "\x01")
	}
	if want := `status 401, scope "https://mail.google.com/"`; c.refusal != want {
		t.Errorf("refusal = %q, want %q", c.refusal, want)
	}
	if _, err := c.Next([]byte(`{}`)); err == nil {
		t.Error("a second challenge was answered; want an error")
	}
}

func TestOAuthBearerClientBytes(t *testing.T) {
	t.Parallel()
	c := newOAuthBearerClient("support", "tok", "imap.example.com", 993)
	mech, ir, err := c.Start()
	if err != nil || mech != "OAUTHBEARER" {
		t.Fatalf("Start = %q, %v", mech, err)
	}
	// RFC 7628 §3.1: gs2 header with authzid, then host, port and auth.
	const want = "n,a=support,\x01host=imap.example.com\x01port=993\x01auth=Bearer tok\x01\x01"
	if string(ir) != want {
		t.Errorf("initial response = %q, want %q", ir, want)
	}
	resp, err := c.Next([]byte(`{"status":"invalid_token","schemes":"bearer"}`))
	if err != nil || string(resp) != "\x01" {
		t.Errorf("Next = %q, %v; want %q (RFC 7628 §3.2.3)", resp, err, "\x01")
	}
	if c.refusal != "status invalid_token" {
		t.Errorf("refusal = %q", c.refusal)
	}
}

func TestPickMechanism(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		offered []string
		want    string
	}{
		{[]string{"PLAIN", "XOAUTH2", "OAUTHBEARER"}, mechXOAUTH2},
		{[]string{"OAUTHBEARER", "XOAUTH2"}, mechXOAUTH2},
		{[]string{"PLAIN", "oauthbearer"}, mechOAUTHBEARER},
		{[]string{"xoauth2"}, mechXOAUTH2},
		{[]string{"PLAIN", "LOGIN"}, ""},
		{nil, ""},
	} {
		if got := pickMechanism(tc.offered); got != tc.want {
			t.Errorf("pickMechanism(%v) = %q, want %q", tc.offered, got, tc.want)
		}
	}
}

func TestDescribeRefusal(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`: `status 400, scope "https://mail.google.com/"`,
		`{"status":"invalid_token"}`: "status invalid_token",
		`not json`:                   `"not json"`,
		``:                           "no details",
		strings.Repeat("x", 300):     `"` + strings.Repeat("x", 200) + `…"`,
	} {
		if got := describeRefusal([]byte(in)); got != want {
			t.Errorf("describeRefusal(%.40q) = %q, want %q", in, got, want)
		}
	}
}
