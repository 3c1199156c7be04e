package compose

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/mail"
)

// EscalationOptions describes the notice to a policy's escalation contacts that a conversation
// is nearing its deadline (Breach false) or past it.
type EscalationOptions struct {
	Generated
	Queue    mail.Address // the group or mailbox that owes the answer
	To       []string     // the escalation contacts
	Breach   bool
	Token    string // the conversation's subject token, "[#C7K2QX9PA]"
	Customer string // who is waiting
	Subject  string // the conversation's subject, decoded
	Policy   string // the policy's name
	Target   string // "first response" or "next response"
	Opened   time.Time
	Due      time.Time
	// Waited is the business time the customer has waited for this answer.
	Waited time.Duration
	// Holding is when the customer was told they will hear by, when a holding reply went; zero
	// when none did.
	Holding time.Time
	// Link opens the conversation in the admin API; "" when the API's URL is not known.
	Link string
}

// Escalation writes the warning or breach notice for a conversation. Every value that reaches
// a header goes through the same cleaning as the rest of Mailroom's mail: nothing in a subject
// or an address can add a field.
func Escalation(dst *bytes.Buffer, o EscalationOptions) error {
	const op = "compose.Escalation"
	id, err := o.check(op)
	if err != nil {
		return err
	}
	if _, err := recipient(op, "Queue", o.Queue); err != nil {
		return err
	}
	if len(o.To) == 0 {
		return fault.InvalidField(op, "To", "an escalation needs a contact")
	}
	to := make([]string, 0, len(o.To))
	for _, a := range o.To {
		f, err := recipient(op, "To", mail.Address{Address: a})
		if err != nil {
			return err
		}
		to = append(to, f)
	}
	if o.Link != "" {
		if err := checkLink(op, "Link", o.Link); err != nil {
			return err
		}
	}
	queue := readable(o.Queue)
	var text strings.Builder
	if o.Breach {
		fmt.Fprintf(&text, "The %s promised by %s was due at %s and has not been sent.\n\n", o.Target, queue, o.when(o.Due))
	} else {
		fmt.Fprintf(&text, "The %s promised by %s is due at %s and has not been sent yet.\n\n", o.Target, queue, o.when(o.Due))
	}
	fmt.Fprintf(&text, "Conversation: %s\n", clean(o.Token))
	fmt.Fprintf(&text, "Customer: %s\n", orNone(clean(o.Customer)))
	fmt.Fprintf(&text, "Subject: %s\n", orNone(truncate(clean(o.Subject), 250)))
	fmt.Fprintf(&text, "Opened: %s\n", o.when(o.Opened))
	fmt.Fprintf(&text, "Waiting: %s of business time\n", businessTime(o.Waited))
	fmt.Fprintf(&text, "Policy: %s\n", orNone(clean(o.Policy)))
	if !o.Holding.IsZero() {
		fmt.Fprintf(&text, "\nThe customer has been told they will hear from %s by %s.\n", queue, o.when(o.Holding))
	}
	if o.Link != "" {
		fmt.Fprintf(&text, "\n%s\n", o.Link)
	}
	text.WriteString("\nAnswer the customer to stop the clock, or pause the conversation while it waits on them.\n")

	kind := "Due soon"
	if o.Breach {
		kind = "Overdue"
	}
	name := clean(o.Queue.Name)
	if name == "" {
		name = o.Queue.Address
	}
	o.writeHead(dst, id, head{
		from:        systemFrom(truncate(name, 64)+" SLA", o.Domain),
		to:          to,
		subject:     kind + " " + clean(o.Token) + ": " + clean(o.Subject),
		contentType: "text/plain; charset=utf-8",
	})
	dst.WriteString("\r\n")
	writeQP(dst, text.String())
	return nil
}

// businessTime is a duration as hours and minutes: "9 h 30 min".
func businessTime(d time.Duration) string {
	d = d.Round(time.Minute)
	h, m := int(d.Hours()), int(d.Minutes())%60
	switch {
	case h == 0:
		return fmt.Sprintf("%d min", m)
	case m == 0:
		return fmt.Sprintf("%d h", h)
	}
	return fmt.Sprintf("%d h %d min", h, m)
}
