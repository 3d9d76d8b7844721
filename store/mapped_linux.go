package store

import "syscall"

// trimMap unmaps the pages of [addr, addr+size) of bbolt's read-only file
// map; their contents stay in the page cache.
func trimMap(addr, size uintptr) {
	if addr == 0 || size == 0 {
		return
	}
	// The raw system call takes the map's address as bbolt reports it, an
	// integer; no Go pointer is made of it.
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, addr, size, syscall.MADV_DONTNEED)
}
