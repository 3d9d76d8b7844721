package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	bolt "go.etcd.io/bbolt"
)

// Message records.
//
// A message's text is most of its record (tens of KB for a long mail), and
// JSON costs most on it: escaping it when the record is written (a newline
// every line or so), scanning it when it is read. And a record of that size
// costs again in bbolt: a leaf of four keys or fewer never splits, so a
// follow-up to a ticket rewrote the leaf holding the ticket's last few
// messages, texts and all (ingest wrote 2.8 times the bytes of the mail it
// took in; the texts' share of that was 2.5 times their size). So:
//
//   - The text of a fresh message (AddMessage) of at least textInBlobMin
//     bytes is stored once, next to its raw bytes: under key "t" of its
//     blob's first chunk bucket, which nothing rewrites. Its record is
//
//     0x02 <the message without its text: JSON>
//
//   - Any other text (short; a staged mail, whose first chunk was written
//     before; a record without a blob) stays in its record, as it is,
//     after its length:
//
//     0x01 <uvarint: length of the text> <the text, UTF-8> <the rest: JSON>
//
// The rest is json.Marshal of the message without its text (messageHead),
// a few hundred bytes. A record cut anywhere does not decode: the length
// covers the text, and what follows must be one whole JSON object.
//
// Two JSON layouts came before, and stay readable for good, so that no
// migration rewrites old records:
//
//   - `{"ticket_id":…}`: json.Marshal(Message), read with encoding/json;
//   - text first, `{"text":"<escaped>",<the rest>}`: the same JSON object,
//     its text read with a loop that copies the runs between escapes, the
//     rest with encoding/json (an escape that loop does not handle sends
//     the whole record to encoding/json).
//
// A JSON record starts with '{', a binary one with 0x01 or 0x02. Schema 5
// marks a database that may hold binary records, which a binary of schema
// 4 cannot read: it refuses the file instead of failing on the first one.
//
// The text is stored as encoding/json would have stored it: a byte that is
// not part of valid UTF-8 becomes U+FFFD, one for each such byte, so a
// message reads back the same under every layout.

const (
	// textInline starts a binary record that holds its text.
	textInline = 0x01
	// textInBlob starts a binary record whose text is in its blob.
	textInBlob = 0x02
	// textInBlobMin is the shortest text stored in the blob: a shorter
	// one makes a small record, cheap to rewrite.
	textInBlobMin = 1 << 10
)

// textKey holds a message's text in its blob's first chunk bucket.
var textKey = []byte("t")

// textFirst starts every text-first message record (schema 4).
const textFirst = `{"text":"`

// messageHead is Message without its text: the rest of a text-first
// record. The conversion from Message (which ignores tags) keeps the two in
// step: a field added to one and not the other does not compile.
type messageHead struct {
	TicketID        uint64       `json:"ticket_id"`
	Seq             uint64       `json:"seq"`
	MessageID       string       `json:"message_id"`
	Direction       string       `json:"direction"`
	Kind            string       `json:"kind"`
	From            string       `json:"from"`
	FromName        string       `json:"from_name,omitempty"`
	To              []string     `json:"to"`
	Cc              []string     `json:"cc,omitempty"`
	Date            time.Time    `json:"date"`
	Subject         string       `json:"subject"`
	Text            string       `json:"-"`
	Attachments     []Attachment `json:"attachments"`
	InReplyTo       []string     `json:"in_reply_to,omitempty"`
	References      []string     `json:"references,omitempty"`
	MatchedBy       string       `json:"matched_by,omitempty"`
	Automated       string       `json:"automated,omitempty"`
	AutomatedReason string       `json:"automated_reason,omitempty"`
	Mailbox         string       `json:"mailbox,omitempty"`
	UIDValidity     uint32       `json:"uid_validity,omitempty"`
	UID             uint32       `json:"uid,omitempty"`
	Size            int          `json:"size"`
	Blob            uint64       `json:"blob,omitempty"`
	RawSHA256       string       `json:"raw_sha256,omitempty"`
	Warnings        []string     `json:"warnings,omitempty"`
	ReceivedAt      time.Time    `json:"received_at"`
	Delivery        *Delivery    `json:"delivery,omitempty"`
}

// putMessage stores m under key in the messages bucket. fresh says that
// m's blob was written by this transaction, its first chunk bucket new, so
// that a long text goes there without rewriting anything (records above).
func (t *Tx) putMessage(key []byte, m *Message, fresh bool) error {
	text := validText(m.Text)
	var v []byte
	var err error
	if fresh && m.Blob != 0 && len(text) >= textInBlobMin {
		if err := t.putMessageText(m.Blob, text); err != nil {
			return err
		}
		v, err = encodeHead(m)
	} else {
		v, err = encodeInline(m, text)
	}
	if err != nil {
		return err
	}
	return t.bucket(bucketMessages).Put(key, v)
}

// putMessageText stores text in the first chunk bucket of blob.
func (t *Tx) putMessageText(blob uint64, text string) error {
	cb := t.bucket(bucketBlobs).Bucket(blobKey(blob, 0))
	if cb == nil {
		return fmt.Errorf("message text: blob %d: %w", blob, ErrNotFound)
	}
	return cb.Put(textKey, stringBytes(text))
}

// stringBytes is s's bytes without a copy, for a value bbolt only reads
// (it keeps the slice until the commit, and a string's bytes never
// change). A long text is tens of kilobytes: copying each one cost the
// group commit an allocation and, in one trace, 58 ms of garbage
// collector assists per 5,000 mails.
func stringBytes(s string) []byte {
	if s == "" {
		return []byte{}
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// getMessage reads the message stored under key, or ErrNotFound.
func (t *Tx) getMessage(key []byte, m *Message) error {
	v := t.bucket(bucketMessages).Get(key)
	if v == nil {
		return ErrNotFound
	}
	return t.decodeMessage(v, m)
}

// decodeMessage reads a message record of any layout into m, which must be
// the zero Message, with its text from its blob where it is there.
func (t *Tx) decodeMessage(v []byte, m *Message) error {
	if len(v) == 0 || v[0] != textInBlob {
		return decodeMessage(v, m)
	}
	if err := json.Unmarshal(v[1:], (*messageHead)(m)); err != nil {
		return fmt.Errorf("message record: %w", err)
	}
	var text []byte
	if cb := t.bucket(bucketBlobs).Bucket(blobKey(m.Blob, 0)); cb != nil {
		text = cb.Get(textKey)
	}
	if text == nil {
		return fmt.Errorf("message record: text missing from blob %d", m.Blob)
	}
	m.Text = string(text)
	return nil
}

// validText is s as encoding/json would store it (records above).
func validText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return replaceInvalidUTF8(s)
}

// encodeHead returns m's record without its text (textInBlob).
func encodeHead(m *Message) ([]byte, error) {
	head, err := json.Marshal((*messageHead)(m))
	if err != nil {
		return nil, err
	}
	return append([]byte{textInBlob}, head...), nil
}

// encodeInline returns m's record with text (textInline), which is m's
// text made valid (validText).
func encodeInline(m *Message, text string) ([]byte, error) {
	head, err := json.Marshal((*messageHead)(m))
	if err != nil {
		return nil, err
	}
	dst := make([]byte, 0, 1+binary.MaxVarintLen64+len(text)+len(head))
	dst = append(dst, textInline)
	dst = binary.AppendUvarint(dst, uint64(len(text)))
	dst = append(dst, text...)
	return append(dst, head...), nil
}

// errSlowPath says the fast decoder leaves a record to encoding/json.
var errSlowPath = errors.New("not for the fast path")

// decodeMessage reads a message record that holds its text, of any
// layout, into m, which must be the zero Message. A textInBlob record is
// read by Tx.decodeMessage.
func decodeMessage(v []byte, m *Message) error {
	if len(v) > 0 && v[0] == textInline {
		n, k := binary.Uvarint(v[1:])
		if k <= 0 || n > uint64(len(v)-1-k) {
			return errors.New("message record: bad text length")
		}
		text := v[1+k : 1+k+int(n)]
		if err := json.Unmarshal(v[1+k+int(n):], (*messageHead)(m)); err != nil {
			return fmt.Errorf("message record: %w", err)
		}
		m.Text = string(text)
		return nil
	}
	rest, ok := bytes.CutPrefix(v, []byte(textFirst))
	if !ok {
		return json.Unmarshal(v, m)
	}
	text, n, err := unquoteText(rest)
	if errors.Is(err, errSlowPath) {
		return json.Unmarshal(v, m)
	}
	if err != nil {
		return fmt.Errorf("message record: %w", err)
	}
	rest = rest[n:]
	var head []byte
	switch {
	case len(rest) == 1 && rest[0] == '}':
		head = []byte("{}")
	case len(rest) > 2 && rest[0] == ',' && rest[1] == '"':
		// The members after the text, as an object of their own.
		head = make([]byte, len(rest))
		head[0] = '{'
		copy(head[1:], rest[1:])
	default:
		// Not as encodeMessage writes it (white space, say):
		// encoding/json reads it, or says what is wrong with it.
		return json.Unmarshal(v, m)
	}
	if err := json.Unmarshal(head, (*messageHead)(m)); err != nil {
		return fmt.Errorf("message record: %w", err)
	}
	m.Text = text
	return nil
}

// replaceInvalidUTF8 replaces each byte of s that is not part of valid
// UTF-8 with U+FFFD, as encoding/json does when it writes a string (and
// unlike strings.ToValidUTF8, which replaces a run of them with one).
func replaceInvalidUTF8(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unquoteText decodes the contents of the JSON string at the start of b
// (after its opening quote): the text of a text-first record. n counts the
// bytes read, the closing quote included. An escape the schema-4 writer
// did not write (a UTF-16 surrogate, an invalid one) returns errSlowPath:
// encoding/json then decodes the record, or says what is wrong with it.
//
// The text is taken as written: raw control characters or bytes that are
// not UTF-8, which that writer never wrote, are not looked for.
func unquoteText(b []byte) (text string, n int, err error) {
	end := stringEnd(b)
	if end < 0 {
		return "", 0, errors.New("text has no closing quote")
	}
	var sb strings.Builder
	// Escapes only shorten the text: this is the one allocation.
	sb.Grow(end)
	for i := 0; i < end; {
		j := bytes.IndexByte(b[i:end], '\\')
		if j < 0 {
			sb.Write(b[i:end])
			break
		}
		sb.Write(b[i : i+j])
		i += j
		// stringEnd saw that this backslash does not escape the final
		// quote, so another byte follows it before end.
		switch c := b[i+1]; c {
		case '"', '\\', '/':
			sb.WriteByte(c)
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 't':
			sb.WriteByte('\t')
		case 'b':
			sb.WriteByte('\b')
		case 'f':
			sb.WriteByte('\f')
		case 'u':
			r, ok := hex4(b[i+2 : min(i+6, end)])
			if !ok || utf16.IsSurrogate(r) {
				return "", 0, errSlowPath
			}
			sb.WriteRune(r)
			i += 4
		default:
			return "", 0, errSlowPath
		}
		i += 2
	}
	return sb.String(), end + 1, nil
}

// stringEnd returns the index in b of the first quote no backslash
// escapes, or -1.
func stringEnd(b []byte) int {
	for i := 0; i < len(b); {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return -1
		}
		q += i
		// Escaped when an odd number of backslashes come before it. Each
		// run of backslashes is counted once: the next quote is further on.
		k := q
		for k > i && b[k-1] == '\\' {
			k--
		}
		if (q-k)%2 == 0 {
			return q
		}
		i = q + 1
	}
	return -1
}

// hex4 decodes exactly four hex digits.
func hex4(b []byte) (rune, bool) {
	if len(b) != 4 {
		return 0, false
	}
	var r rune
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// Ticket records.
//
// Every message added to a ticket adds one to its message_count, which
// meant decoding the whole ticket and encoding it again, twice per new
// ticket (the mail, its acknowledgement). A ticket record therefore ends
// with its count:
//
//	{<the ticket without its count, as encoding/json writes it>,"message_count":<n>}
//
// so that countMessage rewrites the number and copies the rest as it is.
// As with messages, the record is the same JSON object as before, its
// members in another order: encoding/json reads it into the same Ticket.
// A record written before has the count in the middle, or last when the
// optional members after it are empty; countMessage rewrites either kind
// (the first by decoding it) into this layout.

// countLast ends every ticket record, but for the number and the '}'.
const countLast = `,"message_count":`

// ticketHead is Ticket without its message count: the rest of a ticket
// record. The conversion from Ticket keeps the two in step.
type ticketHead struct {
	ID                    uint64    `json:"id"`
	Subject               string    `json:"subject"`
	Status                string    `json:"status"`
	Priority              string    `json:"priority"`
	Mailbox               string    `json:"mailbox"`
	Requester             string    `json:"requester"`
	RequesterName         string    `json:"requester_name,omitempty"`
	CC                    []string  `json:"cc"`
	Assignee              string    `json:"assignee"`
	Team                  string    `json:"team"`
	Category              string    `json:"category"`
	CreatedAt             time.Time `json:"created_at"`
	UpdatedAt             time.Time `json:"updated_at"`
	MessageCount          int       `json:"-"`
	LastCustomerMessageID string    `json:"last_customer_message_id,omitempty"`
	ThreadIDs             []string  `json:"thread_ids,omitempty"`
	MergedInto            uint64    `json:"merged_into,omitempty"`
}

// ticketRecord is a ticket as it is stored: encoding/json writes the
// fields of an embedded struct where it is embedded, so the count comes
// last (and the embedded MessageCount, tagged "-", is left out). This
// costs what json.Marshal(Ticket) does; adding the count to that output
// would copy it into a bigger buffer.
type ticketRecord struct {
	*ticketHead
	MessageCount int `json:"message_count"`
}

// putTicket stores tk under its ID in b, its count last.
func putTicket(b *bolt.Bucket, tk *Ticket) error {
	v, err := json.Marshal(&ticketRecord{(*ticketHead)(tk), tk.MessageCount})
	if err != nil {
		return err
	}
	return b.Put(u64(tk.ID), v)
}

// countMessage adds one to the message count of ticket id.
func (t *Tx) countMessage(id uint64) error {
	b := t.bucket(bucketTickets)
	v := b.Get(u64(id))
	if v == nil {
		return fmt.Errorf("ticket %d: %w", id, ErrNotFound)
	}
	if n, at, ok := cutCount(v); ok {
		nv := make([]byte, at, len(v)+1)
		copy(nv, v)
		nv = strconv.AppendInt(nv, n+1, 10)
		return b.Put(u64(id), append(nv, '}'))
	}
	// A record with the count elsewhere, written before.
	var tk Ticket
	if err := json.Unmarshal(v, &tk); err != nil {
		return fmt.Errorf("ticket %d: %w", id, err)
	}
	tk.MessageCount++
	return putTicket(b, &tk)
}

// cutCount returns the count at the end of a ticket record and where its
// digits start. ok is false unless the record ends with countLast, digits
// as strconv writes them (no sign, no leading zero, no overflow) and '}'.
//
// In a JSON object without nested objects, such an end is its last
// member (a string followed by ':' is a key, and a ',' before it puts it
// at the top level); encoding/json too takes the last of several members
// of one name.
func cutCount(v []byte) (n int64, at int, ok bool) {
	end := len(v) - 1
	if end < 0 || v[end] != '}' {
		return 0, 0, false
	}
	at = end
	for at > 0 && '0' <= v[at-1] && v[at-1] <= '9' {
		at--
	}
	digits := v[at:end]
	if len(digits) == 0 || len(digits) > 18 || len(digits) > 1 && digits[0] == '0' || !bytes.HasSuffix(v[:at], []byte(countLast)) {
		return 0, 0, false
	}
	for _, c := range digits {
		n = n*10 + int64(c-'0')
	}
	return n, at, true
}
