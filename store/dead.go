package store

// DeadOutbound returns an outbound mail that was given up on, with its bytes.
func (t *Tx) DeadOutbound(id uint64) (*Outbound, error) {
	return t.outbound(bucketDead, id)
}
