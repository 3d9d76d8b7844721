package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
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
		return nil, fmt.Errorf("stage %d bytes: %w", len(raw), err)
	}
	s := &Staged{id: id, size: len(raw)}
	for chunk, rest := uint32(0), raw; ; {
		part := rest[:min(len(rest), stageTxBytes)]
		err := db.Update(func(tx *Tx) error {
			return putBlobChunks(tx.bucket(bucketBlobs), id, chunk, part)
		})
		if err != nil {
			_ = db.Unstage(s)
			return nil, fmt.Errorf("stage %d bytes: %w", len(raw), err)
		}
		rest = rest[len(part):]
		chunk += uint32((len(part) + blobChunk - 1) / blobChunk)
		if len(rest) == 0 {
			break
		}
	}
	return s, nil
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
