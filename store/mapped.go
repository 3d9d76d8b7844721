package store

import (
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bbolt reads the file through a shared memory map. Linux maps page cache
// in large folios (up to megabytes), so each B+tree page bbolt reads maps
// the mail bytes around it into the daemon as well: after ingesting a few
// hundred MB its resident set held most of the file, although nothing but
// the page cache backed it. Every dropInterval at most, after a write,
// trimMapped tells the kernel the daemon needs none of those pages
// (MADV_DONTNEED on a read-only shared file mapping only unmaps them; the
// data stays in the page cache and the next read maps it again).
const dropInterval = 0

// trimmer remembers when the map was last trimmed.
type trimmer struct {
	last atomic.Int64 // unix nanoseconds
}

// maybeTrim trims the map of b if dropInterval has passed since the last
// time.
func (t *trimmer) maybeTrim(b *bolt.DB) {
	now := time.Now().UnixNano()
	last := t.last.Load()
	if now-last < int64(dropInterval) || !t.last.CompareAndSwap(last, now) {
		return
	}
	// In a read transaction bbolt cannot remap (it waits for readers), so
	// the map stays where Info says for as long as madvise needs it.
	_ = b.View(func(tx *bolt.Tx) error {
		trimMap(b.Info().Data, uintptr(tx.Size()))
		return nil
	})
}

// ReleaseMapped lets go of the pages of the file this transaction has read
// so far (they stay in the page cache): a transaction that touches much of
// the file, such as a group of mails each updating index leaves all over
// it, calls it now and then, so that the pages it maps (64 KB around every
// page read, with the kernel's fault-around) do not add up. Only for
// read-write transactions, in which nothing remaps the file.
func (t *Tx) ReleaseMapped() {
	if !t.tx.Writable() {
		return
	}
	trimMap(t.tx.DB().Info().Data, uintptr(t.tx.Size()))
}
