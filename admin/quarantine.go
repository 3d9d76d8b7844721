package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/helpdesk/helpdesk/store"
)

// ErrStillQuarantined is returned (wrapped, with the reason) when a replayed
// mail still cannot become part of a ticket; it stays quarantined.
var ErrStillQuarantined = errors.New("still cannot become part of a ticket")

// QuarantineOutcome is what replaying or releasing a quarantined mail did.
type QuarantineOutcome struct {
	ID       uint64 `json:"id"`         // the quarantined mail, now gone from the quarantine
	TicketID uint64 `json:"ticket_id"`  // the ticket the mail is on now
	Rule     string `json:"matched_by"` // new, token, …, duplicate (a copy was stored meanwhile), released
	Acked    bool   `json:"acked"`      // an acknowledgement was queued
}

// Quarantiner replays and releases quarantined mail: the running daemon's
// ticket engine, an engine the CLI builds on the database file, or a
// Client asking the daemon.
type Quarantiner interface {
	// ReplayQuarantined runs the mail through the ticket engine again.
	ReplayQuarantined(ctx context.Context, id uint64) (QuarantineOutcome, error)
	// ReleaseQuarantined forces the mail into a new ticket.
	ReleaseQuarantined(ctx context.Context, id uint64) (QuarantineOutcome, error)
}

// quarantineAction serves POST /api/quarantine/{id}/{replay|release}. It
// changes the database, so beyond the listener being meant for loopback it
// insists on a loopback peer, a Host that is a loopback name (a browser
// page whose own name resolves to 127.0.0.1 sends its own name), and a
// JSON content type (a cross-site form cannot send one without a CORS
// preflight, which this server never grants).
func (s *Server) quarantineAction(w http.ResponseWriter, req *http.Request) {
	if why := localOnly(req); why != "" {
		http.Error(w, why, http.StatusForbidden)
		return
	}
	id, err := strconv.ParseUint(req.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		http.Error(w, "bad quarantine id", http.StatusBadRequest)
		return
	}
	var out QuarantineOutcome
	switch req.PathValue("action") {
	case "replay":
		out, err = s.Quarantine.ReplayQuarantined(req.Context(), id)
	case "release":
		out, err = s.Quarantine.ReleaseQuarantined(req.Context(), id)
	default:
		http.Error(w, "unknown action: use replay or release", http.StatusNotFound)
		return
	}
	if errors.Is(err, ErrStillQuarantined) {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	s.reply(w, out, err)
}

// localOnly says why req may not change anything, or "".
func localOnly(req *http.Request) string {
	if why := loopbackOnly(req); why != "" {
		return why
	}
	if ct := req.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return "Content-Type must be application/json"
	}
	return ""
}

// loopbackOnly says why req may not read the API, or "": it must come from
// a loopback peer and name a loopback Host, so neither another machine nor
// a web page that rebinds its own name to 127.0.0.1 can read tickets.
func loopbackOnly(req *http.Request) string {
	peer, _, err := net.SplitHostPort(req.RemoteAddr)
	if ip, perr := netip.ParseAddr(peer); err != nil || perr != nil || !ip.Unmap().IsLoopback() {
		return "only from loopback"
	}
	host := req.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if ip, err := netip.ParseAddr(host); (err != nil || !ip.Unmap().IsLoopback()) && !strings.EqualFold(host, "localhost") {
		return "Host must be a loopback address or localhost"
	}
	return ""
}

// ReplayQuarantined implements Quarantiner by asking the daemon.
func (c Client) ReplayQuarantined(ctx context.Context, id uint64) (QuarantineOutcome, error) {
	return c.quarantineAction(ctx, id, "replay")
}

// ReleaseQuarantined implements Quarantiner by asking the daemon.
func (c Client) ReleaseQuarantined(ctx context.Context, id uint64) (QuarantineOutcome, error) {
	return c.quarantineAction(ctx, id, "release")
}

func (c Client) quarantineAction(ctx context.Context, id uint64, action string) (QuarantineOutcome, error) {
	var out QuarantineOutcome
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s/api/quarantine/%d/%s", c.Base, id, action), bytes.NewReader([]byte("{}")))
	if err != nil {
		return out, fmt.Errorf("ask the running daemon: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Minute}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return out, fmt.Errorf("ask the running daemon: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return out, store.ErrNotFound
	case http.StatusConflict:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		reason := strings.TrimSuffix(strings.TrimSpace(string(body)), ": "+ErrStillQuarantined.Error())
		return out, fmt.Errorf("%s: %w", reason, ErrStillQuarantined)
	default:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return out, fmt.Errorf("daemon answered %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("read daemon answer: %w", err)
	}
	return out, nil
}
