// Package bench holds the end-to-end benchmarks: a real Dovecot and an
// in-process SMTP sink on loopback, with helpdesk between them. Run them with
// `make bench`; `go test ./bench` alone runs only a small smoke test.
package bench
