//go:build !linux

package store

// trimMap does nothing where large folios do not inflate the map.
func trimMap(addr, size uintptr) {}
