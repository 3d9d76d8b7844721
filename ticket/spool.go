package ticket

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/helpdesk/helpdesk/store"
	"github.com/helpdesk/helpdesk/threading"
)

// Big mail. The inbox streams a big mail from the IMAP server straight into
// the database (Spool: store.DB.StageFrom, 2 MiB transactions), and hands
// it over as Inbound.Staged instead of Raw. Everything that needs its bytes
// reads them from there a chunk at a time: the parser (threading.ParseReader),
// the bounce parser (the head of the mail only), the hash of a mail that
// cannot be parsed. The transaction that stores or quarantines it claims
// the staged blob, so a 25 MB attachment is never in memory, not even once.

// maxBounceScan bounds the bytes of a big delivery report read for its
// machine-readable part, which comes before the returned mail.
const maxBounceScan = 2 << 20

// Spool writes a mail read from r to the database ahead of the
// transaction that will store it, and returns its handle for
// Inbound.Staged. Call Discard when done with it.
func (e *Engine) Spool(r io.Reader) (*store.Staged, error) {
	s, err := e.db.StageFrom(r)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return s, nil
}

// Discard removes a spooled mail unless a transaction claimed it.
func (e *Engine) Discard(s *store.Staged) { e.unstage(s) }

// size is the mail's size in bytes.
func (in Inbound) size() int {
	if in.Staged != nil {
		return in.Staged.Size()
	}
	return len(in.Raw)
}

// reader reads the mail's bytes.
func (e *Engine) reader(in Inbound) io.Reader {
	if in.Staged != nil {
		return e.db.ReadStaged(in.Staged)
	}
	return bytes.NewReader(in.Raw)
}

// head returns at most n leading bytes of the mail.
func (e *Engine) head(in Inbound, n int) ([]byte, error) {
	if in.Staged == nil {
		return in.Raw[:min(len(in.Raw), n)], nil
	}
	b, err := io.ReadAll(io.LimitReader(e.reader(in), int64(n)))
	if err != nil {
		return nil, fmt.Errorf("read staged mail: %w", err)
	}
	return b, nil
}

// sum is the hex SHA-256 of the mail's bytes.
func (e *Engine) sum(in Inbound) (string, error) {
	if in.Staged == nil {
		return sha256Hex(in.Raw), nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, e.reader(in)); err != nil {
		return "", fmt.Errorf("read staged mail: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// parseIn parses a mail; a staged one as it is read. It never panics: a
// panic in the parser, like an unparseable mail, comes back as a
// quarantine reason, so one hostile mail cannot stop the mailbox. err is
// set only when a staged mail's bytes could not be read (temporary).
func (e *Engine) parseIn(in Inbound) (msg *threading.Message, reason string, err error) {
	defer func() {
		if p := recover(); p != nil {
			e.log.Error("parser panic", "panic", p, "stack", string(debug.Stack()))
			msg, reason, err = nil, fmt.Sprintf("parser panic: %v", p), nil
		}
	}()
	var perr error
	if in.Staged == nil {
		msg, perr = threading.Parse(in.Raw, e.cfg.ParseLimits)
	} else {
		msg, perr = threading.ParseReader(e.reader(in), e.cfg.ParseLimits)
	}
	switch {
	case perr == nil:
		return msg, "", nil
	case in.Staged == nil || errors.Is(perr, threading.ErrUnparseable):
		return nil, perr.Error(), nil
	default:
		return nil, "", perr
	}
}
