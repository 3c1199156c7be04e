// Package autoreply is Mailroom's automatic replies: a person's out-of-office notice, a group's
// acknowledgement and a closed mailbox's notice. It decides when one must not be sent (RFC 3834,
// RFC 5230 Sieve vacation, modelled on Dovecot Pigeonhole) and renders what one says. It sends
// nothing.
package autoreply

import (
	"github.com/mailroom/mailroom/shared/mail"
	"github.com/mailroom/mailroom/shared/routing"
)

// Kinds of automatic reply.
const (
	KindOutOfOffice     = "out-of-office"   // a person's vacation reply
	KindAcknowledgement = "acknowledgement" // a group's "we received your message"
	KindClosed          = "closed-mailbox"  // "no longer with us, write to …"
	// KindHolding is an SLA policy's "we need more time" to a customer whose answer is late;
	// it has shipped texts but no setting of its own.
	KindHolding = "holding"
)

// Incoming is what the decision to reply looks at: one received message, as seen by one
// mailbox or group that would reply to it.
type Incoming struct {
	Kind string
	// EnvelopeFrom is the SMTP MAIL FROM, where a reply goes (RFC 3834 §4); "" for the null
	// sender of bounces and other notifications.
	EnvelopeFrom string
	// Recipient is the address that would reply, normalised to lower case.
	Recipient string
	// Addresses are every address of the replying mailbox or group, its aliases and Recipient
	// included.
	Addresses []string
	// Header is the message's top-level header fields as received.
	Header mail.Header
	// ContentType is the top-level media type in lower case ("multipart/report"), and
	// ContentTypeParams its parameters.
	ContentType       string
	ContentTypeParams map[string]string
	// PartTypes are the lower-case media types of the message's parts below the top level,
	// leaving out those of messages attached to it; PartTypesOf(m) reads them from mail.Parse.
	PartTypes []string
	// Verdicts are SES's spam, virus, SPF, DKIM and DMARC checks.
	Verdicts routing.Verdicts
}

// Verdict says whether to reply and, when not, which rule said so.
type Verdict struct {
	Reply bool `json:"reply"`
	// Rule is the stable id of the rule that forbids a reply, e.g. "auto-submitted".
	Rule string `json:"rule,omitempty"`
	// Reason is for a person: what the rule saw, then its source in parentheses, e.g.
	// "Auto-Submitted: auto-replied (RFC 3834 §2, §5; RFC 5230 §4.6)".
	Reason string `json:"reason,omitempty"`
	// Source is what the rule follows: "RFC 3834 §2", "Pigeonhole vacation: list headers".
	Source string `json:"source,omitempty"`
}
