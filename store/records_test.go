package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fullMessage has every field of Message set.
func fullMessage(text string) *Message {
	m := benchMessage(1, 7, text)
	m.Seq, m.Blob = 3, 9
	m.Automated, m.AutomatedReason = "bulk", "Precedence: bulk"
	m.Warnings = []string{"charset \"x-unknown\" decoded as latin-1"}
	m.Delivery = &Delivery{Status: "queued", Attempts: 2, LastError: "451 later", SentAt: t0.Add(time.Minute)}
	m.Date = time.Date(2026, 11, 24, 11, 0, 0, 123, time.FixedZone("", 3600))
	return m
}

// viaJSON is what encoding/json makes of m: what a message read back was
// before the text-first and binary layouts, and must still be.
func viaJSON(t testing.TB, m *Message) Message {
	t.Helper()
	v, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out Message
	if err := json.Unmarshal(v, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// encodeMessage is m's record with its text, as putMessage writes a short
// one.
func encodeMessage(m *Message) ([]byte, error) { return encodeInline(m, validText(m.Text)) }

// textFirstRecord is m's record as schema 4 wrote it: the text first, as
// the contents of a JSON string, then the rest of the JSON object.
func textFirstRecord(t testing.TB, m *Message) []byte {
	t.Helper()
	var text bytes.Buffer
	enc := json.NewEncoder(&text)
	enc.SetEscapeHTML(false) // as schema 4 wrote it
	if err := enc.Encode(m.Text); err != nil {
		t.Fatal(err)
	}
	head, err := json.Marshal((*messageHead)(m))
	if err != nil {
		t.Fatal(err)
	}
	return slices.Concat([]byte(`{"text":`), bytes.TrimSuffix(text.Bytes(), []byte("\n")), []byte(","), head[1:])
}

var recordTexts = map[string]string{
	"empty":          "",
	"plain":          "It shows error 49.",
	"lines":          "Hello,\r\n\nline two\n\ttabbed\n",
	"json specials":  `say "hi" \ and \\ and \" and \u0041 and /`,
	"controls":       "\x00\x01\x08\x0c\x1f\x7f end",
	"html and seps":  "<b>&amp;</b> \u2028 \u2029",
	"non-ascii":      "Grüße aus Köln – 打印机 😀 \ufffd",
	"invalid utf-8":  "bad \xff\xfe byte, cut \xc3, surrogate \xed\xa0\x80, overlong \xc0\xaf",
	"ends escaped":   "trailing backslash \\",
	"only quotes":    strings.Repeat(`"`, 17),
	"long":           benchText(50 << 10),
	"text-first way": `{"text":"x","ticket_id":2}`,
}

func TestMessageRecordRoundTrip(t *testing.T) {
	t.Parallel()
	for name, text := range recordTexts {
		for _, empty := range []bool{false, true} {
			m := fullMessage(text)
			if empty {
				// Nil and empty lists, omitted and zero fields.
				m = &Message{TicketID: 1, Seq: 2, Text: text, Attachments: []Attachment{}, To: nil}
			}
			v, err := encodeMessage(m)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if v[0] != textInline {
				t.Fatalf("%s: record is not binary: %.80q", name, v)
			}
			want := viaJSON(t, m)
			// The record written now, and the same message as the two
			// JSON layouts before stored it, read back alike.
			legacy, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			for layout, v := range map[string][]byte{"binary": v, "text-first": textFirstRecord(t, m), "legacy": legacy} {
				var got Message
				if err := decodeMessage(v, &got); err != nil {
					t.Fatalf("%s %s: %v", name, layout, err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s %s (empty %v): decodeMessage differs from the JSON round trip (-want +got):\n%s", name, layout, empty, diff)
				}
			}
		}
	}
}

// The text keeps what encoding/json did to bytes that are not UTF-8: one
// U+FFFD for each.
func TestMessageRecordInvalidUTF8(t *testing.T) {
	t.Parallel()
	v, err := encodeMessage(&Message{Text: "a\xffb\xc3"})
	if err != nil {
		t.Fatal(err)
	}
	var m Message
	if err := decodeMessage(v, &m); err != nil || m.Text != "a\ufffdb\ufffd" {
		t.Errorf("text %q, %v", m.Text, err)
	}
}

func TestLegacyMessageRecordsStillRead(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	var id uint64
	var legacy []Message
	err := db.Update(func(tx *Tx) error {
		id = newTicket(t, tx, "ann@example.org", StatusOpen).ID
		// Two records as encoding/json wrote them, around a new one.
		for i, text := range []string{recordTexts["json specials"], "", recordTexts["invalid utf-8"]} {
			if i == 1 {
				if err := tx.AddMessage(&Message{TicketID: id, MessageID: "new@x", Text: "new"}, []byte("raw"), "<new@x>"); err != nil {
					return err
				}
				continue
			}
			m := fullMessage(text)
			m.TicketID = id
			seq, err := tx.bucket(bucketMessages).NextSequence()
			if err != nil {
				return err
			}
			m.Seq = seq
			if m.Blob, err = tx.putBlob([]byte("raw")); err != nil {
				return err
			}
			if err := putJSON(tx.bucket(bucketMessages), msgKey(id, seq), m); err != nil {
				return err
			}
			if err := tx.countMessage(id); err != nil {
				return err
			}
			legacy = append(legacy, viaJSON(t, m))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *Tx) error {
		msgs, err := tx.Messages(id)
		if err != nil {
			return err
		}
		if len(msgs) != 3 || msgs[1].Text != "new" {
			t.Fatalf("messages: %+v", msgs)
		}
		for i, want := range []Message{legacy[0], legacy[1]} {
			got := msgs[2*i]
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("legacy message %d (-want +got):\n%s", i, diff)
			}
			one, err := tx.Message(id, got.Seq)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(want, *one); diff != "" {
				t.Errorf("Message(%d) (-want +got):\n%s", got.Seq, diff)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Changed, a legacy record is written in the binary layout.
	err = db.Update(func(tx *Tx) error {
		m, err := tx.Message(id, legacy[0].Seq)
		if err != nil {
			return err
		}
		m.Delivery = &Delivery{Status: "sent", Attempts: 3, SentAt: t0}
		if err := tx.UpdateMessage(m); err != nil {
			return err
		}
		if v := tx.bucket(bucketMessages).Get(msgKey(id, m.Seq)); len(v) == 0 || v[0] != textInline {
			t.Errorf("rewritten record: %.40q", v)
		}
		back, err := tx.Message(id, m.Seq)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(*m, *back); diff != "" {
			t.Errorf("after UpdateMessage (-want +got):\n%s", diff)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A cut or damaged record is an error, not a panic, and not a message.
func TestCorruptMessageRecords(t *testing.T) {
	t.Parallel()
	m := fullMessage(recordTexts["json specials"] + "\n" + recordTexts["non-ascii"])
	binaryRec, err := encodeMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string][]byte{"binary": binaryRec, "text-first": textFirstRecord(t, m), "legacy": legacy} {
		for n := range len(v) {
			var got Message
			if err := decodeMessage(v[:n], &got); err == nil {
				t.Errorf("%s cut to %d bytes decoded: %.60q", name, n, v[:n])
			}
		}
	}
	for _, v := range []string{
		`{"text":"no end`,
		`{"text":"escaped end\"}`,
		`{"text":"a"`,
		`{"text":"a"x"ticket_id":1}`,
		`{"text":"a",}`,
		`{"text":"a","ticket_id":"one"}`,
		`{"text":"bad \q escape","ticket_id":1}`,
		`{"text":"short \u12","ticket_id":1}`,
		`{"text":"short \u12`,
		`{"text":"a","ticket_id":1`,
		`{"text":`,
		"",
		"\x01binary",
		"\x01",
		"\x01\xff",
		"\x01\x00",
		"\x01\x00{}x",
		"\x01\x01x",
		"\x01\x01x{\"ticket_id\":\"one\"}",
		"\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01{}",
	} {
		var got Message
		if err := decodeMessage([]byte(v), &got); err == nil {
			t.Errorf("%q decoded: %+v", v, got)
		}
	}
	// Escapes the writer does not use are still read as JSON reads them.
	for v, want := range map[string]string{
		`{"text":"\ud83d\ude00 \ud800 \/ \b\f \u00e9 \u0041","ticket_id":1}`: "😀 \ufffd / \b\f é A",
		`{"text":"x"}`: "x",
	} {
		var got Message
		if err := decodeMessage([]byte(v), &got); err != nil || got.Text != want {
			t.Errorf("%s: text %q, %v; want %q", v, got.Text, err, want)
		}
	}

	db := openTest(t)
	var id uint64
	db.Update(func(tx *Tx) error {
		id = newTicket(t, tx, "ann@example.org", StatusOpen).ID
		return tx.AddMessage(&Message{TicketID: id, Text: "fine"}, []byte("raw"))
	})
	err = db.Update(func(tx *Tx) error {
		v := bytes.Clone(tx.bucket(bucketMessages).Get(msgKey(id, 1)))
		return tx.bucket(bucketMessages).Put(msgKey(id, 1), v[:len(v)-1])
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		if _, err := tx.Message(id, 1); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Message of a cut record: %v", err)
		}
		if _, err := tx.Messages(id); err == nil {
			t.Error("Messages with a cut record: no error")
		}
		return nil
	})
	// Check reports it too; then the record is put right so that the
	// cleanup's Check passes.
	if err := db.Check(); err == nil {
		t.Error("Check passed a cut message record")
	}
	db.Update(func(tx *Tx) error {
		return tx.putMessage(msgKey(id, 1), &Message{TicketID: id, Seq: 1, Blob: 1, Text: "fine"}, false)
	})
}

func TestTicketRecordsCountLast(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	want := Ticket{Subject: "Printer \"49\"", Status: StatusOpen, Priority: "normal", Mailbox: "support",
		Requester: "ann@example.org", RequesterName: "Ann", CC: []string{"bob@example.org"},
		CreatedAt: t0, UpdatedAt: t0, LastCustomerMessageID: "p1@x", ThreadIDs: []string{"p1@x"}}
	err := db.Update(func(tx *Tx) error {
		tk := want
		if err := tx.CreateTicket(&tk); err != nil {
			return err
		}
		want.ID = tk.ID
		for i := range 12 {
			if err := tx.AddMessage(&Message{TicketID: tk.ID, Text: "m"}, []byte("raw"), "<m"+string(rune('a'+i))+"@x>"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want.MessageCount = 12
	db.View(func(tx *Tx) error {
		v := tx.bucket(bucketTickets).Get(u64(want.ID))
		if !bytes.HasSuffix(v, []byte(`,"message_count":12}`)) || !json.Valid(v) {
			t.Errorf("record %s", v)
		}
		got, err := tx.Ticket(want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, *got); diff != "" {
			t.Errorf("ticket (-want +got):\n%s", diff)
		}
		return nil
	})
}

// Tickets written before have the count in the middle (or last, when the
// members after it are empty); adding a message counts right either way
// and writes the count last.
func TestLegacyTicketRecordsCount(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	for _, tk := range []Ticket{
		{Subject: "middle", Status: StatusNew, Requester: "a@x", CreatedAt: t0, UpdatedAt: t0, LastCustomerMessageID: "p@x", MergedInto: 0},
		{Subject: "last", Status: StatusNew, Requester: "b@x", CreatedAt: t0, UpdatedAt: t0},
	} {
		err := db.Update(func(tx *Tx) error {
			b := tx.bucket(bucketTickets)
			id, err := b.NextSequence()
			if err != nil {
				return err
			}
			tk.ID, tk.MessageCount = id, 0
			if err := putJSON(b, u64(id), &tk); err != nil {
				return err
			}
			if err := tx.indexTicket(&tk); err != nil {
				return err
			}
			for _, key := range []string{"<1." + tk.Subject + ">", "<2." + tk.Subject + ">"} {
				if err := tx.AddMessage(&Message{TicketID: id}, []byte("raw"), key); err != nil {
					return err
				}
			}
			v := b.Get(u64(id))
			if !bytes.HasSuffix(v, []byte(`,"message_count":2}`)) {
				t.Errorf("%s: record %s", tk.Subject, v)
			}
			got, err := tx.Ticket(id)
			if err != nil {
				return err
			}
			tk.MessageCount = 2
			if diff := cmp.Diff(tk, *got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tk.Subject, diff)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestCutCount(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]int64{
		`{"id":1,"message_count":0}`:                   0,
		`{"id":1,"message_count":7}`:                   7,
		`{"id":1,"message_count":123456789012}`:        123456789012,
		`{"message_count":5,"id":1}`:                   -1,
		`{"id":1,"message_count":07}`:                  -1,
		`{"id":1,"message_count":-1}`:                  -1,
		`{"id":1,"message_count":1e3}`:                 -1,
		`{"id":1,"message_count":1234567890123456789}`: -1,
		`{"id":1,"message_count":}`:                    -1,
		`{"id":1,"message_count":3`:                    -1,
		`{"id":1,"message_count":3 }`:                  -1,
		`{"id":1,"Message_Count":3}`:                   -1,
		`{"s":"x\",\"message_count\":3}`:               -1,
		`"message_count":3}`:                           -1,
		`}`:                                            -1,
		``:                                             -1,
	} {
		n, at, ok := cutCount([]byte(v))
		if !ok {
			n = -1
		}
		if n != want {
			t.Errorf("cutCount(%s) = %d, want %d", v, n, want)
		}
		if ok && (at < len(countLast) || v[at-len(countLast):at] != countLast) {
			t.Errorf("cutCount(%s): digits at %d", v, at)
		}
	}
}

// The fixture's records, written by schema 1, take new messages.
func TestSchemaV1FixtureTakesMessages(t *testing.T) {
	t.Parallel()
	db := openFixtureV1(t)
	var before Ticket
	err := db.Update(func(tx *Tx) error {
		tk, err := tx.Ticket(1)
		if err != nil {
			return err
		}
		before = *tk
		return tx.AddMessage(&Message{TicketID: 1, MessageID: "p2@example.org", Text: "Still broken."}, []byte("raw p2"), "<p2@example.org>")
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		tk, err := tx.Ticket(1)
		if err != nil {
			t.Fatal(err)
		}
		before.MessageCount++
		if diff := cmp.Diff(before, *tk); diff != "" {
			t.Errorf("ticket 1 (-want +got):\n%s", diff)
		}
		msgs, err := tx.Messages(1)
		if err != nil || len(msgs) != 3 || msgs[0].Text != "It shows error 49." || msgs[2].Text != "Still broken." {
			t.Errorf("messages %+v %v", msgs, err)
		}
		return nil
	})
}

// FuzzDecodeMessage: any bytes decode to a message or an error, never a
// panic; a message decoded is stored again as JSON would store it (empty
// lists left out, the text made valid UTF-8).
func FuzzDecodeMessage(f *testing.F) {
	for _, text := range recordTexts {
		v, err := encodeMessage(fullMessage(text))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		var m Message
		if err := decodeMessage(v, &m); err != nil {
			return
		}
		again, err := encodeMessage(&m)
		if err != nil {
			// A time JSON cannot write (year 10000) was read.
			return
		}
		var back Message
		if err := decodeMessage(again, &back); err != nil {
			t.Fatalf("record written from %q does not decode: %v\n%q", v, err, again)
		}
		if diff := cmp.Diff(viaJSON(t, &m), back); diff != "" {
			t.Fatalf("%q stored again differs (-json +got):\n%s", v, diff)
		}
	})
}

// FuzzMessageRecordText: whatever the text, the record written now and
// the text-first record schema 4 wrote read back as encoding/json reads
// the message it writes itself.
func FuzzMessageRecordText(f *testing.F) {
	for _, text := range recordTexts {
		f.Add(text, "Printer")
	}
	f.Fuzz(func(t *testing.T, text, subject string) {
		m := &Message{TicketID: 1, Seq: 2, Text: text, Subject: subject, To: []string{subject}, Date: t0}
		v, err := encodeMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		want := viaJSON(t, m)
		var got, old Message
		if err := decodeMessage(v, &got); err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("decodeMessage (-json +got):\n%s", diff)
		}
		tf := textFirstRecord(t, m)
		if err := decodeMessage(tf, &old); err != nil {
			t.Fatalf("%q: %v", tf, err)
		}
		if diff := cmp.Diff(want, old); diff != "" {
			t.Fatalf("decodeMessage of the text-first record (-json +got):\n%s", diff)
		}
	})
}

// FuzzCutCount: where cutCount finds a count, encoding/json reads the
// same one.
func FuzzCutCount(f *testing.F) {
	f.Add([]byte(`{"id":1,"message_count":7}`))
	f.Add([]byte(`{"id":1,"message_count":7,"message_count":8}`))
	f.Add([]byte(`{"id":1,"cc":["a\",\"message_count\":9"],"message_count":3}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		n, _, ok := cutCount(v)
		var tk Ticket
		if !ok || json.Unmarshal(v, &tk) != nil {
			return
		}
		if int64(tk.MessageCount) != n {
			t.Fatalf("%s: cutCount %d, encoding/json %d", v, n, tk.MessageCount)
		}
	})
}

// A long text of a fresh message is stored once, in its blob's first chunk
// bucket, and read back from there; a short text and a staged mail's stay
// in the record. Updates keep the text, Check finds it, or its absence.
func TestMessageTextInBlob(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	long := benchText(20 << 10)
	staged, err := db.Stage(bytes.Repeat([]byte("x"), stageThreshold+1))
	if err != nil {
		t.Fatal(err)
	}
	var id uint64
	seqs := map[string]uint64{}
	err = db.Update(func(tx *Tx) error {
		id = newTicket(t, tx, "ann@example.org", StatusOpen).ID
		for name, text := range map[string]string{"long": long, "short": "It shows error 49.", "bad utf-8": long + "\xff"} {
			m := &Message{TicketID: id, MessageID: name + "@x", Text: text}
			if err := tx.AddMessage(m, []byte("raw "+name), "<"+name+"@x>"); err != nil {
				return err
			}
			seqs[name] = m.Seq
		}
		m := &Message{TicketID: id, MessageID: "staged@x", Text: long}
		if err := tx.AddStagedMessage(m, staged, "<staged@x>"); err != nil {
			return err
		}
		seqs["staged"] = m.Seq
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantText := map[string]string{"long": long, "short": "It shows error 49.", "bad utf-8": long + "\ufffd", "staged": long}
	wantLayout := map[string]byte{"long": textInBlob, "short": textInline, "bad utf-8": textInBlob, "staged": textInline}
	db.View(func(tx *Tx) error {
		msgs, err := tx.Messages(id)
		if err != nil || len(msgs) != 4 {
			t.Fatalf("messages: %d, %v", len(msgs), err)
		}
		for name, seq := range seqs {
			v := tx.bucket(bucketMessages).Get(msgKey(id, seq))
			if v[0] != wantLayout[name] {
				t.Errorf("%s: record starts with %#x, want %#x", name, v[0], wantLayout[name])
			}
			m, err := tx.Message(id, seq)
			if err != nil || m.Text != wantText[name] {
				t.Errorf("%s: Message text of %d bytes, %v; want %d", name, len(m.Text), err, len(wantText[name]))
			}
			if msgs[seq-msgs[0].Seq].Text != wantText[name] {
				t.Errorf("%s: Messages text differs", name)
			}
			if name != "staged" {
				// The text is beside the raw bytes, not part of them.
				raw, err := tx.Raw(id, seq)
				if err != nil || string(raw) != "raw "+name {
					t.Errorf("%s: raw %.20q, %v", name, raw, err)
				}
			}
		}
		return nil
	})
	if err := db.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	// A delivery update keeps the text in the blob; a changed text is
	// written there.
	for _, text := range []string{long, "changed " + long} {
		err = db.Update(func(tx *Tx) error {
			m, err := tx.Message(id, seqs["long"])
			if err != nil {
				return err
			}
			m.Text = text
			m.Delivery = &Delivery{Status: "failed", LastError: "550 no such user"}
			return tx.UpdateMessage(m)
		})
		if err != nil {
			t.Fatal(err)
		}
		db.View(func(tx *Tx) error {
			v := tx.bucket(bucketMessages).Get(msgKey(id, seqs["long"]))
			m, err := tx.Message(id, seqs["long"])
			if err != nil || m.Text != text || m.Delivery == nil || m.Delivery.Status != "failed" || v[0] != textInBlob {
				t.Errorf("after UpdateMessage: %v, %#x, %+v", err, v[0], m.Delivery)
			}
			return nil
		})
	}
	// Without its text the message is an error, and Check says so.
	var blob uint64
	db.Update(func(tx *Tx) error {
		m, err := tx.Message(id, seqs["long"])
		if err != nil {
			return err
		}
		blob = m.Blob
		return tx.bucket(bucketBlobs).Bucket(blobKey(blob, 0)).Delete(textKey)
	})
	db.View(func(tx *Tx) error {
		if _, err := tx.Message(id, seqs["long"]); err == nil {
			t.Error("Message without its text: no error")
		}
		return nil
	})
	if err := db.Check(); err == nil || !strings.Contains(err.Error(), "text missing") {
		t.Errorf("Check without a text: %v", err)
	}
	db.Update(func(tx *Tx) error { return tx.putMessageText(blob, "restored") })
}
