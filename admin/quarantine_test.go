package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/helpdesk/helpdesk/store"
)

// fakeQuarantine answers by id: 1 works, 2 is still unfit, else not found.
type fakeQuarantine struct{ calls []string }

func (f *fakeQuarantine) do(verb string, id uint64) (QuarantineOutcome, error) {
	f.calls = append(f.calls, fmt.Sprintf("%s %d", verb, id))
	switch id {
	case 1:
		return QuarantineOutcome{ID: 1, TicketID: 7, Rule: "new", Acked: verb == "replay"}, nil
	case 2:
		return QuarantineOutcome{}, fmt.Errorf("message too large: 9 bytes, limit 8: %w", ErrStillQuarantined)
	}
	return QuarantineOutcome{}, store.ErrNotFound
}

func (f *fakeQuarantine) ReplayQuarantined(_ context.Context, id uint64) (QuarantineOutcome, error) {
	return f.do("replay", id)
}

func (f *fakeQuarantine) ReleaseQuarantined(_ context.Context, id uint64) (QuarantineOutcome, error) {
	return f.do("release", id)
}

func newTestServer(t *testing.T) (*httptest.Server, *fakeQuarantine) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "hd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	fake := &fakeQuarantine{}
	srv := httptest.NewServer((&Server{DB: db, Log: slog.New(slog.DiscardHandler), Quarantine: fake}).Handler())
	t.Cleanup(srv.Close)
	return srv, fake
}

func TestQuarantineActionsThroughTheClient(t *testing.T) {
	srv, fake := newTestServer(t)
	c := Client{Base: srv.URL}
	ctx := context.Background()
	out, err := c.ReplayQuarantined(ctx, 1)
	if err != nil || out != (QuarantineOutcome{ID: 1, TicketID: 7, Rule: "new", Acked: true}) {
		t.Errorf("replay: %+v %v", out, err)
	}
	if out, err := c.ReleaseQuarantined(ctx, 1); err != nil || out.TicketID != 7 || out.Acked {
		t.Errorf("release: %+v %v", out, err)
	}
	_, err = c.ReplayQuarantined(ctx, 2)
	if !errors.Is(err, ErrStillQuarantined) || err.Error() != "message too large: 9 bytes, limit 8: "+ErrStillQuarantined.Error() {
		t.Errorf("still quarantined: %v", err)
	}
	if _, err := c.ReplayQuarantined(ctx, 3); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
	if strings.Join(fake.calls, ",") != "replay 1,release 1,replay 2,replay 3" {
		t.Errorf("calls %v", fake.calls)
	}
}

// The endpoint changes the database: no plain form post, no foreign Host
// name (DNS rebinding), no GET.
func TestQuarantineActionsRefuseBrowsers(t *testing.T) {
	srv, fake := newTestServer(t)
	post := func(host, contentType string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/quarantine/1/replay", strings.NewReader("{}"))
		if host != "" {
			req.Host = host
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		host, ct string
		want     int
	}{
		{"", "application/x-www-form-urlencoded", http.StatusForbidden},
		{"", "", http.StatusForbidden},
		{"evil.example:8025", "application/json", http.StatusForbidden},
		{"localhost:8025", "application/json", http.StatusOK},
		{"[::1]:8025", "application/json; charset=utf-8", http.StatusOK},
	} {
		if got := post(c.host, c.ct); got != c.want {
			t.Errorf("Host %q Content-Type %q: %d, want %d", c.host, c.ct, got, c.want)
		}
	}
	resp, err := http.Get(srv.URL + "/api/quarantine/1/replay")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
	if len(fake.calls) != 2 {
		t.Errorf("%d actions ran, want the two allowed", len(fake.calls))
	}
}

// Reading tickets or taking a backup needs a loopback peer and a loopback
// Host (DNS rebinding); health and metrics stay open for scrapers.
func TestAPIReadsAreLoopbackOnly(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "hd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := &Server{DB: db, Log: slog.New(slog.DiscardHandler)}
	h := s.Handler()
	for _, c := range []struct {
		path, remote, host string
		want               int
	}{
		{"/api/tickets", "127.0.0.1:5000", "127.0.0.1:8025", http.StatusOK},
		{"/api/tickets", "127.0.0.1:5000", "localhost:8025", http.StatusOK},
		{"/api/tickets", "127.0.0.1:5000", "evil.example:8025", http.StatusForbidden},
		{"/api/backup", "127.0.0.1:5000", "evil.example", http.StatusForbidden},
		{"/api/tickets", "192.0.2.7:5000", "127.0.0.1:8025", http.StatusForbidden},
		{"/healthz", "192.0.2.7:5000", "helpdesk.example.com:8025", http.StatusOK},
	} {
		req := httptest.NewRequest("GET", c.path, nil)
		req.RemoteAddr, req.Host = c.remote, c.host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s from %s Host %s: %d, want %d", c.path, c.remote, c.host, rec.Code, c.want)
		}
	}
}
