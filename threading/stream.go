package threading

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"slices"

	"golang.org/x/text/transform"
)

// streamBufSize is ParseReader's look-ahead. Header lines longer than this
// are read piecewise, so it bounds nothing but the speed of odd mail.
const streamBufSize = 64 << 10

// ParseReader is Parse for a message read from r: for every input it returns
// the same Message (RawSHA256 and Size included) or the same error as
// Parse(all bytes of r, lim), but its memory is bounded by lim (the header
// and text budgets and a few fixed buffers), not by the size of the message,
// so a mail with a 45 MB attachment is never held.
//
// ParseReader always reads r to EOF, even when parsing stops early, because
// RawSHA256 and Size cover every byte. If r fails, the error returned wraps
// r's error (and not ErrUnparseable): the mail should be read again.
func ParseReader(r io.Reader, lim Limits) (*Message, error) {
	return parseReader(r, lim, streamBufSize)
}

// parseReader is ParseReader with the look-ahead as a parameter, so tests
// can push every header line through the piecewise paths.
func parseReader(r io.Reader, lim Limits, bufSize int) (msg *Message, err error) {
	hr := &hashReader{r: r, h: sha256.New()}
	defer func() {
		// As in Parse; the input is still read to its end.
		if rec := recover(); rec != nil {
			msg = nil
			err = fmt.Errorf("%w: %w: %v", ErrUnparseable, errParserPanic, rec)
			if rerr := hr.drainSafely(); rerr != nil {
				err = fmt.Errorf("threading: read message: %w", rerr)
			}
		}
	}()
	p := &parser{lim: lim.withDefaults(), msg: &Message{}}
	a := bufio.NewReaderSize(hr, max(bufSize, lineEndWindow))
	msg, err = p.readStream(a, bufSize)
	if rerr := drain(a, hr); rerr != nil {
		// Whatever was parsed came from a truncated message.
		return nil, fmt.Errorf("threading: read message: %w", rerr)
	}
	if err != nil {
		return nil, err
	}
	msg.RawSHA256 = hex.EncodeToString(hr.h.Sum(nil))
	msg.Size = int(hr.n)
	return msg, nil
}

// readStream is Parse's body for a stream: the same QUIRK preprocessing,
// done by peeking at the first bytes and transforming the rest on the fly.
// a reads the raw message with at least lineEndWindow bytes of look-ahead.
func (p *parser) readStream(a *bufio.Reader, bufSize int) (*Message, error) {
	if b, _ := a.Peek(len(utf8BOM)); string(b) == utf8BOM {
		// QUIRK: see Parse.
		_, _ = a.Discard(len(utf8BOM))
		p.warnf("byte order mark before the header")
	}
	blank, more := skipLineEnds(a)
	if !more {
		// Nothing, or nothing but line ends: Parse finds no field either.
		return nil, errNoHeader
	}
	if blank {
		// QUIRK: see Parse.
		p.warnf("blank lines before the header")
	}
	head, _ := a.Peek(lineEndWindow)
	var src io.Reader = a
	switch p.lineEnds(head) {
	case lineEndsCR:
		src = transform.NewReader(a, lineEndFix{mode: lineEndsCR})
	case lineEndsCRCRLF:
		src = transform.NewReader(a, lineEndFix{mode: lineEndsCRCRLF})
	}
	br := a
	if src != io.Reader(a) || a.Size() != bufSize {
		// The anonymous struct keeps NewReaderSize from handing back a
		// itself, whose size may differ.
		br = bufio.NewReaderSize(struct{ io.Reader }{src}, bufSize)
	}
	s := &streamScan{hdrScan: hdrScan{p: p, first: true}, br: br}
	return s.run()
}

// skipLineEnds discards the CR and LF bytes at the start of a. blank reports
// whether there were any, more whether anything else follows.
func skipLineEnds(a *bufio.Reader) (blank, more bool) {
	for {
		buf := buffered(a)
		if buf == nil {
			return blank, false
		}
		i := 0
		for i < len(buf) && (buf[i] == '\r' || buf[i] == '\n') {
			i++
		}
		_, _ = a.Discard(i)
		blank = blank || i > 0
		if i < len(buf) {
			return blank, true
		}
	}
}

// buffered returns the bytes buffered in br, reading when there are none;
// nil at the end of the input or on a read error (the caller of
// ParseReader gets the error from hashReader).
func buffered(br *bufio.Reader) []byte {
	if br.Buffered() == 0 {
		if _, err := br.Peek(1); err != nil {
			return nil
		}
	}
	b, _ := br.Peek(br.Buffered())
	return b
}

// skipLine discards the rest of the current line, its LF included.
func skipLine(br *bufio.Reader) {
	for {
		if _, err := br.ReadSlice('\n'); !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// streamScan splits the top-level header off a stream. Lines that fit in
// the look-ahead are handled exactly as Parse does; longer ones are read
// piecewise, keeping at most what MaxHeaderBytes could keep.
type streamScan struct {
	hdrScan
	br   *bufio.Reader
	long []byte // the start of a line longer than the look-ahead
}

// run reads header lines until the body starts, then walks the body.
func (s *streamScan) run() (*Message, error) {
	br := s.br
	size := br.Size()
	for {
		buf := buffered(br)
		if buf == nil {
			return s.body(nil, br) // the input ends in the header
		}
		i := bytes.IndexByte(buf, '\n')
		if i < 0 && len(buf) < size {
			buf, _ = br.Peek(size)
			i = bytes.IndexByte(buf, '\n')
		}
		if i < 0 && len(buf) == size {
			msg, done, err := s.longLine(buf)
			if done {
				return msg, err
			}
			continue
		}
		// The whole line is in buf; the last line may lack its LF.
		n, next := len(buf), len(buf)
		if i >= 0 {
			n, next = i, i+1
		}
		line := bytes.TrimSuffix(buf[:n], []byte{'\r'})
		if len(line) == 0 {
			_, _ = br.Discard(next)
			return s.body(nil, br)
		}
		if s.line(headerLineKind(line), line, len(line), -1) {
			return s.body(nil, br) // the line, still unread, starts the body
		}
		_, _ = br.Discard(next)
	}
}

// body walks the body: prefix (bytes of it already consumed) then rest.
func (s *streamScan) body(prefix []byte, rest io.Reader) (*Message, error) {
	if s.nfields == 0 {
		return nil, errNoHeader
	}
	w := s.p.walkStream(s.out.finish(-1), prefix, rest)
	s.p.finish(w)
	return s.p.msg, nil
}

// walkStream is walkBody for a body that is prefix followed by rest.
func (p *parser) walkStream(hdr, prefix []byte, rest io.Reader) *walker {
	body := rest
	if len(prefix) > 0 {
		body = io.MultiReader(bytes.NewReader(prefix), rest)
	}
	sniff := make([]byte, sniffLen)
	n, _ := io.ReadFull(body, sniff)
	sniff = sniff[:n]
	return p.walkBody(hdr, sniff, &fullReader{r: io.MultiReader(bytes.NewReader(sniff), body)}, 0)
}

// fullReader fills every Read as far as the input allows, as the
// bytes.Reader that Parse walks does. The walk's results depend on read
// sizes (see walker.multipart), and a stream of transforms, buffers and
// MultiReaders returns short reads.
type fullReader struct {
	r   io.Reader
	err error
}

func (f *fullReader) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	n, err := io.ReadFull(f.r, p)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF // a bytes.Reader says so on the next call
		}
		f.err = err
		if n > 0 {
			return n, nil
		}
	}
	return n, err
}

// longLine handles a line that does not fit in the look-ahead buf. done
// reports that the header ended and the message is parsed (or not).
func (s *streamScan) longLine(buf []byte) (msg *Message, done bool, err error) {
	var cls lineClass
	d, kind := cls.scan(buf)
	if d < 0 {
		return s.openLine() // rescans from the start: nothing is consumed yet
	}
	switch {
	case kind == lineJunk:
		if s.line(lineJunk, buf, len(buf), -1) {
			msg, err = s.body(nil, s.br)
			return msg, true, err
		}
		skipLine(s.br) // an mbox From_ line
	case kind == lineField && s.nfields < maxHeaderFields, kind == lineContinuation && s.keeping:
		s.readLong(kind, s.long[:0])
	default:
		// Dropped whatever its length: n does not matter.
		s.line(kind, nil, 0, -1)
		skipLine(s.br)
	}
	return nil, false, nil
}

// readLong reads the rest of a continuation or field line after acc and
// hands it to line, or drops it as soon as it is too long to be kept.
func (s *streamScan) readLong(kind lineKind, acc []byte) {
	budget := s.p.lim.MaxHeaderBytes - s.out.Len() - 2 // line keeps n <= budget bytes
	for {
		chunk := buffered(s.br)
		if chunk == nil {
			break // the input ends with this line
		}
		if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
			acc = append(acc, chunk[:i]...)
			_, _ = s.br.Discard(i + 1)
			break
		}
		acc = append(acc, chunk...)
		_, _ = s.br.Discard(len(chunk))
		// Without its line end (at most one CR) the line is at least
		// len(acc)-1 bytes long.
		if len(acc)-1 > budget {
			skipLine(s.br)
			s.line(kind, nil, len(acc)-1, -1)
			s.long = acc[:0]
			return
		}
	}
	line := bytes.TrimSuffix(acc, []byte{'\r'})
	s.line(kind, line, len(line), -1)
	s.long = acc[:0]
}

// openLine handles a line whose look-ahead holds nothing but name bytes and
// blanks: it is a field if a colon comes, else the first body line. It is
// read on until that is known or until a field would be too long to keep.
func (s *streamScan) openLine() (msg *Message, done bool, err error) {
	var cls lineClass
	budget := s.p.lim.MaxHeaderBytes - s.out.Len() - 2
	acc := s.long[:0]
	kind, decided := lineJunk, false // a line that ends open is junk
	for !decided {
		chunk := buffered(s.br)
		if chunk == nil {
			break
		}
		d, k := cls.scan(chunk)
		if d >= 0 {
			chunk = chunk[:d] // the deciding byte stays unread
			kind, decided = k, true
		}
		acc = append(acc, chunk...)
		_, _ = s.br.Discard(len(chunk))
		if !decided && len(acc) > budget {
			break // a field this long (colon included) is dropped
		}
	}
	mbox := s.first && bytes.HasPrefix(acc, []byte("From "))
	switch {
	case decided && kind == lineField:
		s.readLong(kind, acc)
	case decided || !decided && len(acc) <= budget:
		// Junk (the line ended, or the input did): the body starts
		// with acc unless it is an mbox From_ line.
		if s.line(lineJunk, acc, len(acc), -1) {
			msg, err = s.body(acc, s.br)
			return msg, true, err
		}
		s.long = acc[:0]
		skipLine(s.br)
	case mbox:
		// Dropped either way; only the warning depends on the kind.
		var rest specReader
		rest.br, rest.cls = s.br, cls
		rest.decide()
		s.line(rest.kind, acc, len(acc)+1, -1)
		s.long = acc[:0]
		skipLine(s.br)
	default:
		return s.speculate(acc, cls)
	}
	return nil, false, nil
}

// speculate handles an open line longer than a field can be. Either the
// line is junk and the body starts with it, or it is a field, which is
// dropped. Deciding means reading on, possibly for megabytes, so the body is
// walked on the junk hypothesis while reading (on a copy of the parser), and
// the walk is abandoned if a colon shows up: nothing of the line is held.
func (s *streamScan) speculate(acc []byte, cls lineClass) (msg *Message, done bool, err error) {
	rest := &specReader{br: s.br, cls: cls}
	if s.nfields == 0 {
		// On the junk hypothesis there is no field: nothing to walk.
		rest.decide()
		if rest.kind == lineJunk {
			return nil, true, errNoHeader
		}
	} else {
		alt := s.hdrScan
		alt.p = s.p.clone()
		alt.line(lineJunk, acc, len(acc), -1)
		hdr := append(slices.Clip(alt.out.buf), '\r', '\n') // a copy: s.out goes on if the hypothesis fails
		w := alt.p.walkStream(hdr, acc, rest)
		rest.decide() // when the walk stopped before the line ended
		if rest.kind == lineJunk {
			alt.p.finish(w)
			return alt.p.msg, true, nil
		}
	}
	// A field after all, and too long: dropped; the header goes on.
	s.line(lineField, nil, len(acc)+1, -1)
	s.long = acc[:0]
	skipLine(s.br)
	return nil, false, nil
}

// errRetracted ends a speculative walk whose line turned out to be a field.
var errRetracted = errors.New("threading: header line turned out to be a field")

// specReader reads the rest of an open header line as body, until its kind
// is decided: past a junk byte it reads on, at a colon it fails with
// errRetracted and leaves the colon unread.
type specReader struct {
	br      *bufio.Reader
	cls     lineClass
	decided bool
	kind    lineKind
}

func (r *specReader) Read(p []byte) (int, error) {
	if !r.decided {
		chunk := buffered(r.br)
		if chunk == nil {
			r.decided, r.kind = true, lineJunk
			return r.br.Read(p) // EOF or the read error
		}
		chunk = chunk[:min(len(chunk), len(p))]
		d, kind := r.cls.scan(chunk)
		if d < 0 {
			n := copy(p, chunk)
			_, _ = r.br.Discard(n)
			return n, nil
		}
		r.decided, r.kind = true, kind
	}
	if r.kind == lineJunk {
		return r.br.Read(p)
	}
	return 0, errRetracted
}

// decide reads on (discarding) until the kind of the line is known.
func (r *specReader) decide() {
	for !r.decided {
		chunk := buffered(r.br)
		if chunk == nil {
			r.decided, r.kind = true, lineJunk
			return
		}
		d, kind := r.cls.scan(chunk)
		if d >= 0 {
			r.decided, r.kind = true, kind
			_, _ = r.br.Discard(d)
			return
		}
		_, _ = r.br.Discard(len(chunk))
	}
}

// lineClass classifies a header line from its first bytes, as
// headerLineKind does from the whole line: a name is bytes 33–126 other than
// ':', optionally followed by blanks, then ':'.
type lineClass struct {
	state uint8 // 0 at the start, 1 in the name, 2 in blanks after the name
}

// scan reads the next bytes of the line and returns the offset of the byte
// that decides its kind, or -1 if it is still open after b. A line that
// ends open (at its line end or the end of the input) is lineJunk.
func (c *lineClass) scan(b []byte) (int, lineKind) {
	for i, ch := range b {
		switch c.state {
		case 0:
			switch {
			case ch == ' ' || ch == '\t':
				return i, lineContinuation
			case ch == ':':
				return i, lineEmptyKey
			case ch > ' ' && ch < 0x7f:
				c.state = 1
			default:
				return i, lineJunk
			}
		case 1:
			switch {
			case ch == ':':
				return i, lineField
			case ch == ' ' || ch == '\t':
				c.state = 2
			case ch > ' ' && ch < 0x7f:
			default:
				return i, lineJunk
			}
		default:
			switch ch {
			case ':':
				return i, lineField
			case ' ', '\t':
			default:
				return i, lineJunk
			}
		}
	}
	return -1, lineJunk
}

// clone copies the parser for a speculative walk.
func (p *parser) clone() *parser {
	m := *p.msg
	m.Warnings = slices.Clone(p.msg.Warnings)
	return &parser{lim: p.lim, msg: &m, warnSeen: maps.Clone(p.warnSeen), legacyCharset: p.legacyCharset}
}

// hashReader hashes and counts every byte read from r. Its first error
// (io.EOF included) is sticky, so nothing above it reads past a failure.
type hashReader struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	err error
}

func (h *hashReader) Read(p []byte) (int, error) {
	if h.err != nil {
		return 0, h.err
	}
	n, err := h.r.Read(p)
	if n > 0 {
		h.h.Write(p[:n])
		h.n += int64(n)
	}
	if err != nil {
		h.err = err
	}
	return n, err
}

// drain reads the rest of the input through a (the bufio.Reader on hr), so
// that it is hashed, and returns the read error, nil at EOF. bufio gives up
// on a reader that keeps returning nothing (io.ErrNoProgress).
func drain(a *bufio.Reader, hr *hashReader) error {
	var err error
	for err == nil {
		_, _ = a.Discard(a.Buffered())
		_, err = a.Peek(1)
	}
	if hr.err != nil && !errors.Is(hr.err, io.EOF) {
		return hr.err
	}
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// maxEmptyReads is how many (0, nil) reads in a row drainSafely accepts
// from a broken reader before giving up, as bufio does.
const maxEmptyReads = 100

// drainDirect reads r to its end and returns its error, nil at EOF.
func (h *hashReader) drainDirect() error {
	if h.err == nil {
		buf := make([]byte, 32<<10)
		for empty := 0; h.err == nil; {
			n, _ := h.Read(buf)
			if n > 0 {
				empty = 0
			} else if empty++; empty >= maxEmptyReads {
				h.err = io.ErrNoProgress
			}
		}
	}
	if errors.Is(h.err, io.EOF) {
		return nil
	}
	return h.err
}

// drainSafely drains r after a panic, when a's state is unknown and r
// itself may be what panicked.
func (h *hashReader) drainSafely() (err error) {
	defer func() {
		if recover() != nil {
			err = nil // the panic is already being reported
		}
	}()
	return h.drainDirect()
}

// lineEndFix is a transform.Transformer doing Parse's line-end rewrite in
// a stream: crToCRLF (every CR not followed by LF gets one) for lineEndsCR,
// bytes.ReplaceAll(b, "\r\r\n", "\r\n") for lineEndsCRCRLF.
type lineEndFix struct {
	transform.NopResetter
	mode int
}

func (f lineEndFix) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	const crcrlf = "\r\r\n"
	for nSrc < len(src) {
		i := bytes.IndexByte(src[nSrc:], '\r')
		if i < 0 {
			i = len(src) - nSrc
		}
		n := copy(dst[nDst:], src[nSrc:nSrc+i])
		nDst += n
		nSrc += n
		if n < i {
			return nDst, nSrc, transform.ErrShortDst
		}
		if nSrc == len(src) {
			break
		}
		// At a CR: decide how much of what follows it replaces.
		rest := src[nSrc:]
		var out string
		var used int
		switch {
		case f.mode == lineEndsCR && len(rest) == 1 && !atEOF,
			f.mode == lineEndsCRCRLF && len(rest) < len(crcrlf) && !atEOF && crcrlf[:len(rest)] == string(rest):
			return nDst, nSrc, transform.ErrShortSrc // need the next bytes
		case f.mode == lineEndsCR && len(rest) > 1 && rest[1] == '\n':
			out, used = "\r\n", 2
		case f.mode == lineEndsCR:
			out, used = "\r\n", 1
		case bytes.HasPrefix(rest, []byte(crcrlf)):
			out, used = "\r\n", len(crcrlf)
		default:
			out, used = "\r", 1
		}
		if nDst+len(out) > len(dst) {
			return nDst, nSrc, transform.ErrShortDst
		}
		nDst += copy(dst[nDst:], out)
		nSrc += used
	}
	return nDst, nSrc, nil
}
