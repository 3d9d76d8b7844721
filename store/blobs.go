package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Raw mail bytes are kept as blobs: a blob ID from the blobs bucket's
// sequence, and its bytes cut into chunks of at most blobChunk. Chunk c of
// blob id is a bucket of its own under blobID‖c, holding the bytes under
// chunkValue. Its pages are its own: they are written once, and storing
// later mail never copies them again, nor reads them back through the
// memory map. (Values in the blobs bucket itself would share leaves: bbolt
// splits no leaf of four keys or fewer, so each new mail would rewrite the
// last few mails' bytes, and over time map the whole file into the
// daemon's memory. With the old ticketID‖seq keys of the raw bucket, every
// follow-up to an old ticket rewrote a leaf full of other mails' bytes.)
//
// A mail of up to stageThreshold is written by the transaction that stores
// its message. A bigger one is staged first (DB.Stage): written ahead in
// transactions of their own, stageTxBytes at a time, so that no transaction
// holds more than that in dirty pages, and then claimed by the transaction
// that stores its message or quarantines it. A staged blob no transaction
// claimed (a crash in between, a duplicate) is removed by Unstage, or at the
// next Open.
const (
	blobChunk      = 1 << 20
	stageThreshold = 4 << 20
	stageTxBytes   = 2 * blobChunk
)

// chunkValue is the one key of a chunk's bucket.
var chunkValue = []byte("b")

func blobKey(id uint64, chunk uint32) []byte {
	k := make([]byte, 12)
	binary.BigEndian.PutUint64(k, id)
	binary.BigEndian.PutUint32(k[8:], chunk)
	return k
}

// putBlobChunks writes raw as chunks first, first+1, … of blob id.
func putBlobChunks(b *bolt.Bucket, id uint64, first uint32, raw []byte) error {
	chunk := first
	for {
		n := min(len(raw), blobChunk)
		cb, err := b.CreateBucket(blobKey(id, chunk))
		if err != nil {
			return fmt.Errorf("blob %d chunk %d: %w", id, chunk, err)
		}
		// bbolt keeps the slice until commit: raw must not change before,
		// which holds for every caller (mail bytes are never modified).
		if err := cb.Put(chunkValue, raw[:n]); err != nil {
			return fmt.Errorf("blob %d chunk %d: %w", id, chunk, err)
		}
		raw = raw[n:]
		chunk++
		if len(raw) == 0 {
			return nil
		}
	}
}

// putBlob stores raw as a new blob in this transaction and returns its ID.
func (t *Tx) putBlob(raw []byte) (uint64, error) {
	b := t.bucket(bucketBlobs)
	id, err := b.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("new blob: %w", err)
	}
	return id, putBlobChunks(b, id, 0, raw)
}

// chunks calls fn with the bytes of every chunk of blob id, in order
// (valid in the transaction only), and reports whether the blob exists.
func (t *Tx) chunks(id uint64, fn func(chunk []byte)) bool {
	b := t.bucket(bucketBlobs)
	c := b.Cursor()
	prefix := u64(id)
	found := false
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		found = true
		switch {
		case v != nil:
			// QUIRK: the first builds of schema 2 stored a chunk as a plain
			// value under its key; such databases read the same.
			fn(v)
		default:
			if cb := b.Bucket(k); cb != nil {
				fn(cb.Get(chunkValue))
			}
		}
	}
	return found
}

// blob returns a copy of blob id, or ErrNotFound.
func (t *Tx) blob(id uint64) ([]byte, error) {
	out := []byte{}
	if !t.chunks(id, func(chunk []byte) { out = append(out, chunk...) }) {
		return nil, fmt.Errorf("blob %d: %w", id, ErrNotFound)
	}
	return out, nil
}

// blobSize returns the total size of blob id and whether it exists.
func (t *Tx) blobSize(id uint64) (int, bool) {
	n := 0
	found := t.chunks(id, func(chunk []byte) { n += len(chunk) })
	return n, found
}

// deleteBlob removes every chunk of blob id.
func (t *Tx) deleteBlob(id uint64) error {
	b := t.bucket(bucketBlobs)
	c := b.Cursor()
	prefix := u64(id)
	var keys, values [][]byte
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if v != nil {
			values = append(values, bytes.Clone(k)) // an early schema-2 chunk
		} else {
			keys = append(keys, bytes.Clone(k))
		}
	}
	for _, k := range keys {
		if err := b.DeleteBucket(k); err != nil {
			return fmt.Errorf("delete blob %d: %w", id, err)
		}
	}
	for _, k := range values {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("delete blob %d: %w", id, err)
		}
	}
	return nil
}

// Staged is a mail's bytes written ahead by DB.Stage, waiting for the one
// transaction that claims it (AddStagedMessage, QuarantineStaged).
type Staged struct {
	id   uint64
	size int
}

// Size is the number of bytes staged.
func (s *Staged) Size() int { return s.size }

// NeedsStaging reports whether a mail of n bytes should be staged with
// Stage before the transaction that stores it, rather than passed to it.
func NeedsStaging(n int) bool { return n > stageThreshold }

// Stage writes raw to the database in transactions of its own, a few MB
// each, so a big mail never costs a second copy of itself in dirty pages,
// and returns the handle a later transaction claims it with. Until then it
// is invisible to everything but Check. Call Unstage if no transaction
// claims it.
func (db *DB) Stage(raw []byte) (*Staged, error) {
	rest := raw
	return db.stage(func() ([]byte, error) {
		part := rest[:min(len(rest), stageTxBytes)]
		rest = rest[len(part):]
		return part, nil
	})
}

// StageFrom is Stage for bytes read from r, up to its EOF: a mail streamed
// from the IMAP server is written as it arrives, and no more than one
// transaction's worth of it (stageTxBytes) is ever in memory. A read
// error ends it, with nothing left staged.
func (db *DB) StageFrom(r io.Reader) (*Staged, error) {
	buf := make([]byte, stageTxBytes)
	return db.stage(func() ([]byte, error) {
		// bbolt holds on to the slice until its commit, which is over
		// before the buffer is filled again.
		n, err := io.ReadFull(r, buf)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = nil
		}
		return buf[:n], err
	})
}

// stage writes the parts next returns, one transaction each, until it
// returns an empty one.
func (db *DB) stage(next func() ([]byte, error)) (*Staged, error) {
	var id uint64
	err := db.Update(func(tx *Tx) error {
		b := tx.bucket(bucketBlobs)
		var err error
		if id, err = b.NextSequence(); err != nil {
			return err
		}
		// Registered first: a crash while the chunks are written leaves a
		// staged entry, which the next Open cleans up.
		return tx.bucket(bucketStaged).Put(u64(id), u64(uint64(time.Now().UnixNano())))
	})
	if err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	s := &Staged{id: id}
	fail := func(err error) (*Staged, error) {
		if uerr := db.Unstage(s); uerr != nil {
			err = errors.Join(err, uerr)
		}
		return nil, fmt.Errorf("stage after %d bytes: %w", s.size, err)
	}
	for chunk := uint32(0); ; {
		part, err := next()
		if err != nil {
			return fail(err)
		}
		if len(part) == 0 {
			break
		}
		err = db.Update(func(tx *Tx) error {
			return putBlobChunks(tx.bucket(bucketBlobs), id, chunk, part)
		})
		if err != nil {
			return fail(err)
		}
		s.size += len(part)
		chunk += uint32((len(part) + blobChunk - 1) / blobChunk)
	}
	if s.size == 0 {
		// An empty blob has no chunk, and a blob without one reads as
		// missing: keep one empty chunk.
		if err := db.Update(func(tx *Tx) error {
			return putBlobChunks(tx.bucket(bucketBlobs), id, 0, nil)
		}); err != nil {
			return fail(err)
		}
	}
	return s, nil
}

// ReadStaged returns a reader of the bytes of s, claimed or not, that holds
// no more than a chunk of them (1 MiB) in memory, for parsing a big mail
// without reading it whole. Each chunk is copied out in a read
// transaction of its own, so ingest goes on meanwhile.
func (db *DB) ReadStaged(s *Staged) io.Reader {
	return &blobReader{db: db, id: s.id}
}

// blobReader reads a blob chunk by chunk.
type blobReader struct {
	db    *DB
	id    uint64
	chunk uint32 // the next chunk to load
	buf   []byte // what is left of the loaded one
	err   error  // sticky: io.EOF at the end
}

func (r *blobReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 && r.err == nil {
		r.err = r.load()
	}
	if len(r.buf) == 0 {
		return 0, r.err
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// load copies the next chunk into buf; io.EOF past the last one.
func (r *blobReader) load() error {
	return r.db.View(func(tx *Tx) error {
		b := tx.bucket(bucketBlobs)
		k := blobKey(r.id, r.chunk)
		var v []byte
		if cb := b.Bucket(k); cb != nil {
			v = cb.Get(chunkValue)
		} else if v = b.Get(k); v == nil {
			if r.chunk == 0 {
				return fmt.Errorf("blob %d: %w", r.id, ErrNotFound)
			}
			return io.EOF
		}
		r.buf = append(r.buf[:0], v...)
		r.chunk++
		// The chunk's pages (a megabyte, one folio) are of no use once
		// copied; the rate-limited trim of View would let a fast reader
		// map tens of them first.
		r.db.trim.trim(r.db.bolt.Info().Data, uintptr(tx.tx.Size()))
		return nil
	})
}

// Unstage removes a staged blob that no transaction claimed. A claimed one
// is left alone, so it is safe to call whatever happened.
func (db *DB) Unstage(s *Staged) error {
	err := db.Update(func(tx *Tx) error {
		if tx.bucket(bucketStaged).Get(u64(s.id)) == nil {
			return nil
		}
		if err := tx.deleteBlob(s.id); err != nil {
			return err
		}
		return tx.bucket(bucketStaged).Delete(u64(s.id))
	})
	if err != nil {
		return fmt.Errorf("unstage blob %d: %w", s.id, err)
	}
	return nil
}

// claim takes a staged blob for the record being written in this
// transaction.
func (t *Tx) claim(s *Staged) error {
	if s == nil {
		return fmt.Errorf("claim: no staged blob")
	}
	st := t.bucket(bucketStaged)
	if st.Get(u64(s.id)) == nil {
		return fmt.Errorf("claim blob %d: not staged (claimed twice or removed): %w", s.id, ErrNotFound)
	}
	return st.Delete(u64(s.id))
}

// dropStaged removes every staged blob: at Open nothing can be waiting for
// one any more, so they are leftovers of a crash.
func dropStaged(b *bolt.DB) (int, error) {
	any := false
	_ = b.View(func(btx *bolt.Tx) error {
		if st := btx.Bucket(bucketStaged); st != nil {
			k, _ := st.Cursor().First()
			any = k != nil
		}
		return nil
	})
	if !any {
		return 0, nil
	}
	n := 0
	err := b.Update(func(btx *bolt.Tx) error {
		tx := &Tx{tx: btx}
		st := tx.bucket(bucketStaged)
		if st == nil {
			return nil
		}
		var ids []uint64
		if err := st.ForEach(func(k, _ []byte) error {
			ids = append(ids, binary.BigEndian.Uint64(k))
			return nil
		}); err != nil {
			return err
		}
		for _, id := range ids {
			if err := tx.deleteBlob(id); err != nil {
				return err
			}
			if err := st.Delete(u64(id)); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// StagedCount is the number of staged blobs no transaction has claimed
// yet: mail being written ahead, or leftovers a caller forgot to Unstage.
func (db *DB) StagedCount() (int, error) {
	n := 0
	err := db.View(func(tx *Tx) error {
		n = tx.bucket(bucketStaged).Stats().KeyN
		return nil
	})
	return n, err
}
