package ticket

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/helpdesk/helpdesk/store"
	"github.com/helpdesk/helpdesk/threading"
)

// Group commit. HandleBatch takes the mails the inbox read while the last
// group was being committed. It parses and classifies them on every CPU at
// once, then applies them in order in one transaction, each mail exactly as
// Handle would apply it alone (apply is shared), so the rules cannot tell
// the difference: a mail sees every mail before it, and a follow-up finds
// the ticket its original opened a moment earlier in the same transaction.
// One commit (and one fsync) then serves the whole group.
//
// Each mail is still all or nothing. When one fails inside the group's
// transaction (a database error, a panic), the transaction rolls back, the
// mails before it are committed again without it, and it goes through the
// path of a mail alone, which quarantines a panic or reports the error.
// Mail that needs a transaction of its own anyway (quarantined, too large,
// big enough to be staged, panicking in the parser) takes that path too.

const (
	// maxGroupMails and maxGroupBytes bound one group transaction.
	maxGroupMails = 512
	maxGroupBytes = 8 << 20
	// releaseEvery is how many mails of a group are applied between two
	// Tx.ReleaseMapped: each mail reads index leaves all over the file, and
	// each leaf read maps 64 KB or more of it (store/mapped.go). The store
	// only trims once the map has grown by its budget, so asking often
	// costs a read of /proc/self/statm.
	releaseEvery = 4
)

// Prepare parses and classifies a mail outside any transaction, for
// HandleBatch to find in Inbound.Prepared: the inbox calls it as soon as a
// mail is read, on every CPU, while earlier mail is being committed. It is
// safe for concurrent use and never panics (a panic is kept for
// HandleBatch, which quarantines the mail).
func (e *Engine) Prepare(in Inbound) any {
	p := e.prepareSafe(in)
	return &p
}

// HandleBatch stores ins, in order, in as few transactions as it can, with
// the outcome Handle would give each. It returns the results of the leading
// mails that are committed; when that is fewer than len(ins), err says why
// the next one was not (temporary: the caller hands it over again, with
// the ones after it).
func (e *Engine) HandleBatch(ctx context.Context, ins []Inbound) ([]Result, error) {
	preps := e.prepareAll(ins)
	results := make([]Result, 0, len(ins))
	for i := 0; i < len(ins); {
		if _, ok := e.mailboxes[ins[i].Mailbox]; !ok {
			return results, fmt.Errorf("handle %s uid %d: unknown mailbox", ins[i].Mailbox, ins[i].UID)
		}
		if !e.groupable(ins[i], preps[i]) {
			res, err := e.handleOne(ins[i], preps[i])
			if err != nil {
				return results, err
			}
			results = append(results, res)
			i++
			continue
		}
		j, size := i+1, len(ins[i].Raw)
		for j < len(ins) && j-i < maxGroupMails && size+len(ins[j].Raw) <= maxGroupBytes && e.groupable(ins[j], preps[j]) {
			size += len(ins[j].Raw)
			j++
		}
		rs, n, err := e.commitGroup(ins[i:j], preps[i:j])
		results = append(results, rs...)
		if err != nil {
			return results, err
		}
		i += n
	}
	return results, nil
}

// groupable reports whether a prepared mail can share a transaction.
func (e *Engine) groupable(in Inbound, p prepared) bool {
	_, known := e.mailboxes[in.Mailbox]
	return known && p.panic == nil && p.err == nil && !p.oversized && p.unfit == "" && in.Staged == nil && !store.NeedsStaging(len(in.Raw))
}

// prepareSafe is prepare with a panic kept in the result, for handleOne
// to quarantine the mail.
func (e *Engine) prepareSafe(in Inbound) (p prepared) {
	defer func() {
		if r := recover(); r != nil {
			p = prepared{panic: &panicError{value: r, stack: debug.Stack()}}
		}
	}()
	return e.prepare(in)
}

// prepareAll returns every mail's preparation: the one Prepare made, or a
// new one, made on as many goroutines as there are CPUs.
func (e *Engine) prepareAll(ins []Inbound) []prepared {
	preps := make([]prepared, len(ins))
	var todo []int
	for i, in := range ins {
		if p, ok := in.Prepared.(*prepared); ok && p != nil {
			preps[i] = *p
		} else {
			todo = append(todo, i)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(todo))
	if workers <= 1 {
		for _, i := range todo {
			preps[i] = e.prepareSafe(ins[i])
		}
		return preps
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for k := int(next.Add(1) - 1); k < len(todo); k = int(next.Add(1) - 1) {
				preps[todo[k]] = e.prepareSafe(ins[todo[k]])
			}
		})
	}
	wg.Wait()
	return preps
}

// commitGroup applies ins in one transaction. n is how many leading mails
// are committed, whether in that transaction or, after a failure inside
// it, in the ones that replace it; err says why mail n was not.
func (e *Engine) commitGroup(ins []Inbound, preps []prepared) (results []Result, n int, err error) {
	var steps []*step
	cur := 0 // the mail being applied, when the transaction fails
	txErr := func() (err error) {
		// A panic outside dispatch's own recovery (it would escape Update
		// after bbolt's rollback) is the current mail's failure.
		defer func() {
			if p := recover(); p != nil {
				err = &panicError{value: p, stack: debug.Stack()}
			}
		}()
		return e.db.Update(func(tx *store.Tx) error {
			steps = steps[:0]
			for cur = range ins {
				s, err := e.apply(tx, ins[cur], preps[cur], nil)
				if err != nil {
					return err
				}
				steps = append(steps, s)
				if cur%releaseEvery == releaseEvery-1 {
					tx.ReleaseMapped()
				}
			}
			cur = len(ins)
			return nil
		})
	}()
	if txErr == nil {
		for _, s := range steps {
			e.committed(s)
			results = append(results, s.res)
		}
		return results, len(ins), nil
	}
	if cur >= len(ins) {
		// Every mail applied; the commit itself failed.
		return nil, 0, fmt.Errorf("store %s uids %d-%d: %w", ins[0].Mailbox, ins[0].UID, ins[len(ins)-1].UID, txErr)
	}
	if cur > 0 {
		if results, n, err = e.commitGroup(ins[:cur], preps[:cur]); err != nil {
			return results, n, err
		}
	}
	res, err := e.handleOne(ins[cur], preps[cur])
	if err != nil {
		return results, cur, err
	}
	return append(results, res), cur + 1, nil
}

// handleOne handles a prepared mail alone, as Handle does.
func (e *Engine) handleOne(in Inbound, p prepared) (res Result, err error) {
	defer e.recoverPanic(in, &res, &err)
	if p.panic != nil {
		return e.quarantinePanic(in, p.panic)
	}
	if p.err != nil {
		return Result{}, fmt.Errorf("store %s uid %d: %w", in.Mailbox, in.UID, p.err)
	}
	return e.handlePrepared(in, p)
}

// handlePrepared is Handle after prepare: the mail in a transaction of its
// own (its bytes staged ahead when big).
func (e *Engine) handlePrepared(in Inbound, p prepared) (Result, error) {
	switch {
	case p.oversized:
		return e.quarantineOversized(in, p)
	case p.unfit != "":
		return e.quarantine(in, p.msg, p.unfit)
	}
	staged, err := e.stage(in)
	if err != nil {
		return Result{}, fmt.Errorf("store %s uid %d: %w", in.Mailbox, in.UID, err)
	}
	defer e.unstage(staged)
	var s *step
	err = e.db.Update(func(tx *store.Tx) error {
		var err error
		s, err = e.apply(tx, in, p, staged)
		return err
	})
	if res, ok, err := e.panicked(in, err); ok {
		return res, err
	}
	if err != nil {
		var res Result
		if s != nil {
			res = s.res
		}
		return res, fmt.Errorf("store %s uid %d: %w", in.Mailbox, in.UID, err)
	}
	e.committed(s)
	return s.res, nil
}

// apply is one mail's part of a transaction: checkpoint, pending flag,
// dedupe, then the rules (dispatch). The returned step holds what to log
// after the commit.
func (e *Engine) apply(tx *store.Tx, in Inbound, p prepared, staged *store.Staged) (*step, error) {
	mb := e.mailboxes[in.Mailbox]
	s := &step{e: e, tx: tx, via: mb, mb: mb, in: in, msg: p.msg, verdict: p.verdict, report: p.report, now: e.now(), staged: staged}
	if err := tx.AdvanceCheckpoint(in.Mailbox, in.UIDValidity, in.UID); err != nil {
		return s, err
	}
	key := p.msg.DedupeKey()
	if tx.KnownKey(key) {
		s.res.Rule = threading.RuleDuplicate
		s.res.TicketID, _ = tx.TicketByMessageID(key)
		s.res.Quarantined = tx.IsQuarantined(key)
	} else if err := s.dispatch(key); err != nil {
		return s, err
	}
	return s, tx.AddPendingFlag(in.Mailbox, in.UIDValidity, in.UID, s.res.Quarantined)
}

// committed logs what a committed step leaves for the operator (once, so
// a transaction run again logs nothing twice) and wakes the outbox.
func (e *Engine) committed(s *step) {
	if s.res.Suspect != "" {
		e.log.Warn("suspected spoof of an agent address: stored as customer mail",
			"mailbox", s.in.Mailbox, "uid", s.in.UID, "from", s.msg.From.Addr, "ticket", s.res.TicketID, "reason", s.res.Suspect)
	}
	e.logCommitted(s)
}

// stage writes a big mail's bytes ahead of its transaction (nil for any
// other), so that the transaction never holds a second copy of them; a
// spooled mail is staged already.
func (e *Engine) stage(in Inbound) (*store.Staged, error) {
	if in.Staged != nil {
		return in.Staged, nil
	}
	if !store.NeedsStaging(len(in.Raw)) {
		return nil, nil
	}
	return e.db.Stage(in.Raw)
}

// unstage removes staged bytes no transaction claimed (a duplicate, a
// failure); claimed ones stay.
func (e *Engine) unstage(s *store.Staged) {
	if s == nil {
		return
	}
	if err := e.db.Unstage(s); err != nil {
		// Harmless but for the space: the next start removes it.
		e.log.Warn("staged mail not removed", "err", err)
	}
}
