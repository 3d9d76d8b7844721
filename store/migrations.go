package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// currentSchema is the schema version this binary writes.
const currentSchema = 1

// migrations[i] brings a database from schema version i to i+1. Each runs in
// its own transaction together with the version bump, so an interrupted
// upgrade resumes where it stopped. Never edit a released step: add one.
var migrations = []func(tx *bolt.Tx) error{
	// 0 → 1: the initial layout.
	func(tx *bolt.Tx) error {
		for _, name := range [][]byte{
			bucketTickets, bucketMessages, bucketRaw, bucketMsgIDs,
			bucketByStatus, bucketByRequester, bucketCheckpoints, bucketPendingFlags,
			bucketOutbox, bucketDead, bucketRateLimit, bucketQuarantine,
		} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		if meta.Get(keySecret) == nil {
			secret, err := newSecret()
			if err != nil {
				return fmt.Errorf("generate token secret: %w", err)
			}
			if err := meta.Put(keySecret, secret); err != nil {
				return err
			}
		}
		return nil
	},
}

func schemaVersion(meta *bolt.Bucket) uint64 {
	v := meta.Get(keySchema)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func migrate(db *bolt.DB) error {
	for {
		done := false
		err := db.Update(func(tx *bolt.Tx) error {
			meta, err := tx.CreateBucketIfNotExists(bucketMeta)
			if err != nil {
				return err
			}
			v := schemaVersion(meta)
			if v >= uint64(len(migrations)) {
				done = true
				return nil
			}
			if err := migrations[v](tx); err != nil {
				return fmt.Errorf("migrate schema %d→%d: %w", v, v+1, err)
			}
			return meta.Put(keySchema, u64(v+1))
		})
		if err != nil || done {
			return err
		}
	}
}
