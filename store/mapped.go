package store

import (
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bbolt reads the file through a shared memory map, and Linux maps page
// cache in large folios: a 4 KB B+tree page read can map the whole folio
// around it, up to a megabyte of mail bytes written by the same pwrite
// (measured on 6.18 with ext4: one byte read per MB of a file written in
// 1 MB writes mapped all of it; madvise(MADV_RANDOM), which bbolt sets,
// changes nothing). After ingesting a few hundred MB the daemon's resident
// set held most of the file, although nothing but the page cache backed
// it. So transactions let go of what they mapped when they end, at most
// every trimEvery (MADV_DONTNEED on a read-only shared file mapping only
// unmaps; the data stays in the page cache and the next read maps it
// again), and a long write transaction also now and then
// (Tx.ReleaseMapped).

// trimEvery is the least time between two trims after transactions: each
// trim also unmaps the pages every transaction reads (the roots and
// branches of the indexes), which the next one faults in again, a folio at
// a time; trimming after every transaction cost a tenth of the ingest rate.
const trimEvery = 25 * time.Millisecond

// trimmer rate-limits the trims after transactions.
type trimmer struct {
	last atomic.Int64 // unix nanoseconds of the last trim
}

// due reports whether a trim is due now, and if so takes it.
func (t *trimmer) due() bool {
	now := time.Now().UnixNano()
	last := t.last.Load()
	return now-last >= int64(trimEvery) && t.last.CompareAndSwap(last, now)
}

// trimAfterWrite unmaps what write transactions and their commits mapped,
// when a trim is due.
func (t *trimmer) trimAfterWrite(b *bolt.DB) {
	if !t.due() {
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
// it, calls it now and then, so that the pages it maps do not add up. Only
// for read-write transactions, in which nothing remaps the file.
func (t *Tx) ReleaseMapped() {
	if !t.tx.Writable() {
		return
	}
	trimMap(t.tx.DB().Info().Data, uintptr(t.tx.Size()))
}
