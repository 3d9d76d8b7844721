package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// The demo is the first thing a newcomer runs: it must work end to end and
// say what happened.
func TestDemoRunsEndToEnd(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), &out, Options{}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"Subject: [Ticket#1]",
		"Auto-Submitted: auto-replied",
		"In-Reply-To: <printer-1@customer.example>",
		"joined ticket #1",
		"notification to the agent",
		"relayed to the customer",
		"a technician is on the way",
		"a ticket of their own, #2",
		"Ann got 2 mails in all",
		"matched_by=token",
		"agent ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
