package store

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckFollowsMergedInto(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "hd.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	setMerged := func(id, into uint64) {
		t.Helper()
		err := db.Update(func(tx *Tx) error {
			tk, err := tx.Ticket(id)
			if err != nil {
				return err
			}
			tk.MergedInto = into
			return tx.UpdateTicket(tk)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	db.Update(func(tx *Tx) error {
		for range 3 {
			newTicket(t, tx, "ann@example.org", StatusNew)
		}
		return nil
	})
	setMerged(1, 2)
	setMerged(2, 3)
	if err := db.Check(); err != nil {
		t.Fatalf("chain 1→2→3: %v", err)
	}
	for _, c := range []struct {
		id, into uint64
		want     string
	}{
		{3, 3, "merged into itself"},
		{3, 1, "cycle"},
		{3, 99, "merged into missing ticket 99"},
	} {
		setMerged(c.id, c.into)
		if err := db.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ticket %d merged into %d: Check = %v, want %q", c.id, c.into, err, c.want)
		}
	}
	setMerged(3, 0)
	if err := db.Check(); err != nil {
		t.Fatalf("after undoing: %v", err)
	}
}
