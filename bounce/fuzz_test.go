package bounce

import "testing"

// FuzzParse checks that parse (Parse without its panic guard) never panics
// and that every Report keeps the documented invariants. Seeds:
// testdata/fuzz/FuzzParse (small real bounces and broken reports).
func FuzzParse(f *testing.F) {
	f.Add(dsnMail("Final-Recipient: rfc822; a@example.org", "Action: failed", "Status: 5.1.1"))
	f.Add([]byte("From: MAILER-DAEMON@x.example\nSubject: failure notice\n\nHi. This is the qmail-send program\n<a@b.example>:\n550 5.1.1 no\n--- Below this line is a copy of the message.\n\nMessage-ID: <x@y>\n"))
	f.Add([]byte("Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: message/delivery-status\nFinal-Recipient: rfc822; a@b.example\n--b"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r := parse(raw)
		checkInvariants(t, "fuzz", r)
		_ = r.IsBounce()
	})
}
