package export

import (
	"context"
	"io"
	"slices"
	"time"

	"github.com/mailroom/mailroom/shared/delivery"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/mail"
	"github.com/mailroom/mailroom/shared/routing"
)

// RestoredField marks a message delivered again from the archive, with the time it was.
const RestoredField = "X-Mailroom-Restored"

// Router decides where a message goes (routing.Router).
type Router interface {
	Decide(ctx context.Context, m routing.Message) (routing.Decision, error)
}

// Deliverer carries a routing decision out (delivery.Service).
type Deliverer interface {
	Deliver(ctx context.Context, m delivery.Message, d routing.Decision) (delivery.Report, error)
}

// Restorer delivers archived messages to mailboxes again. A restore goes the way mail to the
// mailbox goes (its status, its forwarding destinations, the organisation's rules, loop marks),
// forwarded as Mailroom forwards, with an X-Mailroom-Restored field; it sends nothing else (no
// rule's extra copies, no bounce, no notice to the author) and goes once per restore id.
type Restorer struct {
	Index     ArchiveReader
	Objects   Objects
	Directory routing.Directory
	Router    Router
	Delivery  Deliverer
	Now       func() time.Time
	NewID     func() string
}

// RestoreRequest asks for one archived message to be delivered to one mailbox.
type RestoreRequest struct {
	Message string // archive id
	Mailbox string
	// RestoreID makes the restore happen once: another call with the same id sends nothing
	// new. A new one when empty.
	RestoreID string
}

// Restored says what a restore sent.
type Restored struct {
	RestoreID    string          `json:"restoreId"`
	Mailbox      string          `json:"mailbox"`
	Destinations []string        `json:"destinations"`
	Sent         []delivery.Sent `json:"sent"`
	// Already is true when an earlier call with the same restore id had sent everything.
	Already bool `json:"already,omitempty"`
	// Oversize is true when the message was too large for SES and went as a link.
	Oversize bool     `json:"oversize,omitempty"`
	Skipped  []string `json:"skipped,omitempty"`
}

// Restore delivers the archived message req.Message to req.Mailbox's destinations.
func (s *Restorer) Restore(ctx context.Context, req RestoreRequest) (Restored, error) {
	const op = "export.Restore"
	restoreID := req.RestoreID
	if restoreID == "" {
		restoreID = randomID()
		if s.NewID != nil {
			restoreID = s.NewID()
		}
	}
	if !idPattern.MatchString(restoreID) {
		return Restored{}, fault.InvalidField(op, "restoreId", "%q is not a valid restore id", restoreID)
	}
	addr, err := directory.NormalizeAddress(req.Mailbox)
	if err != nil {
		return Restored{}, fault.InvalidField(op, "mailbox", "%v", err)
	}
	rec, err := s.Index.Get(ctx, req.Message)
	if err != nil {
		return Restored{}, err
	}
	mb, err := s.Directory.Mailbox(ctx, addr)
	if fault.Is(err, fault.NotFound) {
		return Restored{}, fault.New(fault.NotFound, op, "no mailbox %s", addr)
	}
	if err != nil {
		return Restored{}, err
	}
	switch mb.Status {
	case directory.StatusClosed:
		return Restored{}, fault.New(fault.Conflict, op, "the mailbox %s is closed: restore to its successor, or reopen it first", addr)
	case directory.StatusSuspended:
		return Restored{}, fault.New(fault.Conflict, op, "the mailbox %s is suspended and takes no mail", addr)
	}

	body, _, err := s.Objects.Open(ctx, rec.Key)
	if err != nil {
		return Restored{}, err
	}
	m, err := mail.Parse(body)
	body.Close()
	if err != nil {
		return Restored{}, fault.Wrap(fault.Transient, op, err)
	}
	msg, err := routing.MessageOf(ctx, s.Directory, routing.Envelope{
		ID: rec.ID, EnvelopeFrom: rec.EnvelopeFrom, Recipients: []string{mb.Address}, ReceivedAt: rec.ReceivedAt,
		Verdicts: routing.Verdicts{Spam: rec.Verdicts.Spam, Virus: rec.Verdicts.Virus, SPF: rec.Verdicts.SPF,
			DKIM: rec.Verdicts.DKIM, DMARC: rec.Verdicts.DMARC},
	}, m)
	if err != nil {
		return Restored{}, err
	}
	dec, err := s.Router.Decide(ctx, msg)
	if err != nil {
		return Restored{}, err
	}
	if len(dec.Recipients) != 1 || dec.Recipients[0].Outcome != routing.Deliver {
		reason := "routing refuses it"
		if len(dec.Recipients) == 1 {
			reason = dec.Recipients[0].Reason
		}
		return Restored{}, fault.New(fault.Conflict, op, "the message cannot be restored to %s: %s", mb.Address, reason)
	}
	var fwd routing.Forward
	for _, f := range dec.Forwards {
		if f.Via.Address == mb.Address {
			fwd = f
		}
	}
	if len(fwd.Destinations) == 0 {
		return Restored{}, fault.InvalidField(op, "mailbox", "%s has no forwarding destination: its mail is read in the archive, where this message is", mb.Address)
	}
	fwd.Headers = append(slices.Clone(fwd.Headers), [2]string{RestoredField, s.now().Format(time.RFC1123Z)})

	dm := delivery.Message{
		ID: "restore-" + restoreID, Key: rec.Key, Size: rec.Size, Subject: m.Subject, Header: m.Header,
		Internal: msg.Internal,
		// No Message-ID: delivery's loop guard would stop the copy, rightly for mail that comes
		// round again, wrongly for a message an administrator sends again on purpose. No
		// envelope sender: nothing goes back to the author (no bounce, no oversize notice).
		Open: func(ctx context.Context) (io.ReadCloser, int64, error) { return s.Objects.Open(ctx, rec.Key) },
	}
	if len(m.From) > 0 {
		dm.From = m.From[0]
	}
	rep, err := s.Delivery.Deliver(ctx, dm, routing.Decision{MessageID: rec.ID, Forwards: []routing.Forward{fwd}})
	out := Restored{RestoreID: restoreID, Mailbox: mb.Address, Destinations: fwd.Destinations,
		Sent: rep.Sent, Oversize: rep.Oversize, Skipped: rep.Skipped}
	out.Already = len(rep.Sent) > 0
	for _, sent := range rep.Sent {
		out.Already = out.Already && sent.Again
	}
	return out, err
}

func (s *Restorer) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}
