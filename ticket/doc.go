// Package ticket holds the ticket rules: what an inbound mail does to the
// tickets, and which mails that causes.
//
// Invariant: one inbound mail is all or nothing in one store transaction.
// Engine.Handle parses and classifies outside the transaction, then in one
// Update it dedupes, threads, creates or updates the ticket, stores the
// message, queues every outbound mail it causes (acknowledgement, agent
// notifications, the relay of an agent's answer, note copies, command error
// replies), advances the mailbox checkpoint and records the pending \Seen
// flag. Only after that commit may the caller touch the IMAP server.
// Engine.HandleBatch (batch.go) does the same for a group of mails in one
// transaction, in UID order, each mail exactly as Handle would (a failing
// one is taken out and handled alone), and Engine.Prepare lets the inbox
// parse mail while the previous group commits. A big mail's bytes are
// staged ahead (store.Stage) and claimed by its transaction. A mail seen again (re-fetch
// after a crash, a UIDVALIDITY reset) is found by its dedupe key and changes
// nothing but the checkpoint. Inside the transaction every change to a
// ticket is written before the messages that bump its message count.
//
// Customer mail (everything that is not an identified agent):
//   - A new ticket takes the first mail's To/Cc addresses as CCs, less our
//     own addresses (mailboxes, comment addresses, team addresses) and
//     agents. Later mail is threaded by threading.Match; a mail from a CC
//     joins by subject tag like one from the requester, and nothing a mail
//     says ever changes the requester, so a forwarded or BCC'd reply from a
//     non-participant is stored on the ticket without taking it over (it
//     does not even move the thread the relays answer under).
//   - A person's reply reopens a pending or resolved ticket; automated mail
//     (out-of-office, bounces, lists: autoreply.Classify) never does.
//   - A new ticket and every reply from a person cause one notification per
//     recipient: the assignee, else the team (its Email when set, else its
//     agents), else every agent. Each carries a Message-ID token bound to
//     its recipient (threading.Tokens.NewMessageID), Auto-Submitted:
//     auto-generated, the tag in the subject, the customer's new text
//     (quote.Split), the ticket facts and agent.Help().
//
// Agent mail. A mail whose From is a configured agent acts as that agent
// only when all of these hold:
//
//   - In-Reply-To or References holds a token that verifies for the From
//     address (threading.Match reports AgentBound), or for the Email of a
//     team the agent belongs to (a notification sent to a team list);
//   - when Config.TrustedAuthservID is set, agent.Verify accepts the
//     Authentication-Results of the receiving server;
//   - it is not itself automated (an agent's out-of-office answering a
//     notification is recorded as kind agent and does nothing).
//
// Such a mail is stripped (quote.Strip), its command block parsed
// (agent.Parse) and resolved against the configuration and the store. If
// any command is unknown or bad (an unknown agent or team, #cc of an
// address that cannot be one, #merge into itself or a missing ticket), the
// agent gets a short error reply (Auto-Submitted: auto-replied, threaded to
// their mail, itself carrying their token so a corrected reply works) and
// nothing is applied or relayed. Otherwise the commands are applied and:
//   - text marked #note, or mail addressed to the mailbox's comment address,
//     is stored as kind note and copied to the other agents of the ticket
//     (its assignee and every agent who acted on it), never to the customer;
//   - other text is stored as kind agent and relayed, freshly composed (no
//     header of the agent's mail is carried over), from the mailbox address
//     to the requester and CCs who were not already recipients of the
//     agent's mail, threaded under the customer's latest message, and the
//     status becomes pending unless a command set it;
//   - a mail of commands only changes the ticket and sends nothing to the
//     customer;
//   - #assign of another agent sends that agent a notification.
//
// An agent who answered the customer directly with the mailbox in Cc (no
// token; threaded by references or subject; the requester or a CC among
// To/Cc; Authentication-Results passing when required) is recorded as kind
// agent and changes nothing else: the customer already has the mail, and
// without a token anyone can write such a mail, so commands in it are not
// applied and the status is left alone. Anything else from an agent address
// — no token and not sent to the customer, a token bound to another agent,
// a token whose ticket number or MAC was altered, failed
// Authentication-Results — is stored as customer mail (which, coming from an
// agent address, autoreply classifies as our own and so neither reopens,
// notifies nor acknowledges) and logged as a suspected spoof.
//
// Merging. "#merge N" merges the ticket the mail is about into N (after
// following N's own merges): the source is closed and its merged_into set,
// its messages stay where they are, and N gets an internal note saying so.
// From then on every mail that threads to the source (its tokens, its
// Message-IDs, its subject tag) is stored on N, with a warning naming the
// source. Requesters and CCs are not copied to N, so merging two customers'
// tickets never shows one customer's address to the other; an agent adds
// them with #cc when both should hear the answers.
//
// Delivery reports (bounce.go). Automated mail that bounce.Parse reads as
// a failure or delay report is threaded to the ticket of the mail that
// bounced through the returned Message-ID (our outbound ids are indexed in
// msgids), stored there with Automated "bounce", and the bounced message's
// delivery becomes "bounced". A permanent failure of one of that message's
// own recipients puts the address on hold (store.HoldUndeliverable) for
// Config.UndeliverableFor. A report never reopens, acknowledges or mails a
// customer; a bounced agent answer notifies the ticket's agents.
//
// Automatic mail (limits.go). Every acknowledgement, notice, command error
// reply and notification passes one gate in the transaction that queues it:
// holds, a per-address limit, a global limit, and a circuit breaker that
// pauses an address (store.HoldPaused) and alerts the administrator once
// when its limit keeps refusing. An agent's answer to a held address is
// still relayed, with a warning.
//
// Quarantine (quarantine.go). Oversized, unparseable and sender-less mail,
// and mail whose handling panicked (the transaction rolls back first), is
// quarantined in a transaction that also advances the checkpoint, so it is
// never retried for ever; an oversized mail's sender gets one notice, in
// that transaction. Replay and Release take a mail out of quarantine into a
// ticket in one transaction, re-indexing its key so a re-fetch finds it.
package ticket
