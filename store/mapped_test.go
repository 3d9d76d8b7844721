package store

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The map is trimmed once the file-backed resident set has grown by
// mapBudget since the last trim, and not before; what stays resident after
// a trim is the new floor.
func TestTrimmerTrimsOnBudget(t *testing.T) {
	path := filepath.Join(t.TempDir(), "statm")
	page := int64(os.Getpagesize())
	set := func(resident int64) {
		t.Helper()
		if err := os.WriteFile(path, fmt.Appendf(nil, "9999 5000 %d 10 0 300 0\n", resident/page), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	set(20 << 20)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := &trimmer{statm: f}
	tr.trim(0, 0) // a trim with nothing mapped: the floor is 20 MB
	for _, tc := range []struct {
		resident int64
		due      bool
	}{
		{20 << 20, false},
		{20<<20 + mapBudget - page, false},
		{20<<20 + mapBudget, true},
		{18 << 20, false}, // something else let go: a lower floor
		{18<<20 + mapBudget, true},
	} {
		set(tc.resident)
		if got := tr.due(); got != tc.due {
			t.Errorf("resident %d (floor %d): due %v, want %v", tc.resident, tr.floor, got, tc.due)
		}
	}
	tr.trim(0, 0)
	if tr.floor != 18<<20+mapBudget {
		t.Errorf("floor after trim %d, want what statm says", tr.floor)
	}
	if (*trimmer)(nil).due() {
		t.Error("a nil trimmer (a transaction of Open's) asks for a trim")
	}
}
