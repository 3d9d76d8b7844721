package inbox

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestAppendWriterReadFrom(t *testing.T) {
	mail := bytes.Repeat([]byte("Subject: hello\r\n\r\nbody line\r\n"), 700) // 20 KB
	readers := map[string]func() io.Reader{
		"whole":      func() io.Reader { return struct{ io.Reader }{bytes.NewReader(mail)} },
		"one byte":   func() io.Reader { return iotest.OneByteReader(bytes.NewReader(mail)) },
		"half":       func() io.Reader { return iotest.HalfReader(bytes.NewReader(mail)) },
		"data + EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(mail)) },
	}
	// The literal's size as announced, less (a lying or absent size), and
	// none at all.
	for _, prealloc := range []int{len(mail), len(mail) / 3, 0} {
		for name, r := range readers {
			w := &appendWriter{buf: make([]byte, 0, prealloc)}
			n, err := io.Copy(w, r())
			if err != nil || n != int64(len(mail)) || !bytes.Equal(w.buf, mail) {
				t.Errorf("%s, room %d: n %d err %v, equal %v", name, prealloc, n, err, bytes.Equal(w.buf, mail))
			}
			if prealloc == len(mail) && cap(w.buf) != len(mail) {
				t.Errorf("%s: the exact buffer grew to %d for its EOF", name, cap(w.buf))
			}
		}
	}
}

func TestAppendWriterReadFromError(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(bytes.NewReader([]byte("partial")), iotest.ErrReader(boom))
	w := &appendWriter{buf: make([]byte, 0, 100)}
	n, err := io.Copy(w, r)
	if !errors.Is(err, boom) || n != 7 || string(w.buf) != "partial" {
		t.Fatalf("got n %d err %v buf %q, want 7, %v, \"partial\"", n, err, w.buf, boom)
	}
}

// The point of ReadFrom: a literal of the announced size is read with no
// allocation beyond its own buffer.
func TestAppendWriterReadFromAllocs(t *testing.T) {
	mail := bytes.Repeat([]byte("x"), 26<<10)
	r := bytes.NewReader(mail)
	var onlyRead io.Reader = struct{ io.Reader }{r} // as the IMAP client's literal: no WriterTo
	w := &appendWriter{buf: make([]byte, 0, len(mail))}
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(mail)
		w.buf = w.buf[:0]
		if _, err := io.Copy(w, onlyRead); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per copy, want 0", allocs)
	}
}
