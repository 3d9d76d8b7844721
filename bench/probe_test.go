package bench

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/helpdesk/helpdesk/outbox"
)

var probeDue, probeSend, probeRec atomic.Int64

type probeQueue struct{ storeQueue }

func (q probeQueue) Due(now time.Time, limit int) ([]outbox.Item, error) {
	t := time.Now()
	defer func() { probeDue.Add(int64(time.Since(t))) }()
	return q.storeQueue.Due(now, limit)
}
func (q probeQueue) SentBatch(s []outbox.Delivered) error {
	t := time.Now()
	defer func() { probeRec.Add(int64(time.Since(t))) }()
	return q.storeQueue.SentBatch(s)
}

type probeSender struct{ s outbox.Sender }

func (p probeSender) Send(ctx context.Context, from string, to []string, raw []byte) error {
	t := time.Now()
	defer func() { probeSend.Add(int64(time.Since(t))) }()
	return p.s.Send(ctx, from, to, raw)
}
