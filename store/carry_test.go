package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketCarryTest = []byte("carry_test")

// put returns a write of key=val in a bucket of the test's own.
func put(key, val string) func(*Tx) error {
	return func(tx *Tx) error {
		b, err := tx.tx.CreateBucketIfNotExists(bucketCarryTest)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), []byte(val))
	}
}

func get(t *testing.T, db *DB, key string) string {
	t.Helper()
	var v string
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketCarryTest); b != nil {
			v = string(b.Get([]byte(key)))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

// waitQueued waits until n riders are queued.
func waitQueued(t *testing.T, db *DB, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		db.carriers.mu.Lock()
		got := len(db.carriers.waiting)
		db.carriers.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d riders queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// rideAsync starts ride(fn) and returns its result channel.
func rideAsync(db *DB, fn func(*Tx) error) chan error {
	done := make(chan error, 1)
	go func() { done <- db.ride(fn) }()
	return done
}

func TestRideAloneWithoutCarrier(t *testing.T) {
	db := openTest(t)
	before := db.bolt.Stats()
	if err := db.ride(put("k", "v")); err != nil {
		t.Fatal(err)
	}
	if got := get(t, db, "k"); got != "v" {
		t.Fatalf("k = %q", got)
	}
	db.carriers.mu.Lock()
	queued := len(db.carriers.waiting)
	db.carriers.mu.Unlock()
	if queued != 0 {
		t.Fatalf("%d riders left queued", queued)
	}
	// Written at once, in a transaction of its own.
	after := db.bolt.Stats()
	if d := after.Sub(&before); d.TxStats.GetWrite() == 0 {
		t.Fatal("nothing written")
	}
}

// TestRideCarried: a rider queued while a carrier runs is committed by the
// next carrier, in its transaction (the carrier's fn sees the rider's
// write), and ride returns once that commits.
func TestRideCarried(t *testing.T) {
	db := openTest(t)
	release := make(chan struct{})
	first := make(chan error, 1)
	inFirst := make(chan struct{})
	go func() {
		first <- db.UpdateCarrying(func(tx *Tx) error {
			close(inFirst)
			<-release
			return put("first", "1")(tx)
		})
	}()
	<-inFirst
	ridden := rideAsync(db, put("rider", "r"))
	waitQueued(t, db, 1)
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ridden:
		t.Fatalf("rider finished (%v) before a carrier took it", err)
	default:
	}
	sawRider := false
	if err := db.UpdateCarrying(func(tx *Tx) error {
		b := tx.tx.Bucket(bucketCarryTest)
		sawRider = b != nil && string(b.Get([]byte("rider"))) == "r"
		return put("second", "2")(tx)
	}); err != nil {
		t.Fatal(err)
	}
	if err := <-ridden; err != nil {
		t.Fatal(err)
	}
	if !sawRider {
		t.Fatal("the carrier's transaction did not hold the rider's write")
	}
	if get(t, db, "rider") != "r" || get(t, db, "second") != "2" {
		t.Fatal("writes missing after the commit")
	}
}

// TestRiderOfFailedCarrierGoesAlone: a carrier that fails rolls its riders
// back with it; they are then committed on their own.
func TestRiderOfFailedCarrierGoesAlone(t *testing.T) {
	db := openTest(t)
	db.carriers.start() // a carrier is under way: riders queue
	ridden := rideAsync(db, put("rider", "r"))
	waitQueued(t, db, 1)
	db.carriers.end()
	boom := errors.New("carrier fails")
	err := db.UpdateCarrying(func(tx *Tx) error {
		if err := put("carrier", "c")(tx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("carrier: %v, want %v", err, boom)
	}
	if err := <-ridden; err != nil {
		t.Fatalf("rider: %v", err)
	}
	if get(t, db, "rider") != "r" {
		t.Fatal("rider's write lost with its carrier")
	}
	if get(t, db, "carrier") != "" {
		t.Fatal("failed carrier's write committed")
	}
}

// TestFailingRiderSparesCarrier: a rider that fails inside a carrier costs
// the carrier a rollback only: the carrier's fn runs once, in a
// transaction of its own, and commits; the rider gets its own error, with
// none of its writes kept.
func TestFailingRiderSparesCarrier(t *testing.T) {
	db := openTest(t)
	bad := errors.New("rider fails")
	for _, tc := range []struct {
		name  string
		rider func(*Tx) error
		want  func(t *testing.T, err error, panicked any)
	}{
		{"error", func(tx *Tx) error {
			if err := put("rider", "half")(tx); err != nil {
				return err
			}
			return bad
		}, func(t *testing.T, err error, panicked any) {
			if !errors.Is(err, bad) || panicked != nil {
				t.Fatalf("rider: %v, panic %v; want %v", err, panicked, bad)
			}
		}},
		{"panic", func(tx *Tx) error {
			if err := put("rider", "half")(tx); err != nil {
				return err
			}
			panic("rider bug")
		}, func(t *testing.T, err error, panicked any) {
			// Alone, the panic is the rider's, in the rider's goroutine.
			if panicked != "rider bug" {
				t.Fatalf("rider: %v, panic %v; want the rider's panic", err, panicked)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db.carriers.start()
			type outcome struct {
				err      error
				panicked any
			}
			ridden := make(chan outcome, 1)
			go func() {
				var o outcome
				defer func() {
					o.panicked = recover()
					ridden <- o
				}()
				o.err = db.ride(tc.rider)
			}()
			waitQueued(t, db, 1)
			db.carriers.end()
			runs := 0
			if err := db.UpdateCarrying(func(tx *Tx) error {
				runs++
				return put("carrier", tc.name)(tx)
			}); err != nil {
				t.Fatalf("carrier: %v", err)
			}
			if runs != 1 {
				t.Fatalf("carrier's fn ran %d times", runs)
			}
			if get(t, db, "carrier") != tc.name {
				t.Fatal("carrier's write lost")
			}
			o := <-ridden
			tc.want(t, o.err, o.panicked)
			if get(t, db, "rider") != "" {
				t.Fatal("failed rider's write kept")
			}
		})
	}
}

// TestCarrierPanicRidersGoAlone: a carrier's panic reaches its caller,
// and its riders are committed on their own.
func TestCarrierPanicRidersGoAlone(t *testing.T) {
	db := openTest(t)
	db.carriers.start()
	ridden := rideAsync(db, put("rider", "r"))
	waitQueued(t, db, 1)
	db.carriers.end()
	func() {
		defer func() {
			if p := recover(); p != "carrier bug" {
				t.Fatalf("recovered %v", p)
			}
		}()
		_ = db.UpdateCarrying(func(tx *Tx) error { panic("carrier bug") })
	}()
	if err := <-ridden; err != nil {
		t.Fatal(err)
	}
	if get(t, db, "rider") != "r" {
		t.Fatal("rider's write lost")
	}
	db.carriers.mu.Lock()
	running := db.carriers.running
	db.carriers.mu.Unlock()
	if running != 0 {
		t.Fatalf("running = %d after the panic", running)
	}
}

// TestRiderWithoutNextCarrier: a rider queued after the last carrier of a
// burst commits alone once its patience runs out.
func TestRiderWithoutNextCarrier(t *testing.T) {
	db := openTest(t)
	if err := db.UpdateCarrying(put("carrier", "c")); err != nil {
		t.Fatal(err)
	}
	// Just after a carrier: the rider waits for the next, which never comes.
	if err := db.ride(put("rider", "r")); err != nil {
		t.Fatal(err)
	}
	if get(t, db, "rider") != "r" {
		t.Fatal("rider's write lost")
	}
}

// TestCarryConcurrent: riders and carriers at once, under -race: every
// write is committed exactly once.
func TestCarryConcurrent(t *testing.T) {
	db := openTest(t)
	const riders, rides, carriers = 4, 50, 200
	var wg sync.WaitGroup
	for r := range riders {
		wg.Go(func() {
			for i := range rides {
				if err := db.ride(put(fmt.Sprintf("r%d-%d", r, i), "x")); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range carriers {
		if err := db.UpdateCarrying(put(fmt.Sprintf("c%d", i), "x")); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	n := 0
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCarryTest).ForEach(func(k, v []byte) error {
			n++
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if want := riders*rides + carriers; n != want {
		t.Fatalf("%d keys, want %d", n, want)
	}
}
