// Package store persists everything helpdesk knows in one bbolt file.
//
// On-disk layout. Integer keys are 8-byte big-endian so bbolt's byte order
// is numeric order; values are JSON unless said otherwise (message records
// put their text first and tickets their message count last, still JSON:
// see records.go).
//
//	meta           "schema"  → uint64 schema version (see migrations.go)
//	               "secret"  → 32 random bytes, the HMAC key of our Message-ID tokens
//	tickets        ticketID  → Ticket (IDs from the bucket's sequence: increasing, never reused)
//	messages       ticketID‖seq → Message without its raw bytes (seq from the bucket's sequence;
//	               the record layouts, and where a long text goes, are in records.go)
//	blobs          blobID‖chunk(4) → a bucket holding, under "b", up to 1 MiB of a mail's raw
//	               RFC 5322 bytes, exactly as received or sent (IDs from the bucket's sequence;
//	               a bucket per chunk keeps each mail's pages to itself: see blobs.go); chunk 0's
//	               also holds, under "t", the text of its message when that is long.
//	               Message.Blob, Quarantined.Blob and Outbound.Blob name them.
//	staged         blobID → unix nanoseconds: a big mail written ahead (DB.Stage) that no
//	               transaction has claimed yet; removed by the claim, by Unstage, or at Open
//	raw            ticketID‖seq → raw bytes of messages stored by schema 1 (Message.Blob 0); read only
//	msgids         dedupe key → ticketID‖seq; a key is "<message-id>" or "sha256:<hex>" of a raw mail without one
//	by_status      status 0x00 ticketID → empty (index)
//	by_requester   address 0x00 ticketID → empty (index)
//	checkpoints    mailbox name → Checkpoint (UIDVALIDITY and highest committed UID)
//	pending_flags  mailbox 0x00 uidvalidity(4) uid(4) → empty, or "q" for a quarantined mail: committed, not yet flagged (\Seen, the quarantine keyword) or moved on the server
//	outbox         outboxID → Outbound still to be sent; removed when sent, moved to dead when given up.
//	               An unfiled one (EnqueueUnfiled: ticket 0, message 0) has no Message and its bytes inline
//	outbox_due     next attempt (unix ns, 8) ‖ outboxID → empty: the outbox in the order it falls due
//	dead           outboxID → Outbound given up on (permanent failure or too many attempts)
//	deliveries     ticketID‖seq → Delivery: the latest delivery state of an outbound message,
//	               laid over the Message's own by every reader (the outbox worker writes it
//	               without rewriting the message; UpdateMessage folds it back in)
//	ratelimit      key → rateState (hits per slot of a sliding window; see ratelimit.go)
//	quarantine     quarantineID → Quarantined (its bytes in blobs; schema 1 kept them inline)
//	holds          kind 0x00 address → Hold: no automatic mail to the address until Hold.Until
//	               (kind undeliverable: a permanent bounce; paused: the circuit breaker; see holds.go)
//
// Buckets whose keys only grow (tickets, blobs) fill their pages before
// splitting them, instead of bbolt's default of half, so a database of a
// million tickets is about half the size.
//
// Transactions. The ticket logic stores one inbound mail in one Update (or
// Batch): the message and its raw bytes, the ticket it creates or changes,
// the dedupe keys, the mailbox checkpoint, the pending flag and every
// outbound mail it causes (both the Outbound and its Message). Several
// mails may share one transaction (group commit); each is still all or
// nothing. Nothing about a mail is visible outside that transaction, so a
// crash leaves either all of it or none of it; the one thing written before
// it is the staged bytes of a big mail, which nothing refers to until that
// transaction claims them. The outbox worker and the IMAP flagger then each
// change their own records in small transactions of their own.
//
// Check verifies the invariants between buckets; tests run it in cleanup.
package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Sentinel errors.
var (
	ErrNotFound  = errors.New("not found")
	ErrDuplicate = errors.New("duplicate")
	ErrLocked    = errors.New("database is locked by another process")
)

var (
	bucketMeta         = []byte("meta")
	bucketTickets      = []byte("tickets")
	bucketMessages     = []byte("messages")
	bucketRaw          = []byte("raw")
	bucketBlobs        = []byte("blobs")
	bucketStaged       = []byte("staged")
	bucketOutboxDue    = []byte("outbox_due")
	bucketDeliveries   = []byte("deliveries")
	bucketMsgIDs       = []byte("msgids")
	bucketByStatus     = []byte("by_status")
	bucketByRequester  = []byte("by_requester")
	bucketCheckpoints  = []byte("checkpoints")
	bucketPendingFlags = []byte("pending_flags")
	bucketOutbox       = []byte("outbox")
	bucketDead         = []byte("dead")
	bucketRateLimit    = []byte("ratelimit")
	bucketQuarantine   = []byte("quarantine")

	keySchema = []byte("schema")
	keySecret = []byte("secret")
)

// initialMmapSize is the least address space bbolt maps for the file.
const initialMmapSize = 1 << 30

// Options tune Open.
type Options struct {
	// Timeout is how long Open waits for another process's file lock
	// before returning ErrLocked. Zero means one second.
	Timeout time.Duration
	// ReadOnly opens the file with a shared lock and never writes.
	ReadOnly bool
	// NoSync skips fsync; only for benchmarks and tests of scale.
	NoSync bool
}

// DB is an open helpdesk database.
type DB struct {
	bolt   *bolt.DB
	secret []byte
	trim   *trimmer // see mapped.go
}

// Open opens or creates the database at path (mode 0600, its directory 0700
// when Open creates it) and brings its schema up to date.
func Open(path string, opts Options) (*DB, error) {
	if opts.Timeout == 0 {
		opts.Timeout = time.Second
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      opts.Timeout,
		ReadOnly:     opts.ReadOnly,
		NoSync:       opts.NoSync,
		FreelistType: bolt.FreelistMapType,
		// Address space only: a bigger map from the start spares the remaps
		// (and the copying of every page a transaction holds) while the
		// file grows. Only the pages read are resident.
		InitialMmapSize: initialMmapSize,
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open database %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db := &DB{bolt: b}
	if !opts.ReadOnly {
		if err := migrate(b); err != nil {
			b.Close()
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
		if _, err := dropStaged(b); err != nil {
			b.Close()
			return nil, fmt.Errorf("open database %s: remove staged mail of an earlier run: %w", path, err)
		}
	}
	err = b.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return errors.New("not a helpdesk database (no meta bucket)")
		}
		if v := schemaVersion(meta); v > currentSchema {
			return fmt.Errorf("schema version %d is newer than this binary's %d", v, currentSchema)
		}
		db.secret = bytes.Clone(meta.Get(keySecret))
		return nil
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db.trim = newTrimmer()
	return db, nil
}

// Close closes the file.
func (db *DB) Close() error {
	db.trim.close()
	return db.bolt.Close()
}

// Path is the database file's path.
func (db *DB) Path() string { return db.bolt.Path() }

// Secret is the HMAC key of our Message-ID tokens, created with the database.
func (db *DB) Secret() []byte { return bytes.Clone(db.secret) }

// Update runs fn in one read-write transaction: all of its writes or none.
func (db *DB) Update(fn func(*Tx) error) error {
	err := db.bolt.Update(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx, trim: db.trim}) })
	db.trim.trimAfterWrite(db.bolt)
	return err
}

// Batch is Update for concurrent callers: bbolt may commit several callers'
// functions in one transaction (group commit), and may run fn more than once,
// so fn must have no effect outside the transaction.
func (db *DB) Batch(fn func(*Tx) error) error {
	err := db.bolt.Batch(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx, trim: db.trim}) })
	db.trim.trimAfterWrite(db.bolt)
	return err
}

// View runs fn in a read-only transaction. The pages it mapped are let go
// of when it ends, if the map has grown enough (see mapped.go): a reader
// such as the outbox worker runs all day.
func (db *DB) View(fn func(*Tx) error) error {
	return db.bolt.View(func(btx *bolt.Tx) error {
		err := fn(&Tx{tx: btx, trim: db.trim})
		// Inside the transaction bbolt cannot remap, so Info().Data is
		// the map the reads went through.
		db.trim.maybeTrim(db.bolt.Info().Data, uintptr(btx.Size()))
		return err
	})
}

// Backup writes a consistent copy of the whole database to w. It runs in a
// read transaction, so ingest goes on while it is taken.
func (db *DB) Backup(w io.Writer) (int64, error) {
	var n int64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}

// Tx is one transaction. It must not be used after the function it was
// given to returns; byte slices and structs it returns are copies.
type Tx struct {
	tx   *bolt.Tx
	trim *trimmer
}

func (t *Tx) bucket(name []byte) *bolt.Bucket {
	b := t.tx.Bucket(name)
	// bbolt caches a bucket per writable transaction, so this sticks for
	// the transaction. Appending to a half-filled page wastes the other
	// half for good when keys only grow.
	if b != nil && t.tx.Writable() && (bytes.Equal(name, bucketTickets) || bytes.Equal(name, bucketBlobs)) {
		b.FillPercent = 1.0
	}
	return b
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func msgKey(ticketID, seq uint64) []byte {
	return append(u64(ticketID), u64(seq)...)
}

func splitMsgKey(k []byte) (ticketID, seq uint64, ok bool) {
	if len(k) != 16 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(k[:8]), binary.BigEndian.Uint64(k[8:]), true
}

func indexKey(value string, id uint64) []byte {
	k := make([]byte, 0, len(value)+9)
	k = append(k, value...)
	k = append(k, 0)
	return append(k, u64(id)...)
}

func getJSON(b *bolt.Bucket, key []byte, v any) error {
	data := b.Get(key)
	if data == nil {
		return ErrNotFound
	}
	return json.Unmarshal(data, v)
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

func newSecret() ([]byte, error) {
	s := make([]byte, 32)
	_, err := rand.Read(s)
	return s, err
}
