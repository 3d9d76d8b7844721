// Package outbox composes outbound mail and delivers it from a durable
// queue.
//
// Compose turns an Envelope into RFC 5322 bytes (text/plain, UTF-8,
// quoted-printable) with our own Message-ID and the threading headers. Every
// value that ends up in a header is neutralised first: control characters
// (CR and LF above all) become spaces in free text, are removed from
// message ids, and make an address invalid, so no caller-supplied value can
// add a header.
//
// The queue itself lives in the store, which implements Queue; this package
// imports no other helpdesk package. The Worker owns delivery:
//
//   - it sends what is due, one item at a time, oldest first, through a
//     Sender (SMTPSender in production), passing the prepared bytes through
//     unchanged; deliveries are recorded by a second goroutine while the
//     next items are sent, all that piled up in one go (Queue.Sent, or
//     BatchQueue.SentBatch: one transaction), so the database's commit
//     time does not limit the send rate;
//   - a temporary failure (SMTP 4xx, network, TLS, anything unknown) is
//     retried with exponential backoff and jitter; a permanent one (a 5xx
//     answer to MAIL, RCPT or DATA) or the last allowed attempt makes the
//     item dead, and OnDead is told;
//   - one failing item never holds up the others;
//   - once the relay accepted an item the worker never sends it again. If
//     recording it fails, the worker retries the recording without sending
//     again for as long as it runs. Delivery is still at-least-once across
//     a crash between the relay's "250 OK" and the recording, as in any
//     SMTP client; with recording in batches that window holds the mails
//     accepted during one gathering and commit (a few milliseconds)
//     instead of one.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Item is one queued message as the store keeps it.
type Item struct {
	ID          uint64
	From        string   // envelope sender (MAIL FROM), "" for the null path
	To          []string // envelope recipients (RCPT TO)
	Raw         []byte   // the message exactly as it goes on the wire
	Attempts    int      // failed delivery attempts so far
	NextAttempt time.Time
	LastError   string
}

// Queue is the durable outbox, implemented by the store. Every method is a
// committed transaction when it returns nil.
type Queue interface {
	// Due returns up to limit pending items with NextAttempt <= now, oldest
	// first, leaving out those for which skip reports true without reading
	// them: they do not count against limit, only in skipped. The worker
	// skips what it has sent and is still recording, which Due would
	// otherwise hand back, bytes and all, at every round (9247 items read
	// for 3722 sent in one bench ingest run, before the skip).
	Due(now time.Time, limit int, skip func(id uint64) bool) (items []Item, skipped int, err error)
	// NextDue returns the earliest NextAttempt of any pending item; ok is
	// false when nothing is pending.
	NextDue() (t time.Time, ok bool, err error)
	// Sent records a delivery; the item is never returned by Due again.
	Sent(id uint64, at time.Time) error
	// Retry records a failed attempt and when to try next.
	Retry(id uint64, attempts int, next time.Time, lastErr string) error
	// Dead gives up on an item: a permanent failure or too many attempts.
	Dead(id uint64, attempts int, lastErr string) error
}

// Sender delivers prepared bytes to a relay. It returns nil only when the
// relay has accepted the message for every recipient; a *SendError says
// whether a failure is permanent, and any other error counts as temporary.
type Sender interface {
	Send(ctx context.Context, from string, to []string, raw []byte) error
}

// SendError is a classified delivery failure. Code is the SMTP reply code,
// 0 when there was none (network, TLS, local validation).
type SendError struct {
	Code      int
	Permanent bool
	Err       error

	atMail bool // the failure was the answer to MAIL FROM (or its absence)
	broken bool // the session is in an unknown state: drop the connection
}

func (e *SendError) Error() string {
	kind := "temporary"
	if e.Permanent {
		kind = "permanent"
	}
	if e.Code != 0 {
		return fmt.Sprintf("%s failure (smtp %d): %v", kind, e.Code, e.Err)
	}
	return fmt.Sprintf("%s failure: %v", kind, e.Err)
}

func (e *SendError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is, or wraps, a permanent SendError.
// Everything else is temporary: unknown failures are retried, never dropped.
func IsPermanent(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.Permanent
}
