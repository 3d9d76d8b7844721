package quote

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestStrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		// Trivial input.
		{"empty", "", ""},
		{"blank", " \n\t\r\n \u00a0\n", ""},
		{"plain", "Hello there.\nHow are you?", "Hello there.\nHow are you?"},
		{"surrounding blank lines", "\n\n  \nHello\n\n\n", "Hello"},
		{"crlf", "Hello\r\nworld\r\n\r\nOn Mon, 1 Jan 2024 at 10:00, Bob <bob@example.com> wrote:\r\n> hi\r\n", "Hello\nworld"},
		{"cr only", "Hello\rworld\r\rOn Mon, 1 Jan 2024 at 10:00, Bob <bob@example.com> wrote:\r> hi", "Hello\nworld"},

		// Reply headers.
		{"gmail en", "Thanks!\n\nOn Tue, Mar 5, 2024 at 9:12 AM Jane Doe <jane@example.com> wrote:\n\n> Can you help?\n", "Thanks!"},
		{"gmail wrapped", "Thanks!\n\nOn Tue, Mar 5, 2024 at 9:12 AM Jane Doe <\njane@example.com> wrote:\n\n> Can you help?\n", "Thanks!"},
		{"apple wrapped over three lines", "Done.\n\nOn Dec 16, 2011, at 12:47 PM, Corey Donohoe\n<reply@reply.github.com>\nwrote:\n\n> Fixed?", "Done."},
		{"header without quote marks (outlook style)", "Yes.\n\nOn Mon, 1 Jan 2024 at 10:00, Bob <bob@example.com> wrote:\n\nAre you coming?\n\nBob", "Yes."},
		{"german", "Danke!\n\nAm 18.09.2013 um 16:24 schrieb Max Mustermann <max@example.de>:\n\n> Hallo", "Danke!"},
		{"german name first", "Danke!\n\nMax Mustermann <max@example.de> schrieb am Fr., 28. Apr. 2017 um 11:53 Uhr:\n\n> Hallo", "Danke!"},
		{"french", "Merci.\n\nLe 19 mars 2014 10:37, Cédric <cedric@example.fr> a écrit :\n\n> Bonjour", "Merci."},
		{"spanish", "Gracias.\n\nEl 19/03/2014 11:34, Juan Pérez <juan@example.es> escribió:\n\n> Hola", "Gracias."},
		{"dutch", "Bedankt.\n\nOp 24 aug. 2013 om 16:48 heeft Jan <jan@example.nl> het volgende geschreven:\n\n> Hoi", "Bedankt."},
		{"dutch schreef", "Bedankt.\n\nOp 10 dec. 2015 18:35 schreef \"Jan\" <jan@example.nl>:\n\n> Hoi", "Bedankt."},
		{"italian", "Grazie.\n\nIl giorno 26 marzo 2016 alle 13.16 Sam <sam@example.it> ha scritto:\n\n> Ciao", "Grazie."},
		{"italian il", "Grazie.\n\nIl 26/03/2016 13:16, Sam ha scritto:\n\n> Ciao", "Grazie."},
		{"portuguese", "Obrigado.\n\nEm 2 de fevereiro de 2015 10:58, Ana <ana@example.br> escreveu:\n\n> Olá", "Obrigado."},
		{"swedish", "Tack.\n\nDen 5 juni 2017 12:22 skrev Anna <anna@example.se>:\n\n> Hej", "Tack."},
		{"norwegian", "Takk.\n\nsøn. 30. apr. 2017 kl. 00.26 skrev David <david@example.no>:\n\n> Hei", "Takk."},
		{"danish", "Tak.\n\nDen 08/06/2015 kl. 21.21 skrev Test user <test@example.com>:\n\n> Hej", "Tak."},
		{"polish w dniu", "Dzięki.\n\nW dniu 2015-01-07 14:23, jan@example.pl pisze:\n\n> Cześć", "Dzięki."},
		{"polish napisał", "Dzięki.\n\nW dniu 7 stycznia 2015 15:24 użytkownik Paweł <pawel@example.pl> napisał:\n\n> Cześć", "Dzięki."},
		{"polish dnia", "Dzięki.\n\nDnia 14 lip 2015 o godz. 00:25 Michael <m@example.pl> napisał(a):\n\n> Cześć", "Dzięki."},
		{"russian", "Спасибо.\n\nпонедельник, 6 октября 2014 г. пользователь lidel написал:\n\n> Привет", "Спасибо."},
		{"russian gmail", "Спасибо.\n\nвт, 5 янв. 2016 г. в 23:39, Erlend <erlend@example.org>:\n\n> Привет", "Спасибо."},
		{"ukrainian", "Дякую.\n\n30 серп. 2016 р. 20:45 \"Arpit\" <no-reply@example.com> пише:\n\n> Привіт", "Дякую."},
		{"chinese", "谢谢。\n\n在 2016年11月8日，下午2:23，Test user <test@example.com> 写道：\n\n> 你好", "谢谢。"},
		{"japanese", "ありがとう。\n\n2016/11/08 14:26、Test user <test@example.com> のメッセージ:\n\n> こんにちは", "ありがとう。"},
		{"korean", "감사합니다.\n\n2016. 11. 8. 오후 12:39 Test user <test@example.com> 작성:\n\n> 안녕하세요", "감사합니다."},
		{"hungarian", "Köszönöm!\n\n2013.02.08. 7:31 keltezéssel, \"Eszter\" írta:\n> Szia", "Köszönöm!"},
		{"czech", "Díky.\n\nDne 1. 2. 2018 v 10:00 Jan Novák <jan@example.cz> napsal(a):\n\n> Ahoj", "Díky."},
		{"finnish", "Kiitos.\n\nMatti <matti@example.fi> kirjoitti 1.1.2017 kello 12.00:\n\n> Hei", "Kiitos."},
		{"turkish", "Teşekkürler.\n\n1 Oca 2020 Çar, 10:00 tarihinde Ali <ali@example.com> şunu yazdı:\n\n> Merhaba", "Teşekkürler."},
		{"iso gmt gmail", "Before\n\n2016-03-03 17:21 GMT+01:00 Some One <one@example.com>:\n\n> After", "Before"},
		{"date and address only", "Ok.\n\n26.06.2014, 14:41, \"Alexander L\" <abc@example.com>:\n> Hello", "Ok."},
		{"zoho dashes", "Regards\n\n---- On Tue, 22 Dec 2015 14:17:36 +0530 Sam <sam@example.com> wrote ----\n\nquoted", "Regards"},
		{"via wrote", "Sure.\n\ncodinghorror via Discourse Meta <info@example.org> wrote:\n>hello", "Sure."},
		{"bottom post", "On 04/02/2012 06:26 PM, Megan One wrote:\n> Hi\nHello", "Hello"},
		{"quoted header in a quote block", "Hello\n> On 22 Aug 2015, at 19:21, Adam <adam@example.com> wrote:\n>\n> Hi there!", "Hello"},

		// Separators and embedded header blocks.
		{"outlook original message", "Hello\n\n-----Original Message-----\nFrom: bob <bob@example.com>\nSent: Mon, Apr 2, 2012 5:49 pm\nSubject: Test\n\nHi", "Hello"},
		{"outlook header block", "Hello\n\nFrom: Bob [mailto:bob@example.com]\nSent: Friday, June 27, 2014 12:06 PM\nTo: Alice\nSubject: Test\n\nHi", "Hello"},
		{"outlook rule and bold fields", "Hello\n\n________________________________\n*From:* Bob <bob@example.com>\n*Sent:* Monday\n*To:* Alice\n\nHi", "Hello"},
		{"outlook on behalf of", "Hello\n\nFrom: Foo [mailto:foo@example.com]\nOn Behalf Of bar@example.com\nSent: Monday, January 01, 2000 12:00 AM\nTo: john@example.com\n\nHi", "Hello"},
		{"outlook german", "Hallo\n\nVon: Bob <bob@example.de>\nGesendet: Montag, 1. Januar 2024 10:00\nAn: Alice\nBetreff: Test\n\nHi", "Hallo"},
		{"outlook french with spaces", "Bonjour\n\n   De : Bob<mailto:bob@example.fr>\n   Envoyé le :jeudi 15 décembre 2016 09:35\n   À : alice@example.fr\n   Objet :Test\n\nHi", "Bonjour"},
		{"outlook spanish", "Hola\n\n-----Mensaje original-----\nDe: \"Miguel\" <m@example.es>\nEnviado: 16/02/2016 14:53\nPara: \"x\" <x@example.es>\nAsunto: Test", "Hola"},
		{"outlook chinese", "好的\n\n发件人: Bob <bob@example.cn>\n发送时间: 2017年8月2日 15:37\n收件人: Alice\n主题: Test\n\n你好", "好的"},
		{"hotmail date first", "Hi.\n\n________________________________\nDate: Thu, 26 Jun 2014 13:53:45 +0400\nSubject: Test\nFrom: abc@example.com\nTo: alex@example.com\n\nHello!", "Hi."},
		{"gmail forward", "FYI\n\n---------- Forwarded message ---------\nFrom: Foo <foo@example.com>\nDate: Tue, Jan 01, 2019 at 12:00 PM\nSubject: Hi\nTo: <bar@example.com>\n\nBody", "FYI"},
		{"forward without comment", "---------- Forwarded message ----------\nFrom: Some One <foo@example.com>\nDate: Thu, Jan 28, 2016 at 4:00 PM\nSubject: Some subject that\nspans over 2 lines\nTo: info@example.org\n\n\nThe forwarded text.", "The forwarded text."},
		{"apple forward", "See below.\n\nBegin forwarded message:\n\nFrom: Bob <bob@example.com>\nSubject: Hi\nDate: 1 January 2024 at 10:00:00 CET\nTo: Alice <alice@example.com>\n\nBody", "See below."},
		{"german original message", "Gruß\n\n-----Ursprüngliche Nachricht-----\nVon: A <a@example.de>\nGesendet: Do 11 Februar 2016 11:23\nAn: B\nBetreff: X\n\nHallo", "Gruß"},
		{"chinese original message", "好\n\n------------------ 原始邮件 ------------------\n发件人: A\n\n内容", "好"},

		// Signatures.
		{"sig dash dash space", "Hello\n\n-- \nJohn Doe\nACME Inc.", "Hello"},
		{"sig dash dash", "Hello\n--\nrick", "Hello"},
		{"sig then quote", "Hello \n\n-- \nxxx\nSent with Sparrow (http://www.sparrowmailapp.com/?sig)\n\n\nOn Tuesday, April 3, 2012 at 4:55 PM, xxx wrote:\n\n> Hello", "Hello"},
		{"iphone", "Hello\n\nSent from my iPhone\n\nOn Apr 3, 2012, at 4:19 PM, bob <bob@example.com> wrote:\n\n> Hi", "Hello"},
		{"iphone only", "Hello\n\nSent from my iPhone", "Hello"},
		{"outlook ios", "Sure thing.\n\nGet Outlook for iOS<https://aka.ms/o0ukef>", "Sure thing."},
		{"outlook mobile", "Thank you.\n\nSent from Outlook Mobile<https://foo.bar>", "Thank you."},
		{"french iphone", "Merci\n\nEnvoyé de mon iPhone", "Merci"},
		{"german iphone", "Danke\n\nVon meinem iPhone gesendet", "Danke"},
		{"german k9", "Ok\n\nDiese Nachricht wurde von meinem Android-Mobiltelefon mit K-9 Mail gesendet.", "Ok"},
		{"spanish iphone", "Vale\n\nEnviado desde mi iPhone", "Vale"},
		{"italian iphone", "Va bene\n\nInviato da iPhone", "Va bene"},
		{"dutch iphone", "Prima\n\nVerstuurd vanaf mijn iPhone", "Prima"},
		{"swedish iphone", "Okej\n\nSkickat från min iPhone", "Okej"},
		{"norwegian iphone", "Greit\n\nSendt fra min iPhone", "Greit"},
		{"polish", "Dobrze\n\nWysłane z iPhone'a", "Dobrze"},
		{"russian iphone", "Хорошо\n\nОтправлено с iPhone", "Хорошо"},
		{"chinese iphone", "好的\n\n发自我的iPhone", "好的"},
		{"japanese iphone", "了解\n\niPhoneから送信", "了解"},
		{"windows mail", "Great thanks.\nBraxton\n\nSent from Mail for Windows 10\n\nFrom: Bort\nSent: April 9, 2020 2:02 PM\nTo: b@example.com\nSubject: Re: x\n\nHere.", "Great thanks.\nBraxton"},
		{"name above via mobile", "Thanks, that works.\n\nStavros Xxxxxx\nvia mobile", "Thanks, that works."},
		{"dash name", "Hi folks\n\nA question.\n\n-Abhishek Kona\n\n\n_______________________________________________\nriak-users mailing list\nriak-users@lists.basho.com\nhttp://lists.basho.com/mailman/listinfo/riak-users", "Hi folks\n\nA question."},
		{"rule then contact details", "Answer.\n\n----------------\n\nJohn Doe\n\nt. 555-931-0702\n\nhttp://example.com/", "Answer."},
		{"trailing contact block", "Answer.\n\nGina Xxxxxxxxx\ngina@example.com\n(555) 346-9947\nwww.example.com", "Answer."},
		{"trailing contact block keeps sign-off", "Answer.\n\nBest,\nGina Xxxxxxxxx\ngina@example.com\n(555) 346-9947\nwww.example.com", "Answer.\n\nBest,"},

		// Things that must stay.
		{"contact details asked for", "Please call me back:\n\nJohn Doe\n+1 555 123 4567\njohn@example.com", "Please call me back:\n\nJohn Doe\n+1 555 123 4567\njohn@example.com"},
		{"sign-off stays", "This is the reply.\n\nThanks,\nSome One", "This is the reply.\n\nThanks,\nSome One"},
		{"dashes inside a line", "And here is a fix -- this is not a signature.\n\nkthxbai", "And here is a fix -- this is not a signature.\n\nkthxbai"},
		{"sent from prose", "Here is another email\n\nSent from my desk, is much easier then my mobile phone.", "Here is another email\n\nSent from my desk, is much easier then my mobile phone."},
		{"sent from the office", "Hi\n\nSent from the office yesterday", "Hi\n\nSent from the office yesterday"},
		{"on without wrote", "On Thursday:\n\nWe meet.\n\nOn Friday:\n\nWe rest.", "On Thursday:\n\nWe meet.\n\nOn Friday:\n\nWe rest."},
		{"not greedy on", "Intro.\n\nOn this day\n\nI wrote something\n\nwhich was very interesting.\n\nOn 28 Jan 2016, at 19:04, Some One wrote:\n\n> Did you?", "Intro.\n\nOn this day\n\nI wrote something\n\nwhich was very interesting."},
		{"prose with a date and wrote", "Hi,\n\nOn 3 May I wrote to you about my order:\n\nOrder 123 never arrived.\n\nThanks", "Hi,\n\nOn 3 May I wrote to you about my order:\n\nOrder 123 never arrived.\n\nThanks"},
		{"prose with year and wrote", "In 2019 I wrote the following:\n\nsteps 1 to 3", "In 2019 I wrote the following:\n\nsteps 1 to 3"},
		{"one is not on", "Thanks.\n\nOne outstanding question I had:\n\nLocally...\n\nOn Oct 1, 2012, at 11:55 PM, Dave wrote:\n\n> The good news", "Thanks.\n\nOne outstanding question I had:\n\nLocally..."},
		{"to line without from", "Hello\n\nTo: all staff\nSubject: party\n\nSee you.", "Hello\n\nTo: all staff\nSubject: party\n\nSee you."},
		{"rule without contact details", "Log:\n-----\nerror 1\nerror 2\n-----\nThat is all.", "Log:\n-----\nerror 1\nerror 2\n-----\nThat is all."},
		{"bullets", "Items:\n\n- first\n- Second\n\n-- \nsig", "Items:\n\n- first\n- Second"},
		{"ls output", "look\n\n-rw------- 1 http http 62 Feb 15 12:45 sess_07\n-rw------- 1 http http 0 Feb 15 10:18 sess_0g", "look\n\n-rw------- 1 http http 62 Feb 15 12:45 sess_07\n-rw------- 1 http http 0 Feb 15 10:18 sess_0g"},

		// Quotes.
		{"quote then text kept", "> This is a quote.\n\nAnd this is some text.", "> This is a quote.\n\nAnd this is some text."},
		{"trailing quote dropped", "My answer.\n\n> the question", "My answer."},
		{"inline reply kept", "Hi,\nOn Tue, 2011-03-01 at 18:02 +0530, Bob wrote:\n> question 1\n\nanswer 1\n\n> question 2\n\nanswer 2\n\n> old signature",
			"Hi,\nOn Tue, 2011-03-01 at 18:02 +0530, Bob wrote:\n> question 1\n\nanswer 1\n\n> question 2\n\nanswer 2"},
		{"answer below a greeting and a quote", "Hi Bob,\n\nOn Mon, 1 Jan 2024 at 10:00, Bob <bob@example.com> wrote:\n> Can you ship on Monday?\n\nYes, we can ship on Monday.\n\nThanks\n\n-- \nAlice",
			"Hi Bob,\n\nOn Mon, 1 Jan 2024 at 10:00, Bob <bob@example.com> wrote:\n> Can you ship on Monday?\n\nYes, we can ship on Monday.\n\nThanks"},
		{"signature below the quote of a top post", "Yes, we can ship on Monday, and the invoice follows.\n\nOn Mon, 1 Jan 2024 at 10:00, Bob <bob@example.com> wrote:\n> Can you ship on Monday?\n\nAlice Smith\nACME Corp",
			"Yes, we can ship on Monday, and the invoice follows."},
		{"text after header quote is the sender's signature", "Okay.\n\nBob <bob@example.com> schrieb am Di., 16. Aug. 2016 um 12:52 Uhr:\n\n> Hi\n>\n--\nViele Grüße\n\nBob", "Okay."},
		{"lazy quote continuation", "Text.\n\nOp 12 december 2016 19:05 schreef Q <q@example.com>:\n\n> \"In efficitur augue ac tristique ullamcorper. Aenean tincidunt ornare diam,\neget accumsan est viverra quis.\"\n>", "Text."},

		// Everything quoted: the input comes back, trimmed.
		{"quote only", "\n> Email with only quote.\n", "> Email with only quote."},
		{"header and quote only", "On Mon, 1 Jan 2024 at 10:00, Bob <bob@example.com> wrote:\n> hi\n", "On Mon, 1 Jan 2024 at 10:00, Bob <bob@example.com> wrote:\n> hi"},
		{"signature only", "Sent from my iPhone\n\nOn Mon, 1 Jan 2024 at 10:00, Bob <bob@example.com> wrote:\n> hi", "Sent from my iPhone\n\nOn Mon, 1 Jan 2024 at 10:00, Bob <bob@example.com> wrote:\n> hi"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Strip(tc.in); got != tc.want {
				t.Errorf("Strip(%q)\n got: %q\nwant: %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, reply, quoted string
	}{
		{"nothing elided", "Hello", "Hello", ""},
		{"history below", "Hello\n\nOn Mon, 1 Jan 2024 at 10:00, Bob <bob@example.com> wrote:\n> hi\n",
			"Hello", "On Mon, 1 Jan 2024 at 10:00, Bob <bob@example.com> wrote:\n> hi"},
		{"history above", "On 04/02/2012 06:26 PM, Megan One wrote:\n> Hi\n\nHello\n",
			"Hello", "On 04/02/2012 06:26 PM, Megan One wrote:\n> Hi"},
		{"history above and signature below", "On 04/02/2012 06:26 PM, Megan One wrote:\n> Hi\n\nHello\n\n-- \nMe\n",
			"Hello", "On 04/02/2012 06:26 PM, Megan One wrote:\n> Hi\n\n-- \nMe"},
		{"all quoted", "> a\n> b", "> a\n> b", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reply, quoted := Split(tc.in)
			if reply != tc.reply || quoted != tc.quoted {
				t.Errorf("Split(%q)\n got: %q, %q\nwant: %q, %q", tc.in, reply, quoted, tc.reply, tc.quoted)
			}
		})
	}
}

// TestQuotationStageKeepsSignature pins the option the corpus test uses for
// talon's quotation fixtures.
func TestQuotationStageKeepsSignature(t *testing.T) {
	t.Parallel()
	in := "Hello\n\nSent from my iPhone\n\nOn Apr 3, 2012, at 4:19 PM, bob <bob@example.com> wrote:\n\n> Hi"
	if got, _ := split(in, options{keepSignature: true}); got != "Hello\n\nSent from my iPhone" {
		t.Errorf("quotation stage = %q", got)
	}
	if got := Strip(in); got != "Hello" {
		t.Errorf("Strip = %q", got)
	}
}

// TestDateHeaderFormats runs the quote headers of willdurand's
// EmailParserTest::getDateFormats through email_with_date_headers.txt, as
// that test does (the manifest states no expectation for the file because
// it is a template).
func TestDateHeaderFormats(t *testing.T) {
	t.Parallel()
	tmpl := readFixture(t, "willdurand-emailreplyparser/email_with_date_headers.txt")
	for _, date := range []string{
		"On Tue, 2011-03-01 at 18:02 +0530, Abhishek Kona wrote:",
		"2014-03-20 8:48 GMT+01:00 Rémi Dolan <do_not_reply@dolan.com>:",
		"2014-03-20 20:48 GMT+01:00 Rémi Dolan <do_not_reply@dolan.com>:",
		"2014-03-09 20:48 GMT+01:00 Rémi Dolan <do_not_reply@dolan.com>:",
		"Le 19 mars 2014 10:37, Cédric Lombardot <cedric.lombardot@gmail.com> a écrit :",
		"El 19/03/2014 11:34, Juan Pérez <juan.perez@mailcatch.com> escribió:",
		"W dniu 7 stycznia 2015 15:24 użytkownik Paweł Brzoski <pbrzoski91@gmail.com> napisał:",
		"Le 19/03/2014 11:34, Georges du chemin a écrit :",
		"W dniu 2015-01-07 14:23, pbrzoski91@gmail.com pisze: ",
		"Den 08/06/2015 kl. 21.21 skrev Test user <test@example.com>:",
		"Am 25.06.2015 um 10:55 schrieb Test user:",
		"Test user <test@example.com> schrieb:",
		"在 2016年11月8日，下午2:23，Test user <test@example.com> 写道：",
		"2016. 11. 8. 오후 12:39 Test user <test@example.com> 작성:",
		"2016/11/08 14:26、Test user <test@example.com> のメッセージ:",
	} {
		if got := Strip(strings.Replace(tmpl, "[DATE]", date, 1)); got != "Thank you very much." {
			t.Errorf("header %q: Strip = %q", date, got)
		}
	}
}

// TestOwnExpectations holds the corpus fixtures whose source states no
// expectation to results we reviewed by hand, and checks that Strip (with
// signatures removed) reduces every talon standard reply to "Hello".
func TestOwnExpectations(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"github-email_reply_parser/email_2_3.txt":                             "Outlook with a reply directly above line",
		"zapier-email-reply-parser/email_1_7.txt":                             ":+1:",
		"zapier-email-reply-parser/email_2_3.txt":                             "Outlook with a reply above headers using unusual format",
		"zapier-email-reply-parser/email_gmail.txt":                           "This is a test for inbox replying to a github message.",
		"zapier-email-reply-parser/email_sig_delimiter_in_middle_of_line.txt": "Hi there!\n\nStuff happened.\n\nAnd here is a fix -- this is not a signature.\n\nkthxbai",
		"zapier-email-reply-parser/email_partial_quote_header.txt":            "On your remote host you can run:\n\n     telnet 127.0.0.1 52698\n\nThis should connect to TextMate (on your Mac, via the tunnel). If that\nfails, the tunnel is not working.",
		"zapier-email-reply-parser/greedy_on.txt":                             "On your remote host you can run:\n\n     telnet 127.0.0.1 52698\n\nThis should connect to TextMate (on your Mac, via the tunnel). If that\nfails, the tunnel is not working.",
		"willdurand-emailreplyparser/email_19.txt":                            "On Thursday, I get proper rendering.",
		"willdurand-emailreplyparser/email_20.txt":                            "On Thursday.",
		"willdurand-emailreplyparser/email_2_1.txt":                           "Outlook with a reply",
		"willdurand-emailreplyparser/email_bullets.txt":                       "test 2 this should list second\n\nand have spaces\n\nand retain this formatting\n\n\n   - how about bullets\n   - and another",
		"willdurand-emailreplyparser/email_custom_quote_header.txt":           "Thank you!",
		"willdurand-emailreplyparser/email_customer_quote_header_3.txt":       "bonjour,\nje n'ai pas eu de retour sur ma précision..\nmerci d'avance",
		"willdurand-emailreplyparser/email_norwegian_gmail.txt":               readFixture(t, "willdurand-emailreplyparser/_expected/COMMON_FIRST_FRAGMENT.txt"),
		"willdurand-emailreplyparser/email_one_is_not_on.txt":                 "Thank, this is really helpful.\n\nOne outstanding question I had:\n\nLocally (on development), when I run...",
		"willdurand-emailreplyparser/email_sent_from_my_not_signature.txt":    "Here is another email\n\nSent from my desk, is much easier then my mobile phone.",
		"willdurand-emailreplyparser/email_thread.txt":                        "This is new email reply in thread from bellow.",
		"willdurand-emailreplyparser/email_unquoted_reply.txt":                "This is my reply.",
		"willdurand-emailreplyparser/email_w10_mail.txt":                      "Great thanks Bort, going for a test now.\nBraxton",
		"willdurand-emailreplyparser/email_zimbra_free_en.txt":                "Bonjour Toby,\n\n\u200bText paragraph 1\u200b\n\nOn this line is the issue\n\n\u200bText paragraph 2\u200b\n\nMichael Scott",
		"willdurand-emailreplyparser/sig_no_empty_line.txt":                   "this is an email with a signature with no empty line above.",
	}
	for path, want := range tests {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			if got := normText(Strip(readFixture(t, path))); got != normText(want) {
				t.Errorf("Strip:\n got: %q\nwant: %q", got, normText(want))
			}
		})
	}

	t.Run("talon raw replies", func(t *testing.T) {
		t.Parallel()
		files, err := filepath.Glob(filepath.Join("testdata", "talon", "standard_replies", "*.eml"))
		if err != nil || len(files) == 0 {
			t.Fatalf("glob talon replies: %v (%d files)", err, len(files))
		}
		for _, f := range files {
			body, err := plainPart(readFixture(t, filepath.ToSlash(strings.TrimPrefix(f, "testdata"+string(filepath.Separator)))))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if got := Strip(body); got != "Hello" {
				t.Errorf("%s: Strip = %q, want %q", f, got, "Hello")
			}
		}
	})

	t.Run("talon quotations share block", func(t *testing.T) {
		t.Parallel()
		// talon asserts only that the result is non-empty and holds no
		// "From"; we know the exact reply.
		body, err := plainPart(readFixture(t, "talon/reply-quotations-share-block.eml"))
		if err != nil {
			t.Fatal(err)
		}
		got := Strip(body)
		if !strings.HasPrefix(got, "Hi Katharine.") || !strings.HasSuffix(got, "\nJoe XXX") || strings.Contains(got, "From") {
			t.Errorf("Strip = %q", got)
		}
	})
}
