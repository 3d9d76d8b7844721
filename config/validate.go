package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// finish fills in the defaults that depend on other values, reads *_file
// secrets (relative to dir) and validates c, in the order keys appear in
// Config, returning the first problem.
func finish(c *Config, dir string) error {
	steps := []func(*Config, string) error{
		checkTop, checkTicket, checkSMTP, checkMailboxes,
		checkTeamsAndAgents, checkAutoreply, checkOutboxLimitsSecurity, checkAlerts,
	}
	for _, step := range steps {
		if err := step(c, dir); err != nil {
			return err
		}
	}
	return nil
}

func checkTop(c *Config, _ string) error {
	if strings.TrimSpace(c.Database) == "" {
		return errorf("database", "must not be empty")
	}
	if c.HTTP.Listen != "" {
		host, port, err := net.SplitHostPort(c.HTTP.Listen)
		if err != nil || (host != "" && !isHost(host)) || !isPort(port) {
			return errorf("http.listen", `must be host:port like 127.0.0.1:8025, or "" to disable (got %q)`, c.HTTP.Listen)
		}
	}
	var err error
	if c.Log.Level, err = oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error"); err != nil {
		return err
	}
	if c.Log.Format, err = oneOf("log.format", c.Log.Format, "text", "json"); err != nil {
		return err
	}
	return nil
}

func checkTicket(c *Config, _ string) error {
	p := c.Ticket.SubjectPrefix
	if p == "" {
		return errorf("ticket.subject_prefix", "must not be empty")
	}
	if len(p) > 32 || !isToken(p, "-_") {
		return errorf("ticket.subject_prefix", `must be 1 to 32 letters, digits, "-" or "_" (got %q)`, p)
	}
	if c.Ticket.Domain == "" {
		return errorf("ticket.domain", "is required: the domain of generated Message-IDs, like helpdesk.example.com")
	}
	if !isHostname(c.Ticket.Domain) {
		return errorf("ticket.domain", "must be a host name like helpdesk.example.com (got %q)", c.Ticket.Domain)
	}
	return nil
}

func checkSMTP(c *Config, dir string) error {
	s := &c.SMTP
	if err := checkHost("smtp.host", s.Host); err != nil {
		return err
	}
	tls, err := oneOf("smtp.tls", string(s.TLS), string(TLSNone), string(TLSStartTLS), string(TLSImplicit))
	if err != nil {
		return err
	}
	s.TLS = TLSMode(tls)
	if s.Port == 0 {
		s.Port = 587
		if s.TLS == TLSImplicit {
			s.Port = 465
		}
	}
	if err := checkPort("smtp.port", s.Port); err != nil {
		return err
	}
	if err := readSecret("smtp.", "password", &s.Password, &s.PasswordFile, dir); err != nil {
		return err
	}
	switch {
	case s.Username != "" && s.Password == "":
		return errorf("smtp.password", "is required when smtp.username is set (or smtp.password_file)")
	case s.Username == "" && s.Password != "":
		return errorf("smtp.username", "is required when a password is set")
	case s.Username != "" && s.TLS == TLSNone && !isLoopback(s.Host):
		// The SMTP client refuses to send a password in the clear to
		// another host, so every send would fail: say so now.
		return errorf("smtp.tls", "must be starttls or tls when smtp.username is set and %s is not loopback (the password would travel in the clear)", s.Host)
	}
	if s.HELO == "" {
		s.HELO = c.Ticket.Domain
	}
	if !isHostname(s.HELO) && !isAddressLiteral(s.HELO) {
		return errorf("smtp.helo", "must be a host name like mail.example.com (got %q)", s.HELO)
	}
	return positive("smtp.timeout", s.Timeout)
}

func checkMailboxes(c *Config, dir string) error {
	if len(c.Mailboxes) == 0 {
		return errorf("mailboxes", "at least one mailbox is required")
	}
	names := map[string]string{}
	for i := range c.Mailboxes {
		m := &c.Mailboxes[i]
		key := fmt.Sprintf("mailboxes[%d]", i)
		if err := checkName(key+".name", m.Name, "mailbox", names); err != nil {
			return err
		}
		if err := checkEmail(key+".address", m.Address, true); err != nil {
			return err
		}
		if err := checkEmail(key+".comment_address", m.CommentAddress, false); err != nil {
			return err
		}
		if m.CommentAddress != "" && strings.EqualFold(m.CommentAddress, m.Address) {
			return errorf(key+".comment_address", "must differ from %s.address (got %q)", key, m.CommentAddress)
		}
		if err := checkIMAP(key+".imap", &m.IMAP, m.Address, dir); err != nil {
			return err
		}
		if m.PollInterval < time.Second {
			return errorf(key+".poll_interval", "must be at least 1s (got %s)", m.PollInterval)
		}
	}
	return nil
}

func checkIMAP(key string, im *IMAP, address, dir string) error {
	if err := checkHost(key+".host", im.Host); err != nil {
		return err
	}
	tls, err := oneOf(key+".tls", string(im.TLS), string(TLSNone), string(TLSStartTLS), string(TLSImplicit))
	if err != nil {
		return err
	}
	im.TLS = TLSMode(tls)
	if im.Port == 0 {
		im.Port = 143
		if im.TLS == TLSImplicit {
			im.Port = 993
		}
	}
	if err := checkPort(key+".port", im.Port); err != nil {
		return err
	}
	if im.Username == "" {
		im.Username = address
	}
	if err := readSecret(key+".", "password", &im.Password, &im.PasswordFile, dir); err != nil {
		return err
	}
	switch {
	case im.OAuth2 != nil && im.Password != "":
		return errorf(key+".oauth2", "cannot be used together with %s.password or %s.password_file", key, key)
	case im.OAuth2 == nil && im.Password == "":
		return errorf(key+".password", "is required (or password_file, or an oauth2 block)")
	case im.OAuth2 != nil:
		if err := checkOAuth2(key+".oauth2", im.OAuth2, dir); err != nil {
			return err
		}
	}
	if im.Folder == "" {
		return errorf(key+".folder", "must not be empty")
	}
	if im.MoveTo != "" && im.MoveTo == im.Folder {
		return errorf(key+".move_to", "must differ from %s.folder (got %q)", key, im.MoveTo)
	}
	return nil
}

func checkOAuth2(key string, o *OAuth2, dir string) error {
	if o.TokenURL == "" {
		return errorf(key+".token_url", "is required")
	}
	u, err := url.Parse(o.TokenURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
		return errorf(key+".token_url", "must be an https:// URL (got %q)", o.TokenURL)
	}
	if o.ClientID == "" {
		return errorf(key+".client_id", "is required")
	}
	if err := readSecret(key+".", "client_secret", &o.ClientSecret, &o.ClientSecretFile, dir); err != nil {
		return err
	}
	if err := readSecret(key+".", "refresh_token", &o.RefreshToken, &o.RefreshTokenFile, dir); err != nil {
		return err
	}
	if o.RefreshToken == "" {
		return errorf(key+".refresh_token", "is required (or refresh_token_file)")
	}
	for i, s := range o.Scopes {
		if s == "" || strings.ContainsAny(s, " \t") {
			return errorf(fmt.Sprintf("%s.scopes[%d]", key, i), "must be one non-empty scope without spaces (got %q)", s)
		}
	}
	return nil
}

// checkTeamsAndAgents validates teams first, since agents refer to them.
func checkTeamsAndAgents(c *Config, _ string) error {
	teams := map[string]string{}
	for i, t := range c.Teams {
		key := fmt.Sprintf("teams[%d]", i)
		if err := checkName(key+".name", t.Name, "team", teams); err != nil {
			return err
		}
		if err := checkEmail(key+".email", t.Email, false); err != nil {
			return err
		}
	}

	// Our own addresses: mail to an agent at one of them would come back
	// in as a new ticket.
	own := map[string]string{}
	for i, m := range c.Mailboxes {
		own[strings.ToLower(m.Address)] = fmt.Sprintf("mailboxes[%d].address", i)
		if m.CommentAddress != "" {
			own[strings.ToLower(m.CommentAddress)] = fmt.Sprintf("mailboxes[%d].comment_address", i)
		}
	}
	emails := map[string]int{}
	for i, a := range c.Agents {
		key := fmt.Sprintf("agents[%d]", i)
		if err := checkEmail(key+".email", a.Email, true); err != nil {
			return err
		}
		lower := strings.ToLower(a.Email)
		if j, dup := emails[lower]; dup {
			return errorf(key+".email", "duplicate agent email %q (also agents[%d].email)", a.Email, j)
		}
		emails[lower] = i
		if where, ok := own[lower]; ok {
			return errorf(key+".email", "%q is a mailbox's own address (%s); agents need their own", a.Email, where)
		}
		for j, t := range a.Teams {
			tkey := fmt.Sprintf("%s.teams[%d]", key, j)
			if err := checkName(tkey, t, "", nil); err != nil {
				return err
			}
			if len(c.Teams) > 0 {
				if _, ok := teams[strings.ToLower(t)]; !ok {
					return errorf(tkey, "unknown team %q (not listed under teams)", t)
				}
			}
		}
	}
	return nil
}

func checkAutoreply(c *Config, dir string) error {
	a := &c.Autoreply
	if a.MaxPerSender < 1 {
		return errorf("autoreply.max_per_sender", "must be at least 1 (got %d); to send no auto-replies set autoreply.enabled: false", a.MaxPerSender)
	}
	if err := positive("autoreply.per", a.Per); err != nil {
		return err
	}
	if a.GlobalMaxPerHour < 1 {
		return errorf("autoreply.global_max_per_hour", "must be at least 1 (got %d); to send no auto-replies set autoreply.enabled: false", a.GlobalMaxPerHour)
	}
	if a.PauseAfter < 1 {
		return errorf("autoreply.pause_after", "must be at least 1 (got %d)", a.PauseAfter)
	}
	if err := positive("autoreply.pause_for", a.PauseFor); err != nil {
		return err
	}
	if err := positive("autoreply.undeliverable_for", a.UndeliverableFor); err != nil {
		return err
	}
	if a.Template != "" {
		p := resolvePath(dir, a.Template)
		// Check now rather than at the first new ticket, hours later.
		data, err := os.ReadFile(p)
		if err != nil {
			return &Error{Key: "autoreply.template", Problem: "cannot read " + p + ": " + pathProblem(err), Err: err}
		}
		if strings.TrimSpace(string(data)) == "" {
			return errorf("autoreply.template", "file %s is empty", p)
		}
		a.Template = p
	}
	return nil
}

func checkOutboxLimitsSecurity(c *Config, _ string) error {
	o := c.Outbox
	if o.MaxAttempts < 1 {
		return errorf("outbox.max_attempts", "must be at least 1 (got %d)", o.MaxAttempts)
	}
	if err := positive("outbox.min_backoff", o.MinBackoff); err != nil {
		return err
	}
	if o.MaxBackoff < o.MinBackoff {
		return errorf("outbox.max_backoff", "must not be less than outbox.min_backoff, %s (got %s)", o.MinBackoff, o.MaxBackoff)
	}
	if c.Limits.MaxMessageBytes < KiB {
		return errorf("limits.max_message_bytes", "must be at least 1KiB (got %d)", int64(c.Limits.MaxMessageBytes))
	}
	if id := c.Security.TrustedAuthservID; id != "" && strings.ContainsAny(id, " \t;\"\\()") {
		return errorf("security.trusted_authserv_id", "must be a single token like mx.example.com (got %q)", id)
	}
	return nil
}

func checkAlerts(c *Config, _ string) error {
	addr := c.Alerts.AdminEmail
	if addr == "" {
		return nil
	}
	if err := checkEmail("alerts.admin_email", addr, false); err != nil {
		return err
	}
	for i, m := range c.Mailboxes {
		if strings.EqualFold(addr, m.Address) || strings.EqualFold(addr, m.CommentAddress) {
			// An alert would come back in as mail to the help desk.
			return errorf("alerts.admin_email", "must not be an address of mailboxes[%d] (got %q)", i, addr)
		}
	}
	return nil
}

// checkName checks the syntax of a name (a mailbox, team) that ends up in
// store keys, metric labels and CLI arguments, and, when seen is not nil,
// that it is unique ignoring case; seen maps lower-cased names to the key
// that used them first.
func checkName(key, name, kind string, seen map[string]string) error {
	if name == "" {
		return errorf(key, "is required")
	}
	if len(name) > 64 || !isToken(name, "-_.") {
		return errorf(key, `must be 1 to 64 letters, digits, ".", "-" or "_" (got %q)`, name)
	}
	if seen == nil {
		return nil
	}
	lower := strings.ToLower(name)
	if first, dup := seen[lower]; dup {
		return errorf(key, "duplicate %s name %q (also %s)", kind, name, first)
	}
	seen[lower] = key
	return nil
}

// readSecret enforces "value or file, not both" for prefix+name and, for a
// file, reads it into *value and stores the resolved path in *file.
func readSecret(prefix, name string, value, file *string, dir string) error {
	fileKey := prefix + name + "_file"
	if *value != "" && *file != "" {
		return errorf(prefix+name, "cannot be set together with %s; use one", fileKey)
	}
	if *file == "" {
		return nil
	}
	p := resolvePath(dir, *file)
	data, err := os.ReadFile(p)
	if err != nil {
		return &Error{Key: fileKey, Problem: "cannot read " + p + ": " + pathProblem(err), Err: err}
	}
	// Editors and `echo secret > file` add a final newline; it is never
	// part of the secret.
	s := strings.TrimRight(string(data), "\r\n")
	if s == "" {
		return errorf(fileKey, "file %s is empty", p)
	}
	*value, *file = s, p
	return nil
}

// resolvePath makes p relative to the config file's directory.
func resolvePath(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// pathProblem is the reason of a file error without the repeated path.
func pathProblem(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// oneOf lower-cases got and checks it against allowed.
func oneOf(key, got string, allowed ...string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(got))
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", errorf(key, "must be one of %s (got %q)", strings.Join(allowed, ", "), got)
}

func checkPort(key string, p int) error {
	if p < 1 || p > 65535 {
		return errorf(key, "must be a port number from 1 to 65535 (got %d)", p)
	}
	return nil
}

func checkHost(key, h string) error {
	if h == "" {
		return errorf(key, "is required")
	}
	if !isHost(h) {
		return errorf(key, "must be a host name or IP address (got %q)", h)
	}
	return nil
}

func checkEmail(key, s string, required bool) error {
	if s == "" {
		if required {
			return errorf(key, "is required")
		}
		return nil
	}
	if !isEmail(s) {
		return errorf(key, "must be an email address like support@example.com (got %q)", s)
	}
	return nil
}

func positive(key string, d time.Duration) error {
	if d <= 0 {
		return errorf(key, "must be positive (got %s)", d)
	}
	return nil
}

// isEmail accepts a bare addr-spec with a host-name domain: no display
// name, no angle brackets, no quoted local part.
func isEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && isHostname(s[at+1:])
}

// isHostname checks RFC 1123 host name syntax.
func isHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		if !isToken(label, "-") {
			return false
		}
	}
	return true
}

func isHost(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	return isHostname(s)
}

// isAddressLiteral accepts an EHLO address literal like [192.0.2.1].
func isAddressLiteral(s string) bool {
	inner, ok := strings.CutPrefix(s, "[")
	if !ok {
		return false
	}
	inner, ok = strings.CutSuffix(inner, "]")
	if !ok {
		return false
	}
	inner = strings.TrimPrefix(inner, "IPv6:")
	_, err := netip.ParseAddr(inner)
	return err == nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

// isToken reports whether s is non-empty and made of ASCII letters, digits
// and the given extra characters.
func isToken(s, extra string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune(extra, r):
		default:
			return false
		}
	}
	return true
}
