// Package threading turns one raw inbound mail into a Message and decides which
// ticket it belongs to.
//
// It owns four things:
//
//   - Parse: a tolerant, bounded RFC 5322/MIME reader built on go-message with
//     every charset registered. Broken input is accepted wherever something
//     useful can still be read; each tolerated defect is recorded in
//     Message.Warnings. Parse never panics and its work is bounded by Limits
//     (MIME parts, nesting depth, header and text size), so nesting bombs,
//     10,000-part messages and megabyte headers cost time and memory linear in
//     the input at worst. ParseReader is Parse for a stream: the same result
//     for every input, in memory bounded by Limits instead of the mail's size.
//   - Subject tags: FindTag, AddTag and BaseSubject ("[Ticket#1042]", RFC 5256
//     base subjects with localized reply prefixes).
//   - Tokens: our outbound Message-IDs carry the ticket number and an HMAC, so
//     a reply threads back to its ticket even when the subject was changed. A
//     token is either customer-facing or bound to one agent address.
//   - Match: the one fixed order that finds the ticket of a parsed message —
//     known Message-ID (duplicate) → our token in In-Reply-To/References →
//     any known In-Reply-To/References id → subject tag from a participant →
//     new ticket. The rule that matched is returned so it can be recorded.
//
// Invariants:
//   - Message-IDs are stored without angle brackets; index keys are made only by
//     IDKey and Message.DedupeKey, so the same id always yields the same key.
//   - Addresses in Message are lower-cased and trimmed; names and subjects are
//     valid UTF-8 without control characters.
//   - Parse(raw) and ParseReader(reader of raw) return equal Messages (or
//     equal errors, apart from ParseReader's read errors); the walk below the
//     header sees the same read sizes in both, since some fallbacks depend on
//     them (see walker.multipart).
//   - The package has no global mutable state; Tokens, Limits and Lookup are
//     passed in by the caller.
package threading
