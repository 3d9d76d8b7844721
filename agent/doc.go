// Package agent owns what is special about mail written by help-desk agents:
// the command lines at the top of an agent's reply ("#close", "#assign bob")
// and the check that a mail claiming to come from an agent's address really
// does (Verify, from the receiving server's Authentication-Results).
//
// The package is pure: no store, no configuration, no I/O, no logging. It
// decides nothing about tickets; the ticket engine applies what Parse
// returns and resolves agent names and team names against its own
// configuration.
//
// Invariants:
//   - Parse never drops or rewrites text below the command block except for
//     line endings, which it normalises to "\n"; every line of the block is
//     either a Command, an Error or blank (past 50 command lines one Error
//     stands for the rest), so a mistyped command is never mistaken for text
//     to relay to the customer.
//   - A Parsed with Errors must not be applied at all: the caller reports the
//     errors to the agent and relays nothing, so a half-understood mail never
//     changes a ticket.
//   - Verify fails closed: a missing, malformed or untrusted
//     Authentication-Results header, or a pass for an unrelated domain, is
//     never OK.
package agent
