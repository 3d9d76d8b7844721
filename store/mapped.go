package store

import (
	bolt "go.etcd.io/bbolt"
)

// bbolt reads the file through a shared memory map, and Linux maps page
// cache in large folios: a 4 KB B+tree page read can map the whole folio
// around it, up to a megabyte of mail bytes written by the same pwrite
// (measured on 6.18 with ext4: one byte read per MB of a file written in
// 1 MB writes mapped all of it; madvise(MADV_RANDOM), which bbolt sets,
// changes nothing). After ingesting a few hundred MB the daemon's resident
// set held most of the file, although nothing but the page cache backed
// it. So every transaction lets go of what it mapped before it ends
// (MADV_DONTNEED on a read-only shared file mapping only unmaps; the data
// stays in the page cache and the next read maps it again), and a long
// write transaction also now and then (Tx.ReleaseMapped).

// trimAfterWrite unmaps what a write transaction and its commit mapped.
func trimAfterWrite(b *bolt.DB) {
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
