package inbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/helpdesk/helpdesk/inbox"
	"github.com/helpdesk/helpdesk/internal/mailtest"
)

// spooled is a message a spoolingStore keeps out of Delivery.Raw.
type spooled struct {
	data []byte
	id   int
}

func (s *spooled) Size() int { return len(s.data) }

// spoolingStore is a batchStore (or, with perMessage, a plain Handler)
// that is also a Spooler, and remembers what it spooled and discarded.
type spoolingStore struct {
	*batchStore
	mu        sync.Mutex
	spools    []*spooled
	discarded map[int]int // spool id → Discard calls
}

func (s *spoolingStore) Spool(r io.Reader) (inbox.Spooled, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := &spooled{data: data, id: len(s.spools)}
	s.spools = append(s.spools, sp)
	return sp, nil
}

func (s *spoolingStore) Discard(sp inbox.Spooled) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.discarded[sp.(*spooled).id]++
}

// bigMail is a message of about n bytes with Message-ID <big-tag@test>.
func bigMail(tag string, n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: customer@example.com\r\nTo: support@example.com\r\nSubject: big\r\n"+
		"Message-ID: <big-%s@test>\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\n", tag)
	line := bytes.Repeat([]byte("0123456789abcdef"), 4)
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%08d %s\r\n", i, line)
	}
	return b.Bytes()
}

// TestBigMailIsSpooledNotRead: a message of SpoolSize or more reaches the
// handler as Spooled (Raw nil) with every byte the server has, smaller ones
// as Raw; a spooled message whose handling failed is discarded and spooled
// afresh when it comes again; every spool is discarded exactly once. Both
// the pipelined path (BatchHandler) and the per-message one.
func TestBigMailIsSpooledNotRead(t *testing.T) {
	for _, batch := range []bool{true, false} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) {
			t.Parallel()
			d := mailtest.StartDovecot(t, map[string]string{"support": password})
			big := bigMail("1", inbox.SpoolSize+12345)
			uids := []uint32{
				uint32(d.Append(t, "support", "INBOX", testMail(1))),
				uint32(d.Append(t, "support", "INBOX", big)),
				uint32(d.Append(t, "support", "INBOX", testMail(3))),
			}
			st := &spoolingStore{batchStore: newBatchStore(), discarded: map[int]int{}}
			failed := false
			st.setBefore(func(ctx context.Context, dl inbox.Delivery) (inbox.Disposition, error) {
				if dl.UID == uids[1] && !failed {
					failed = true
					return inbox.Disposition{}, errors.New("database busy")
				}
				return inbox.Disposition{}, nil
			})
			var h inbox.Handler = st
			if !batch {
				h = struct {
					inbox.Handler
					inbox.Spooler
				}{st, st}
			}
			mb := inbox.New(config(d, "support"), h, st, testLogger(t))
			r := run(t, mb)
			eventually(t, 20*time.Second, "3 mails flagged", func() bool { return mb.Stats().Flagged == 3 })
			r.stop()
			if s := mb.Stats(); s.Spooled != 2 || s.Fetched < 4 {
				t.Errorf("stats %+v: want 2 spooled (the big mail twice) of at least 4 fetched", s)
			}

			cs := st.commits()
			if got := commitUIDs(cs); !slices.Equal(got, uids) {
				t.Fatalf("committed UIDs %v, want %v", got, uids)
			}
			for i, c := range cs {
				sp, _ := c.Spooled.(*spooled)
				switch {
				case i == 1 && (sp == nil || c.Raw != nil):
					t.Errorf("big mail: Raw %d bytes, Spooled %v; want spooled only", len(c.Raw), c.Spooled)
				case i == 1 && !bytes.Equal(sp.data, big):
					t.Errorf("big mail: spooled %d bytes, want the %d appended", len(sp.data), len(big))
				case i == 1 && c.Size() != len(big):
					t.Errorf("big mail: Size %d, want %d", c.Size(), len(big))
				case i != 1 && (c.Spooled != nil || c.Raw == nil):
					t.Errorf("small mail %d spooled", i)
				}
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			if len(st.spools) != 2 {
				t.Errorf("%d spools, want 2 (the failed attempt and the committed one)", len(st.spools))
			}
			for _, sp := range st.spools {
				if n := st.discarded[sp.id]; n != 1 {
					t.Errorf("spool %d discarded %d times, want once", sp.id, n)
				}
			}
		})
	}
}
