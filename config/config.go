// Package config owns helpdesk's typed configuration: the YAML format, its
// defaults, strict loading with viper, environment overrides, secrets read
// from files, and validation.
//
// Invariants of a *Config returned by Load or LoadWithEnv:
//   - Every default is applied; nothing downstream needs to know a default.
//   - Every value is valid: enums are lower-case and one of their constants,
//     ports are in 1-65535, durations are positive, addresses parse, mailbox
//     names and agent emails are unique. Consumers do not re-validate.
//   - Every secret is in its plain field (SMTP.Password, IMAP.Password,
//     OAuth2.ClientSecret, OAuth2.RefreshToken) whichever way it was given;
//     the matching *File field keeps the (absolute or config-relative,
//     resolved) path it was read from, for logging.
//   - Relative paths of *_file secrets and autoreply.template are resolved
//     against the directory of the config file, so a config and its secrets
//     can move together; database is left as written (relative to the
//     working directory, like the documented default ./helpdesk.db).
//
// Environment: HELPDESK_ + the upper-cased key path joined by "_" overrides
// a single-value key (HELPDESK_SMTP_PASSWORD); entries of the lists the file
// defines are reached by index (HELPDESK_MAILBOXES_0_IMAP_PASSWORD); string
// lists take comma-separated values. Lists cannot grow from the
// environment, and empty variables are ignored (viper's default).
//
// Every failure is a *Error naming the offending key, so the CLI can print
// one line and exit 2. The package never logs and keeps no global state;
// Load reads the process environment only through os.Environ.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// Config is the whole helpdesk configuration. See config.example.yaml at the
// top of the repository for every key with its default and allowed values.
type Config struct {
	// Database is the bbolt file (created 0600). Default ./helpdesk.db.
	Database string `mapstructure:"database"`
	// HTTP is the local listener for /healthz, /metrics and the admin API.
	HTTP HTTP `mapstructure:"http"`
	// Log configures the process logger.
	Log Log `mapstructure:"log"`
	// Ticket configures ticket numbering in subjects and Message-IDs.
	Ticket Ticket `mapstructure:"ticket"`
	// SMTP is the submission server all outbound mail goes through.
	SMTP SMTP `mapstructure:"smtp"`
	// Mailboxes are the shared inboxes polled over IMAP; at least one.
	Mailboxes []Mailbox `mapstructure:"mailboxes"`
	// Agents are the people answering tickets.
	Agents []Agent `mapstructure:"agents"`
	// Teams optionally declares the teams agents belong to.
	Teams []Team `mapstructure:"teams"`
	// Autoreply configures the acknowledgement sent for new tickets.
	Autoreply Autoreply `mapstructure:"autoreply"`
	// Outbox configures retries of outbound mail.
	Outbox Outbox `mapstructure:"outbox"`
	// Limits bounds resource use per message.
	Limits Limits `mapstructure:"limits"`
	// Security configures which upstream authentication results are trusted.
	Security Security `mapstructure:"security"`
	// Alerts configures how the administrator hears of trouble.
	Alerts Alerts `mapstructure:"alerts"`
}

// HTTP is the local HTTP listener.
type HTTP struct {
	// Listen is host:port; "" disables the listener. Default 127.0.0.1:8025.
	Listen string `mapstructure:"listen"`
}

// Log configures log/slog.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `mapstructure:"level"`
	// Format is text or json. Default text.
	Format string `mapstructure:"format"`
}

// SlogLevel returns Level as a slog.Level. Level is valid after Load, so
// the fallback to info only matters for a hand-built Log.
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// Ticket configures how tickets are named on the wire.
type Ticket struct {
	// SubjectPrefix is the tag word: "[Ticket#1042]". Letters, digits, '-'
	// and '_' only, so the tag stays recognisable. Default Ticket.
	SubjectPrefix string `mapstructure:"subject_prefix"`
	// Domain is the right-hand side of generated Message-IDs. Required.
	Domain string `mapstructure:"domain"`
}

// TLSMode says how a client connection is secured.
type TLSMode string

// The TLS modes accepted for smtp.tls and mailboxes[].imap.tls.
const (
	TLSNone     TLSMode = "none"     // plain text
	TLSStartTLS TLSMode = "starttls" // plain text upgraded with STARTTLS
	TLSImplicit TLSMode = "tls"      // TLS from the first byte
)

// SMTP is the outbound submission server.
type SMTP struct {
	// Host is a host name or IP address. Default localhost.
	Host string `mapstructure:"host"`
	// Port defaults to 465 when TLS is tls, else 587.
	Port int `mapstructure:"port"`
	// TLS defaults to starttls.
	TLS TLSMode `mapstructure:"tls"`
	// Username and Password are both set (SMTP AUTH) or both empty.
	Username string `mapstructure:"username"`
	// Password holds the secret after Load, also when given by PasswordFile.
	Password     string `mapstructure:"password" secret:"true"`
	PasswordFile string `mapstructure:"password_file"`
	// InsecureSkipVerify disables certificate verification (tests only).
	InsecureSkipVerify bool `mapstructure:"insecure_skip_verify"`
	// HELO is the name sent in EHLO. Default: Ticket.Domain.
	HELO string `mapstructure:"helo"`
	// Timeout bounds connecting and each SMTP command. Default 30s.
	Timeout time.Duration `mapstructure:"timeout"`
}

// Addr is Host:Port for net.Dial.
func (s SMTP) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Mailbox is one shared inbox.
type Mailbox struct {
	// Name identifies the mailbox in tickets, logs and metrics; unique.
	Name string `mapstructure:"name"`
	// Address is the mailbox's own email address (auto-replies come from it).
	Address string `mapstructure:"address"`
	// CommentAddress optionally receives agents' internal notes.
	CommentAddress string `mapstructure:"comment_address"`
	// IMAP is how the mailbox is read.
	IMAP IMAP `mapstructure:"imap"`
	// PollInterval is how often to poll when IDLE is off or unsupported.
	// Default 30s, at least 1s.
	PollInterval time.Duration `mapstructure:"poll_interval"`
	// IDLE uses IMAP IDLE when the server supports it. Default true.
	IDLE bool `mapstructure:"idle"`
}

// IMAP is the IMAP account of a mailbox.
type IMAP struct {
	// Host is a host name or IP address. Required.
	Host string `mapstructure:"host"`
	// Port defaults to 993 when TLS is tls, else 143.
	Port int `mapstructure:"port"`
	// TLS defaults to tls.
	TLS TLSMode `mapstructure:"tls"`
	// Username defaults to the mailbox Address.
	Username string `mapstructure:"username"`
	// Password holds the secret after Load, also when given by PasswordFile.
	// Exactly one of Password/PasswordFile or OAuth2 is set.
	Password     string `mapstructure:"password" secret:"true"`
	PasswordFile string `mapstructure:"password_file"`
	// Folder is the folder read. Default INBOX.
	Folder string `mapstructure:"folder"`
	// MoveTo, when set, is where processed mail is moved; "" flags it \Seen.
	MoveTo string `mapstructure:"move_to"`
	// InsecureSkipVerify disables certificate verification (tests only).
	InsecureSkipVerify bool `mapstructure:"insecure_skip_verify"`
	// OAuth2, when set, authenticates with XOAUTH2/OAUTHBEARER instead of a
	// password. Parsed and validated here; used by the inbox package.
	OAuth2 *OAuth2 `mapstructure:"oauth2"`
}

// Addr is Host:Port for net.Dial.
func (i IMAP) Addr() string { return net.JoinHostPort(i.Host, strconv.Itoa(i.Port)) }

// OAuth2 is a refresh-token grant against an OAuth 2.0 token endpoint.
type OAuth2 struct {
	// TokenURL is the token endpoint (https, or http on loopback). Required.
	TokenURL string `mapstructure:"token_url"`
	// ClientID is required.
	ClientID string `mapstructure:"client_id"`
	// ClientSecret is optional (public clients have none).
	ClientSecret     string `mapstructure:"client_secret" secret:"true"`
	ClientSecretFile string `mapstructure:"client_secret_file"`
	// RefreshToken is required, inline or from RefreshTokenFile.
	RefreshToken     string `mapstructure:"refresh_token" secret:"true"`
	RefreshTokenFile string `mapstructure:"refresh_token_file"`
	// Scopes requested with the token; optional.
	Scopes []string `mapstructure:"scopes"`
}

// Agent is a person who answers tickets.
type Agent struct {
	// Email is unique among agents and is not a mailbox address.
	Email string `mapstructure:"email"`
	Name  string `mapstructure:"name"`
	// Teams the agent belongs to. When Config.Teams is non-empty every name
	// must be declared there; otherwise team names are implicit.
	Teams []string `mapstructure:"teams"`
}

// Team is a group of agents tickets can be routed to.
type Team struct {
	Name string `mapstructure:"name"`
	// Email is an optional distribution address for team notifications.
	Email string `mapstructure:"email"`
}

// Autoreply configures acknowledgements of new tickets.
type Autoreply struct {
	// Enabled defaults to true.
	Enabled bool `mapstructure:"enabled"`
	// MaxPerSender auto-replies to one address within Per. Default 5.
	MaxPerSender int `mapstructure:"max_per_sender"`
	// Per is the rate-limit window. Default 1h.
	Per time.Duration `mapstructure:"per"`
	// Template is an optional file replacing the built-in text; checked
	// readable at load time, parsed by the autoreply package.
	Template string `mapstructure:"template"`
	// GlobalMaxPerHour caps all auto-replies together. Default 200.
	GlobalMaxPerHour int `mapstructure:"global_max_per_hour"`
	// PauseAfter auto-replies to one address refused by its rate limit
	// within Per trip the circuit breaker: automatic mail to the address
	// stops for PauseFor and the administrator is alerted. Defaults 3, 24h.
	PauseAfter int           `mapstructure:"pause_after"`
	PauseFor   time.Duration `mapstructure:"pause_for"`
	// UndeliverableFor is how long an address that bounced permanently
	// gets no automatic mail. Default 24h.
	UndeliverableFor time.Duration `mapstructure:"undeliverable_for"`
}

// Outbox configures delivery retries.
type Outbox struct {
	// MaxAttempts before a mail is dead-lettered. Default 20.
	MaxAttempts int `mapstructure:"max_attempts"`
	// MinBackoff and MaxBackoff bound the delay between attempts.
	// Defaults 30s and 1h.
	MinBackoff time.Duration `mapstructure:"min_backoff"`
	MaxBackoff time.Duration `mapstructure:"max_backoff"`
}

// Limits bounds resource use.
type Limits struct {
	// MaxMessageBytes is the largest mail processed. Default 25 MiB.
	MaxMessageBytes ByteSize `mapstructure:"max_message_bytes"`
}

// Alerts configures alerts to the administrator. Alerts are always logged
// at ERROR; this adds mail.
type Alerts struct {
	// AdminEmail, when set, also gets each alert by mail. Default "".
	AdminEmail string `mapstructure:"admin_email"`
}

// Security configures trust in upstream checks.
type Security struct {
	// TrustedAuthservID is the authserv-id of Authentication-Results
	// headers to trust (added by our own MTA); "" trusts none.
	TrustedAuthservID string `mapstructure:"trusted_authserv_id"`
}

// Defaults that are not derived from other values. Values derived from
// others (ports from TLS, SMTP HELO from the ticket domain, IMAP username
// from the mailbox address) are filled in by finish.
const (
	defaultDatabase         = "./helpdesk.db"
	defaultListen           = "127.0.0.1:8025"
	defaultSubjectPrefix    = "Ticket"
	defaultSMTPHost         = "localhost"
	defaultSMTPTimeout      = 30 * time.Second
	defaultFolder           = "INBOX"
	defaultPollInterval     = 30 * time.Second
	defaultMaxPerSender     = 5
	defaultAutoreplyPer     = time.Hour
	defaultGlobalMaxPerHour = 200
	defaultMaxAttempts      = 20
	defaultMinBackoff       = 30 * time.Second
	defaultMaxBackoff       = time.Hour
	defaultMaxMessageBytes  = 25 * MiB
	defaultPauseAfter       = 3
	defaultPauseFor         = 24 * time.Hour
	defaultUndeliverableFor = 24 * time.Hour
)

// defaults returns a Config holding every static default. Decoding into it
// overwrites only the keys present in the file, which is how an explicit
// false or "" survives while an absent key keeps its default.
func defaults() *Config {
	return &Config{
		Database: defaultDatabase,
		HTTP:     HTTP{Listen: defaultListen},
		Log:      Log{Level: "info", Format: "text"},
		Ticket:   Ticket{SubjectPrefix: defaultSubjectPrefix},
		SMTP: SMTP{
			Host:    defaultSMTPHost,
			TLS:     TLSStartTLS,
			Timeout: defaultSMTPTimeout,
		},
		Autoreply: Autoreply{
			Enabled:          true,
			MaxPerSender:     defaultMaxPerSender,
			Per:              defaultAutoreplyPer,
			GlobalMaxPerHour: defaultGlobalMaxPerHour,
			PauseAfter:       defaultPauseAfter,
			PauseFor:         defaultPauseFor,
			UndeliverableFor: defaultUndeliverableFor,
		},
		Outbox: Outbox{
			MaxAttempts: defaultMaxAttempts,
			MinBackoff:  defaultMinBackoff,
			MaxBackoff:  defaultMaxBackoff,
		},
		Limits: Limits{MaxMessageBytes: defaultMaxMessageBytes},
	}
}

// defaultMailbox is the starting point each mailboxes[] entry is decoded into.
func defaultMailbox() Mailbox {
	return Mailbox{
		IMAP:         IMAP{TLS: TLSImplicit, Folder: defaultFolder},
		PollInterval: defaultPollInterval,
		IDLE:         true,
	}
}

// Load reads the YAML file at path, applies HELPDESK_* environment
// overrides from the process environment, reads *_file secrets, fills in
// defaults and validates. Every error is a *Error.
func Load(path string) (*Config, error) {
	return LoadWithEnv(path, os.Environ())
}

// LoadWithEnv is Load with an explicit environment ("KEY=value" entries, as
// os.Environ returns), so tests need not touch the process environment.
func LoadWithEnv(path string, environ []string) (*Config, error) {
	cfg, fromEnv, err := load(path, environ)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			if name, ok := fromEnv[ce.Key]; ok {
				// The operator will look in the file first; say where the
				// offending value really came from.
				ce.Problem += " (set by " + name + ")"
			}
		}
		return nil, err
	}
	return cfg, nil
}

// load does the work of LoadWithEnv and also returns which keys the
// environment set (key → variable name), to annotate errors.
func load(path string, environ []string) (*Config, map[string]string, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, nil, err
	}

	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, nil, &Error{Key: path, Problem: yamlProblem(err), Err: err}
	}

	fromEnv, err := applyEnv(v, environ)
	if err != nil {
		return nil, fromEnv, err
	}

	if err := checkKeys(v); err != nil {
		return nil, fromEnv, err
	}

	cfg := defaults()
	// Pre-size the lists with defaulted entries: mapstructure decodes into
	// existing slice elements, so each entry keeps the defaults of the keys
	// it does not set (idle: true, folder: INBOX, ...).
	if list, ok := v.Get("mailboxes").([]any); ok {
		cfg.Mailboxes = make([]Mailbox, len(list))
		for i := range cfg.Mailboxes {
			cfg.Mailboxes[i] = defaultMailbox()
		}
	}
	err = v.UnmarshalExact(cfg,
		viper.DecodeHook(mapstructure.DecodeHookFuncValue(decodeHook)),
		func(dc *mapstructure.DecoderConfig) {
			// Strict typing: a number where a string belongs (password: 0123)
			// must not be silently rewritten.
			dc.WeaklyTypedInput = false
		})
	if err != nil {
		return nil, fromEnv, decodeError(err)
	}

	if err := finish(cfg, filepath.Dir(path)); err != nil {
		return nil, fromEnv, err
	}
	return cfg, fromEnv, nil
}

// maxFileSize bounds what Load reads: a config is a few KiB, and a mistaken
// --config /dev/zero or a log file must fail rather than fill the memory.
const maxFileSize = 1 << 20

// readFile reads the config file, at most maxFileSize bytes.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{Key: path, Problem: pathProblem(err), Err: err}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, &Error{Key: path, Problem: pathProblem(err), Err: err}
	}
	if len(data) > maxFileSize {
		return nil, errorf(path, "larger than %s; is this the config file?", ByteSize(maxFileSize))
	}
	return data, nil
}

// Resolve picks the config file: the --config flag, else $HELPDESK_CONFIG,
// else ./config.yaml if it exists, else /etc/helpdesk/config.yaml.
func Resolve(flag string, environ []string) string {
	if flag != "" {
		return flag
	}
	if p := lookupEnv(environ, "HELPDESK_CONFIG"); p != "" {
		return p
	}
	if _, err := os.Stat("config.yaml"); err == nil {
		return "config.yaml"
	}
	return "/etc/helpdesk/config.yaml"
}

// lookupEnv returns the value of the last entry for name, like the shell.
func lookupEnv(environ []string, name string) string {
	val := ""
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			val = v
		}
	}
	return val
}

// yamlProblem turns a viper/YAML parse error into one line without the
// library's prefixes; yaml.v3 reports several type errors on separate lines.
func yamlProblem(err error) string {
	var pe viper.ConfigParseError
	if errors.As(err, &pe) && pe.Unwrap() != nil {
		err = pe.Unwrap()
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	lines := strings.Split(msg, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	msg = strings.Join(lines, "; ")
	if strings.Contains(msg, "cannot unmarshal") && strings.Contains(msg, "into map[string]interface {}") {
		// The only such error is a document that is not a mapping at all.
		line, _, _ := strings.Cut(msg, ":")
		return "invalid YAML: " + line + ": the top level must be a mapping of keys to values"
	}
	return "invalid YAML: " + msg
}

// errorf builds a *Error.
func errorf(key, format string, args ...any) *Error {
	return &Error{Key: key, Problem: fmt.Sprintf(format, args...)}
}
