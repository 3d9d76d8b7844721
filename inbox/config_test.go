package inbox

import (
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	lo, hi := time.Second, 5*time.Minute
	prevCeiling := time.Duration(0)
	for n := 0; n < 40; n++ {
		ceiling := min(lo<<min(n, 30), hi)
		if ceiling < prevCeiling {
			t.Fatalf("ceiling shrank at n=%d", n)
		}
		prevCeiling = ceiling
		for i := 0; i < 50; i++ {
			d := backoff(n, lo, hi)
			if d < lo || d > hi {
				t.Fatalf("backoff(%d) = %v, outside [%v, %v]", n, d, lo, hi)
			}
			if d < ceiling/2 || d > ceiling {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, ceiling/2, ceiling)
			}
		}
	}
	if d := backoff(100, lo, hi); d < hi/2 {
		t.Errorf("backoff after many failures = %v, want near the cap %v", d, hi)
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c := Config{Name: "support", Host: "imap.example.com", Username: "u"}.withDefaults()
	if c.TLS != TLSImplicit || c.Port != 993 || c.Folder != "INBOX" || c.FetchBatch != 100 ||
		c.PollInterval != time.Minute || c.MinBackoff != time.Second || c.MaxBackoff != 5*time.Minute {
		t.Errorf("defaults = %+v", c)
	}
	if err := c.validate(); err != nil {
		t.Errorf("validate defaults: %v", err)
	}
	if p := (Config{TLS: "STARTTLS"}).withDefaults(); p.Port != 143 || p.TLS != TLSStartTLS {
		t.Errorf("starttls defaults: port %d tls %q", p.Port, p.TLS)
	}
	if got := (Config{PollInterval: time.Hour}).withDefaults().idleFor(); got != MaxIdle {
		t.Errorf("idleFor with a 1h poll interval = %v, want %v", got, MaxIdle)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	bad := Config{TLS: "ssl", Port: 70000, MoveTo: "inbox"}.withDefaults()
	err := bad.validate()
	if err == nil {
		t.Fatal("validate accepted a bad config")
	}
	for _, want := range []string{"name is empty", "host is empty", "username is empty", `tls "ssl"`, "port 70000", `move_to "inbox"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestAllowsKeyword(t *testing.T) {
	t.Parallel()
	cases := []struct {
		perm []imap.Flag
		want bool
	}{
		{nil, true},
		{[]imap.Flag{imap.FlagSeen, imap.FlagWildcard}, true},
		{[]imap.Flag{imap.FlagSeen, "$helpdeskquarantine"}, true},
		{[]imap.Flag{imap.FlagSeen, imap.FlagDeleted}, false},
	}
	for _, c := range cases {
		if got := allowsKeyword(c.perm); got != c.want {
			t.Errorf("allowsKeyword(%v) = %v, want %v", c.perm, got, c.want)
		}
	}
}
