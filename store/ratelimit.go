package store

import (
	"errors"
	"fmt"
	"time"
)

// rateSlots divides a rate-limit window into this many slots. A hit is
// counted in its slot and forgotten once the whole slot has left the
// window, so Allow never lets more than max hits into any window; it may
// refuse for up to one slot (window/64) longer than an exact log would.
// The cost of a check is fixed, however large max is (an exact log of hits
// cost one JSON timestamp per hit on every check: 100,000 acknowledgements
// an hour meant rewriting 3 MB per mail).
const rateSlots = 64

// rateState is the recent hits of one rate-limit key: Counts[i] hits in
// slot Last-len(Counts)+1+i, slots being Width long since the Unix epoch.
// Hits is the schema-1 form (one timestamp per hit), read and converted.
type rateState struct {
	Width  time.Duration `json:"width,omitempty"`
	Last   int64         `json:"last,omitempty"`
	Counts []int         `json:"counts,omitempty"`
	Hits   []time.Time   `json:"hits,omitempty"`
}

// Allow is a sliding-window rate limit kept in the database, so it holds
// across restarts: it reports whether one more event for key fits max
// events per window at now, and if so records it.
func (t *Tx) Allow(key string, now time.Time, window time.Duration, max int) (bool, error) {
	b := t.bucket(bucketRateLimit)
	var st rateState
	if err := getJSON(b, []byte(key), &st); err != nil && !errors.Is(err, ErrNotFound) {
		return false, fmt.Errorf("rate limit %s: %w", key, err)
	}
	width := max64(int64(window)/rateSlots, 1)
	slot := now.UnixNano() / width
	counts := st.counts(time.Duration(width), slot)
	n := 0
	for _, c := range counts {
		n += c
	}
	ok := n < max
	if ok {
		counts[len(counts)-1]++
	}
	// Leading empty slots carry nothing.
	for len(counts) > 1 && counts[0] == 0 {
		counts = counts[1:]
	}
	st = rateState{Width: time.Duration(width), Last: slot, Counts: counts}
	if err := putJSON(b, []byte(key), st); err != nil {
		return false, fmt.Errorf("rate limit %s: %w", key, err)
	}
	return ok, nil
}

// counts returns the hits of the rateSlots+1 slots ending with slot (the
// current one), oldest first: the whole window plus the slot it overlaps.
func (st rateState) counts(width time.Duration, slot int64) []int {
	out := make([]int, rateSlots+1)
	first := slot - rateSlots
	add := func(s int64, n int) {
		switch {
		case s > slot:
			// A clock that went backwards: count it now rather than lose it.
			out[rateSlots] += n
		case s >= first:
			out[s-first] += n
		}
	}
	for _, h := range st.Hits {
		add(h.UnixNano()/int64(width), 1)
	}
	if len(st.Counts) > 0 {
		if st.Width != width {
			// The window changed (a new configuration): keep the hits, all
			// at the time of the newest, which never lets more through.
			total := 0
			for _, c := range st.Counts {
				total += c
			}
			add(st.Last*int64(st.Width)/int64(width), total)
		} else {
			base := st.Last - int64(len(st.Counts)) + 1
			for i, c := range st.Counts {
				add(base+int64(i), c)
			}
		}
	}
	return out
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
