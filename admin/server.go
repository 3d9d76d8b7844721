package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/helpdesk/helpdesk/store"
)

// Health reports whether the daemon is healthy; nil means yes.
type Health func() error

// Server is the local HTTP API. It is meant for loopback: it has no
// authentication, like a unix socket with 0600 has none.
type Server struct {
	DB       *store.DB
	Registry *prometheus.Registry
	Health   Health
	Log      *slog.Logger
	// Quarantine, when set, serves POST /api/quarantine/{id}/replay and
	// /release (loopback only, see quarantineAction).
	Quarantine Quarantiner

	srv *http.Server
	ln  net.Listener
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	r := DBReader{DB: s.DB}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if s.Health != nil {
			if err := s.Health(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		io.WriteString(w, "ok\n")
	})
	if s.Registry != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /api/tickets", func(w http.ResponseWriter, req *http.Request) {
		limit, _ := strconv.Atoi(req.URL.Query().Get("limit"))
		out, err := r.ListTickets(ListRequest{Status: req.URL.Query().Get("status"), Limit: limit})
		s.reply(w, out, err)
	})
	mux.HandleFunc("GET /api/tickets/{id}", func(w http.ResponseWriter, req *http.Request) {
		id, err := strconv.ParseUint(req.PathValue("id"), 10, 64)
		if err != nil {
			http.Error(w, "bad ticket id", http.StatusBadRequest)
			return
		}
		out, err := r.ShowTicket(id)
		s.reply(w, out, err)
	})
	mux.HandleFunc("GET /api/quarantine", func(w http.ResponseWriter, _ *http.Request) {
		out, err := r.ListQuarantine()
		s.reply(w, out, err)
	})
	if s.Quarantine != nil {
		mux.HandleFunc("POST /api/quarantine/{id}/{action}", s.quarantineAction)
	}
	mux.HandleFunc("GET /api/backup", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		if _, err := s.DB.Backup(w); err != nil {
			// Headers are gone; cutting the body short tells the client.
			s.Log.Error("backup over http failed", "err", err)
			panic(http.ErrAbortHandler)
		}
	})
	mux.HandleFunc("GET /api/check", func(w http.ResponseWriter, _ *http.Request) {
		err := s.DB.Check()
		msg := "ok"
		if err != nil {
			msg = err.Error()
		}
		s.reply(w, map[string]any{"ok": err == nil, "result": msg}, nil)
	})
	// /healthz and /metrics may be scraped from elsewhere when http.listen
	// is not loopback; ticket data and backups never leave this machine.
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, "/api/") {
			if why := loopbackOnly(req); why != "" {
				http.Error(w, why, http.StatusForbidden)
				return
			}
		}
		mux.ServeHTTP(w, req)
	})
}

func (s *Server) reply(w http.ResponseWriter, v any, err error) {
	if errors.Is(err, store.ErrNotFound) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if err != nil {
		s.Log.Error("admin api", "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// Listen binds addr; Serve then answers until Shutdown.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	return nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve answers requests until Shutdown.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http serve: %w", err)
	}
	return nil
}

// Shutdown stops accepting and waits for running requests (a backup, say).
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Client talks to a running daemon's API.
type Client struct {
	Base string // "http://127.0.0.1:8025"
	HTTP *http.Client
}

func (c Client) get(path string) (*http.Response, error) {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Minute}
	}
	resp, err := hc.Get(c.Base + path)
	if err != nil {
		return nil, fmt.Errorf("ask the running daemon: %w", err)
	}
	if resp.StatusCode == http.StatusNotFound {
		resp.Body.Close()
		return nil, store.ErrNotFound
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("daemon answered %s: %s", resp.Status, body)
	}
	return resp, nil
}

func (c Client) getJSON(path string, v any) error {
	resp, err := c.get(path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("read daemon answer: %w", err)
	}
	return nil
}

// ListTickets implements Reader.
func (c Client) ListTickets(req ListRequest) ([]Ticket, error) {
	var out []Ticket
	q := fmt.Sprintf("/api/tickets?limit=%d&status=%s", req.Limit, req.Status)
	return out, c.getJSON(q, &out)
}

// ShowTicket implements Reader.
func (c Client) ShowTicket(id uint64) (Ticket, error) {
	var out Ticket
	return out, c.getJSON(fmt.Sprintf("/api/tickets/%d", id), &out)
}

// ListQuarantine implements Reader.
func (c Client) ListQuarantine() ([]Quarantined, error) {
	var out []Quarantined
	return out, c.getJSON("/api/quarantine", &out)
}

// Backup streams a consistent copy of the daemon's database to w.
func (c Client) Backup(w io.Writer) (int64, error) {
	resp, err := c.get("/api/backup")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("backup from daemon: %w", err)
	}
	return n, nil
}
