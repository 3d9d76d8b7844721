package quote

import (
	"regexp"
	"strings"
)

// The word lists and expressions below are the package's knowledge of what
// mail clients write. They are compiled once and never modified, so sharing
// them between goroutines is safe. Every expression is applied to a single
// line or to a window of at most maxHeaderLines short lines (see lines.go),
// so even a huge body is scanned in linear time; Go's RE2 engine guarantees
// linear matching for each call.

// prefixWords open an "On <date>, <someone> wrote:" style reply header in
// the languages we know (see headerPrefix). The header check additionally
// demands a digit and a "wrote" verb, so "On Thursday:" or "Am Ende" never
// qualify on their own. The value is true for words that also occur inside
// a wrapped header ("On Nov 21, 2014," / "at 10:18,"), which therefore do
// not start a new header on a continuation line.
var prefixWords = map[string]bool{
	"on": false, "le": false, "am": false, "el": false, "op": false, "il": false,
	"em": false, "den": false, "dnia": false, "dňa": false, "dne": false,
	"at": true, "v": true, "pe": true, "på": true, "в": true,
}

// verbs are the lower-cased "wrote" verbs of reply headers. They are found
// with plain substring search (see lastVerb) and must stand as words; Go's
// \b only knows ASCII word characters, so the boundary test is by hand.
var verbs = []string{
	"wrote", "writes", "a écrit", "a ecrit", "nous a dit", "schrieb", "schreef",
	"geschrieben", "het volgende geschreven", "escribió", "escribio", "ha scritto",
	"scrisse", "escreveu", "skrev", "skrivit", "pisze", "napisał(a)", "napisał",
	"napisała", "napisal(a)", "napisal", "napisala", "написал(а)", "написала",
	"написал", "написав", "пише", "писал", "kirjoitti", "írta", "napsal(a)",
	"napsal", "napísal", "yazdı", "έγραψε",
}

// cjkVerbs need no word boundary.
var cjkVerbs = []string{"写道", "寫道", "のメッセージ", "작성", "が書きました"}

// dateEmailRE: "<date> <someone> <address>:" without a verb, as written by
// Gmail in some locales, Yandex, Mail.ru and old Gmail ("2013/7/20 sam
// <info@example.org>"). The address must end the header.
var dateEmailRE = regexp.MustCompile(`(?i)\d{4}.{0,160}?<?\s*[\w.+'=-]+@[\w-]+(?:\.[\w-]+)+\s*>?\s*[:：]?$`)

// timeOrDateRE demands a clock time or a numeric date in dateEmailRE
// headers, so a sentence that merely ends with an address and contains a
// year does not count.
var timeOrDateRE = regexp.MustCompile(`\d{1,2}:\d\d|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}`)

// isoGMTRE: Gmail's "2016-03-03 17:21 GMT+01:00 Some One" (the address may
// follow on the next line or be missing altogether).
var isoGMTRE = regexp.MustCompile(`^\s*\d{4}-\d\d-\d\d \d{1,2}:\d\d GMT[+-]\d{1,2}:\d\d\s+\S`)

// separatorRE: "-----Original Message-----", "---------- Forwarded message
// ---------", "*-------- Original Message --------*", "Begin forwarded
// message:" and their translations. One leading ^ outside the alternation
// lets the engine try the start of the line only.
var separatorRE = regexp.MustCompile(`(?i)^(?:[\s>*_]*[-–—=_]{2,}\s*(?:original message|forwarded message|reply message|original mail|message d'origine|message transféré|message transfere|ursprüngliche nachricht|ursprungliche nachricht|weitergeleitete nachricht|originalnachricht|mensaje original|mensaje reenviado|messaggio originale|messaggio inoltrato|oorspronkelijk bericht|origineel bericht|doorgestuurd bericht|originalmeddelande|ursprungligt meddelande|vidarebefordrat meddelande|opprinnelig melding|videresendt melding|oprindelig meddelelse|videresendt meddelelse|alkuperäinen viesti|välitetty viesti|wiadomość oryginalna|oryginalna wiadomość|przekazana wiadomość|původní zpráva|přeposlaná zpráva|исходное сообщение|оригинальное сообщение|пересылаемое сообщение|пересланное сообщение|原始邮件|原始郵件|转发邮件|轉寄郵件|元のメッセージ|転送されたメッセージ|mensagem original|mensagem encaminhada|eredeti üzenet|orijinal mesaj)\s*[-–—=_]{2,}[\s*_]*$|[\s>*]*(?:begin forwarded message|début du message transféré|début du message réexpédié|anfang der weitergeleiteten nachricht|inicio del mensaje reenviado|comienzo del mensaje reenviado|inizio messaggio inoltrato|begin doorgestuurd bericht|início da mensagem reencaminhada|vidarebefordrat brev)\s*[:：])`)

// fieldNames maps the lower-cased names of embedded header fields ("From",
// "Sent", "De", "Gesendet", "发件人", …) to whether they name the sender.
var fieldNames = func() map[string]bool {
	m := make(map[string]bool, len(fromFields)+len(otherFields))
	for _, f := range otherFields {
		m[f] = false
	}
	for _, f := range fromFields {
		m[f] = true
	}
	return m
}()

// maxFieldName bounds where the colon of a header field may be: the longest
// name plus decoration ("   *Beantwoorden - Aan* :").
const maxFieldName = 48

// fromFields name the sender in an embedded header block; a block needs one.
var fromFields = []string{
	"from", "de", "von", "da", "van", "från", "fra", "frá", "od", "от", "від",
	"发件人", "寄件人", "寄件者", "差出人", "보낸 사람", "보낸사람", "feladó",
	"lähettäjä", "kimden", "afzender", "expéditeur", "remitente", "mittente",
	"message du", "auteur",
}

var otherFields = []string{
	"sent", "date", "to", "cc", "bcc", "subject", "reply-to", "sent by",
	"envoyé le", "envoyé", "envoye", "à", "a", "objet", "sujet", "copie à", "copie",
	"gesendet", "datum", "an", "betreff", "kopie", "inviato il", "inviato", "data",
	"oggetto", "risposta", "rispondi a", "verzonden", "aan", "onderwerp",
	"beantwoorden - aan", "antwoord aan", "skickat", "till", "ämne", "kopia",
	"sendt", "til", "emne", "kopi", "enviado el", "enviado em", "enviada em",
	"enviado", "fecha", "para", "asunto", "assunto", "wysłano", "wysłane", "do",
	"temat", "dw", "отправлено", "дата", "кому", "копия", "тема", "відправлено",
	"发送时间", "发送日期", "日期", "时间", "收件人", "抄送", "主题", "主旨",
	"送信日時", "日時", "宛先", "件名", "날짜", "보낸 날짜", "받는 사람", "제목",
	"lähetetty", "vastaanottaja", "aihe", "päivämäärä", "tárgy", "címzett",
	"dátum", "küldve", "konu", "tarih", "kime", "gönderildi",
}

// mobileSigRE matches the one-line signatures that mail apps append ("Sent
// from my iPhone", "Von meinem iPhone gesendet", "Get Outlook for iOS"). It
// runs on a line whose links were reduced to their text and that is at most
// maxMobileSigLen long. "Sent from" needs "my", an article or a known app
// name, so "Sent from my desk, is much easier…" and "Sent from the office"
// stay text.
var mobileSigRE = regexp.MustCompile(`(?i)^[(<\[*_\s]*(?:` + strings.Join([]string{
	`sent (?:from|with|via|using|by) my [^,;!?]{1,40}`,
	`sent (?:from|with|via|using) (?:a|an) [^,;!?]{1,40}`,
	`sent (?:from|with|via|using|by) (?:outlook|mail for|yahoo|gmail|samsung|galaxy|proton ?mail|windows|iphone|ipad|android|blackberry|mobile|phone|sparrow|airmail|spark|superhuman|mailbird|blue ?mail|newton|aol|huawei|xiaomi|motorola|nokia|fastmail|zoho|edison|mymail|nine|canary|tutanota|hey)[^,;!?]{0,40}`,
	`get outlook for \S.{0,30}`,
	`envoy[ée] (?:de|depuis) (?:mon|ma|l'application|yahoo|outlook|gmail)[^,;!?]{0,40}`,
	`von meinem [^,;!?]{1,40} gesendet`,
	`gesendet von (?:meinem|mein|iphone|ipad|outlook|yahoo|gmail|samsung|android)[^,;!?]{0,40}`,
	`diese nachricht wurde von [^,;!?]{1,60} gesendet\.?`,
	`enviad[oa] (?:desde|do|de|a partir do) (?:mi|meu|o meu|my|el|la|o|yahoo|outlook)[^,;!?]{0,40}`,
	`inviato da [^,;!?]{1,40}`,
	`(?:verzonden|verstuurd) (?:met|vanaf|van) [^,;!?]{1,40}`,
	`sendt fra [^,;!?]{1,40}`,
	`skickat från [^,;!?]{1,40}`,
	`från min [^,;!?]{1,40}`,
	`lähetetty [^,;!?]{1,40}`,
	`wysłane (?:z|ze) [^,;!?]{1,40}`,
	`odesláno z [^,;!?]{1,40}`,
	`отправлено (?:с|из) [^,;!?]{1,40}`,
	`надіслано (?:з|із) [^,;!?]{1,40}`,
	`[\p{L}]+ (?:from|via) mobile`,
	`(?:sent )?(?:via|from) (?:my )?(?:mobile|phone)(?: device| phone)?`,
	`(?:從我的|从我的|发自我的|發自我的|来自我的|來自我的)\s*\S.{0,20}`,
	`\S.{0,20}から送信`,
	`\S.{0,20}에서 보냄`,
}, "|") + `)[)>\]*_.\s]*$`)

const maxMobileSigLen = 80

// mobileKeywords prefilter mobileSigRE: a lower-cased line without any of
// them cannot match it.
var mobileKeywords = []string{
	"sent", "outlook", "envoy", "gesendet", "enviad", "inviato", "verzonden",
	"verstuurd", "sendt", "skickat", "från", "lähetetty", "wysłane", "odesláno",
	"отправлено", "надіслано", "mobile", "phone", "我的", "から送信", "에서 보냄",
}

// markdownLinkRE and angleURLRE reduce markdown links "[text](url)" to
// their text and angle-bracketed URLs "<https://…>" to nothing before
// mobileSigRE runs ("Sent from Outlook Mobile<https://…>").
var (
	markdownLinkRE = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	angleURLRE     = regexp.MustCompile(`<[^>\s]*(?:://|@|mailto:)[^>]*>`)
)

// dashNameRE: a one-line signature of the form "-Abhishek Kona".
var dashNameRE = regexp.MustCompile(`^-\p{Lu}[\p{L}.'’]*(?:\s+\p{L}[\p{L}.'’]*){0,3}\s*$`)

// ruleRE: a line made only of separator characters ("______", "-----",
// "=====", "* * *" is not included on purpose).
var ruleRE = regexp.MustCompile(`^[\s\x{a0}]*[-_=~*#+—–•·ᐧ]{3,}[\s\x{a0}]*$`)

// Contact details mark a trailing block of short lines as a signature.
var (
	emailRE = regexp.MustCompile(`[\w.+'-]+@[\w-]+(?:\.[\w-]+)+`)
	urlRE   = regexp.MustCompile(`(?i)(?:https?://|www\.)\S`)
)

// closingRE matches the start of a sign-off line ("Thanks Bob"), which must
// not be taken for the sender's name above a mobile signature.
var closingRE = regexp.MustCompile(`(?i)^(?:thanks|thank you|thx|cheers|regards|best|kind regards|best regards|br|greetings|danke|merci|gracias|grazie|bedankt|tack|takk|dzięki|спасибо|ciao|bye|love|yours|sincerely)\b`)
