package threading

import (
	"slices"
	"strings"
	"testing"
)

func TestFindTag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		subject string
		prefix  string
		wantID  uint64
		wantOK  bool
	}{
		{"[Ticket#1042] Printer offline", "Ticket", 1042, true},
		{"Re: [Ticket#1042] Printer offline", "Ticket", 1042, true},
		{"RE : [Ticket#1042] Printer offline", "Ticket", 1042, true},
		{"AW: WG: [Ticket#7] Drucker", "Ticket", 7, true},
		{"SV: Vs: [Ticket#7] Skrivare", "Ticket", 7, true},
		{"Fwd: Re: Printer [Ticket#1042]", "Ticket", 1042, true},
		{"回复：[Ticket#88] 打印机", "Ticket", 88, true},
		{"Printer offline [ticket#1042]", "Ticket", 1042, true},
		{"[TICKET#1042]", "ticket", 1042, true},
		{"[ Ticket # 1042 ]", "Ticket", 1042, true},
		{"[\tTicket\u00a0#\u30001042 ]", "Ticket", 1042, true},
		{"[Ticket#0042]", "Ticket", 42, true},
		{"[Ticket#18446744073709551615]", "Ticket", 18446744073709551615, true},
		{"[Ticket#18446744073709551616]", "Ticket", 0, false}, // overflow
		{"[Ticket#99999999999999999999999999]", "Ticket", 0, false},
		{"[Ticket#0]", "Ticket", 0, false},
		{"[Ticket#-5]", "Ticket", 0, false},
		{"[Ticket#+5]", "Ticket", 0, false},
		{"[Ticket#12a]", "Ticket", 0, false},
		{"[Ticket#12", "Ticket", 0, false},
		{"[Ticket 12]", "Ticket", 0, false},
		{"Ticket#12", "Ticket", 0, false},
		{"[Tickets#12]", "Ticket", 0, false},
		{"[Order#12]", "Ticket", 0, false},
		{"[Ticket#]", "Ticket", 0, false},
		{"", "Ticket", 0, false},
		{"[[Ticket#5]", "Ticket", 5, true},
		{"[Ticket#abc] then [Ticket#9]", "Ticket", 9, true},
		{"[Ticket#3] and [Ticket#9]", "Ticket", 3, true},
		{"[Support Desk#12] x", "Support Desk", 12, true},
		{"[HD-2024#12] x", "HD-2024", 12, true},
		{"[Заявка#12] x", "Заявка", 12, true},
		{"[ЗАЯВКА#12] x", "заявка", 12, true},
		{"[#12] empty prefix", "", 12, true},
		{"\xff[Ticket#5]\xfe", "Ticket", 5, true},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			id, ok := FindTag(tt.subject, tt.prefix)
			if id != tt.wantID || ok != tt.wantOK {
				t.Errorf("FindTag(%q, %q) = (%d, %v), want (%d, %v)", tt.subject, tt.prefix, id, ok, tt.wantID, tt.wantOK)
			}
		})
	}
}

func TestAddTag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		subject string
		id      uint64
		want    string
	}{
		{"Printer offline", 1042, "[Ticket#1042] Printer offline"},
		{"Re: [Ticket#1042] Printer offline", 1042, "Re: [Ticket#1042] Printer offline"},
		{"Re: [ ticket # 1042 ] Printer", 1042, "Re: [ ticket # 1042 ] Printer"},
		{"Re: [Ticket#17] Printer", 1042, "[Ticket#1042] Re: [Ticket#17] Printer"},
		{"[Ticket#10420] x", 1042, "[Ticket#1042] [Ticket#10420] x"},
		{"", 5, "[Ticket#5]"},
		{"  spaced  ", 5, "[Ticket#5] spaced"},
		{"Evil\r\nBcc: victim@example.com", 5, "[Ticket#5] Evil Bcc: victim@example.com"},
		{"Tab\tand\x00nul", 5, "[Ticket#5] Tab and nul"},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			got := AddTag(tt.subject, "Ticket", tt.id)
			if got != tt.want {
				t.Errorf("AddTag(%q, %d) = %q, want %q", tt.subject, tt.id, got, tt.want)
			}
			if ids := findTags(got, "Ticket", maxTagsScanned); !slices.Contains(ids, tt.id) {
				t.Errorf("tags in %q = %v, want %d among them", got, ids, tt.id)
			}
		})
	}
	if got := AddTag("x", "Tick\r\net", 3); strings.ContainsAny(got, "\r\n") {
		t.Errorf("prefix CR/LF kept: %q", got)
	}
}

func TestBaseSubject(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"Printer offline", "Printer offline"},
		{"Re: Printer offline", "Printer offline"},
		{"RE: re: Re: Printer offline", "Printer offline"},
		{"Re : Printer offline", "Printer offline"},
		{"Re[2]: Printer offline", "Printer offline"},
		{"Fwd: Fw: FW: Printer offline", "Printer offline"},
		{"AW: WG: Drucker", "Drucker"},
		{"SV: VS: Skrivare", "Skrivare"},
		{"Antw: Doorst: Printer", "Printer"},
		{"R: R: I: FR-selca", "FR-selca"},
		{"Odp: PD: Drukarka", "Drukarka"},
		{"TR: RE: Imprimante", "Imprimante"},
		{"RV: Enc: Impresora", "Impresora"},
		{"回复：转发：打印机", "打印机"},
		{"Ответ: принтер", "принтер"},
		{"[Ticket#1042] Re: Printer offline", "Printer offline"},
		{"Re: [Ticket#1042] Printer offline", "Printer offline"},
		{"[list] [Ticket#3] Printer", "Printer"},
		{"Printer offline (fwd)", "Printer offline"},
		{"Printer offline (FWD) (fwd)  ", "Printer offline"},
		{"[fwd: Re: Printer offline]", "Printer offline"},
		{"  Re:   Printer \t  offline  ", "Printer offline"},
		{"[Ticket#1042]", "[Ticket#1042]"},
		{"Re: [Ticket#1042]", "[Ticket#1042]"},
		{"Reboot: server", "Reboot: server"},
		{"Result: ok", "Result: ok"},
		{"Regarding Re: x", "Regarding Re: x"},
		{"", ""},
		{"Re:", ""},
		{"Line\r\nbreak", "Line break"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := BaseSubject(tt.in); got != tt.want {
				t.Errorf("BaseSubject(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := BaseSubject(BaseSubject(tt.in)); got != BaseSubject(tt.in) {
				t.Errorf("BaseSubject is not idempotent on %q: %q", tt.in, got)
			}
		})
	}
}
