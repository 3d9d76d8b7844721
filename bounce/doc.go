// Package bounce reads delivery failure reports: it tells whether a raw mail
// is a bounce, which recipients failed and how, and which of our messages
// bounced, so that the ticket engine can thread the bounce to the ticket of
// that message and stop writing to an address that cannot receive mail.
//
// It owns the parsing only; nothing here stores, threads or sends. Two kinds
// of report are understood:
//
//   - "dsn": RFC 3464 delivery status notifications (multipart/report;
//     report-type=delivery-status, or any message/delivery-status part). The
//     per-recipient field groups are read by this package, tolerating missing
//     blank lines, runs of blank lines and fields that slipped into the MIME
//     part header.
//   - "heuristic": the non-standard reports of qmail, Exim, Postfix and
//     Sendmail without DSN, Exchange and Office 365, Gmail, Lotus Notes and
//     others, recognised by their sender, subject and stock phrases. Failed
//     addresses, SMTP reply codes (basic and RFC 3463 enhanced) and the
//     diagnostic line are picked out of the human-readable text.
//
// The returned message is found in a message/rfc822 or text/rfc822-headers
// part, or else as a quoted header block inside the text; its Message-ID and
// References let the caller find the ticket of the mail that bounced.
//
// Invariants:
//   - Parse never panics and its work is bounded: it looks at no more than
//     the first MiB of a mail, visits a bounded number of MIME parts and
//     nesting levels, and reads a bounded number of bytes from each part.
//     All scanning is linear in what it reads (RE2 regular expressions).
//   - Addresses are lower-case; Message-IDs carry no angle brackets;
//     diagnostics are one line of valid UTF-8 without control characters and
//     at most 300 characters.
//   - A report whose recipients were all delivered, relayed or expanded (a
//     success notice) is not a bounce, although its Kind says how it was read.
//   - The package has no mutable global state and does no I/O.
package bounce
