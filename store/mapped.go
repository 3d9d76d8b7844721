package store

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bbolt reads the file through a shared memory map, and every page it reads
// maps more than itself: the kernel's fault-around maps the 64 KB around a
// fault, and a page in a large folio (a blob chunk written by one 1 MB
// pwrite) maps the whole folio (measured on 6.18 with ext4: one byte read
// per MB of a file written in 1 MB writes mapped all of it; madvise
// MADV_RANDOM, which bbolt sets, changes neither). A mail's transaction
// reads a dozen index leaves all over the file, so ingest maps about half
// a megabyte a mail, and after a few hundred MB the daemon's resident set
// held most of the file, although nothing but the page cache backed it.
//
// So the daemon lets go of the map (MADV_DONTNEED on a read-only shared
// file mapping only unmaps; the data stays in the page cache and the next
// read maps it again) whenever its file-backed resident set has grown by
// mapBudget since the last time. Not more often: each trim also unmaps the
// pages every transaction reads (the roots and branches of the indexes),
// which the next one faults in again; trimming after every transaction
// cost a tenth of the ingest rate. Where /proc/self/statm cannot be read,
// it trims at most every trimEvery instead.
const (
	mapBudget = 6 << 20
	trimEvery = 25 * time.Millisecond
)

// trimmer decides when to trim the map. Its methods are safe for
// concurrent use.
type trimmer struct {
	mu    sync.Mutex
	statm *os.File // /proc/self/statm; nil: time-based
	floor int64    // file-backed resident bytes after the last trim
	last  time.Time
}

func newTrimmer() *trimmer {
	t := &trimmer{}
	if f, err := os.Open("/proc/self/statm"); err == nil {
		t.statm = f
		if n, ok := t.fileResident(); ok {
			t.floor = n
		} else {
			f.Close()
			t.statm = nil
		}
	}
	return t
}

// fileResident reads the process's file-backed resident bytes (statm's
// third field, "shared": file pages and shared memory).
func (t *trimmer) fileResident() (int64, bool) {
	var buf [128]byte
	n, err := t.statm.ReadAt(buf[:], 0)
	if n == 0 && err != nil {
		return 0, false
	}
	fields := bytes.Fields(buf[:n])
	if len(fields) < 3 {
		return 0, false
	}
	pages, err := strconv.ParseInt(string(fields[2]), 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * int64(os.Getpagesize()), true
}

// due reports whether the map has grown enough to be trimmed.
func (t *trimmer) due() bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.statm == nil {
		return time.Since(t.last) >= trimEvery
	}
	n, ok := t.fileResident()
	if ok && n < t.floor {
		t.floor = n
	}
	return !ok || n >= t.floor+mapBudget
}

// trim unmaps the map at addr (size bytes) and takes what stays resident
// (the binary's own pages, other files) as the new floor. The caller must
// hold a transaction, so that bbolt cannot remap meanwhile.
func (t *trimmer) trim(addr, size uintptr) {
	trimMap(addr, size)
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last = time.Now()
	if t.statm != nil {
		if n, ok := t.fileResident(); ok {
			t.floor = n
		}
	}
}

// maybeTrim trims the map at addr if it is due; the caller holds a
// transaction.
func (t *trimmer) maybeTrim(addr, size uintptr) {
	if t.due() {
		t.trim(addr, size)
	}
}

// close releases the statm file.
func (t *trimmer) close() {
	if t != nil && t.statm != nil {
		t.statm.Close()
	}
}

// trimAfterWrite trims the map after a write transaction, if due; only
// then does it open the read transaction that pins the map for madvise.
func (t *trimmer) trimAfterWrite(b *bolt.DB) {
	if !t.due() {
		return
	}
	// In a read transaction bbolt cannot remap (it waits for readers), so
	// the map stays where Info says for as long as madvise needs it.
	_ = b.View(func(tx *bolt.Tx) error {
		t.trim(b.Info().Data, uintptr(tx.Size()))
		return nil
	})
}

// ReleaseMapped lets go of the pages of the file this transaction has read
// so far, if due: a transaction that touches much of the file, such as a
// group of mails each updating index leaves all over it, calls it now and
// then, so that the pages it maps do not add up. Only for read-write
// transactions, in which nothing remaps the file.
func (t *Tx) ReleaseMapped() {
	if !t.tx.Writable() {
		return
	}
	t.trim.maybeTrim(t.tx.DB().Info().Data, uintptr(t.tx.Size()))
}
