package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// currentSchema is the schema version this binary writes.
const currentSchema = 5

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
	// 1 → 2: raw bytes move to blobs (append-only keys, big mails staged
	// ahead in chunks), Outbound and Quarantined keep theirs there too, and
	// the outbox gets an index by due time. Schema-1 records keep their
	// bytes where they are (the raw bucket, inline Raw fields) and are
	// read from there; only the index has to be built.
	func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketBlobs, bucketStaged, bucketOutboxDue} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		due := tx.Bucket(bucketOutboxDue)
		return tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			var o Outbound
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("outbox %x: %w", k, err)
			}
			return due.Put(dueKey(o.NextAttempt, o.ID), nil)
		})
	},
	// 2 → 3: holds, the addresses automatic mail is not sent to for a
	// while (a permanent bounce, a tripped circuit breaker).
	func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketHolds); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketHolds, err)
		}
		return nil
	},
	// 3 → 4: deliveries, the delivery state the outbox worker records
	// without rewriting the whole message.
	func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketDeliveries); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketDeliveries, err)
		}
		return nil
	},
	// 4 → 5: message records may be binary (records.go). Nothing is
	// rewritten; the version keeps a schema-4 binary from opening a file
	// it could not read.
	func(tx *bolt.Tx) error { return nil },
}

func schemaVersion(meta *bolt.Bucket) uint64 {
	v := meta.Get(keySchema)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func migrate(db *bolt.DB) error {
	// Most opens find the schema current: a read transaction says so
	// without the commit (and fsync) of a write.
	current := false
	_ = db.View(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			current = schemaVersion(meta) >= uint64(len(migrations))
		}
		return nil
	})
	if current {
		return nil
	}
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
