package smtpingress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailroom/mailroom/shared/fault"
)

// ErrClosed is returned by Serve and ListenAndServe after Close or Shutdown, as net/http does.
var ErrClosed = errors.New("smtpingress: closed")

func (in *Ingress) newServer() *smtp.Server {
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{in: in, conn: c}, nil
	}))
	s.Domain = "inbound-smtp." + in.region + ".amazonaws.com"
	s.MaxMessageBytes = in.maxSize
	s.MaxRecipients = maxRecipients
	// SES receiving offers 8BITMIME (go-smtp always does) but not SMTPUTF8, so clients must send
	// internationalised addresses the way they would to SES.
	s.EnableSMTPUTF8 = false
	// RFC 5321's suggested timeouts; generous enough for a person typing into telnet.
	s.ReadTimeout = 10 * time.Minute
	s.WriteTimeout = time.Minute
	s.ErrorLog = smtpLogger{in.log}
	return s
}

// ListenAndServe listens on addr, which must be a loopback address ("127.0.0.1:2525"; an empty
// host means 127.0.0.1), and serves until Close.
func (in *Ingress) ListenAndServe(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fault.InvalidField("smtpingress.ListenAndServe", "addr", "%v", err)
	}
	if host == "" || host == "localhost" {
		host = "127.0.0.1"
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return err
	}
	return in.Serve(l)
}

// Serve accepts SMTP connections on l until Close. A TCP listener must be on a loopback address:
// the ingress takes mail for the organisation's domains from anyone who reaches it and invokes
// the inbound function with it, which only the person running the stack should be able to do.
func (in *Ingress) Serve(l net.Listener) error {
	if a, ok := l.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() {
		l.Close()
		return fault.InvalidField("smtpingress.Serve", "listener", "%s is not a loopback address", a)
	}
	if in.ctx.Err() != nil {
		l.Close()
		return ErrClosed
	}
	if err := in.srv.Serve(l); err != nil {
		return err
	}
	return ErrClosed // go-smtp returns nil once closed
}

// Close stops listening, drops open connections and cancels messages being received.
func (in *Ingress) Close() error {
	in.cancel()
	if err := in.srv.Close(); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops listening and waits for open connections to finish, or for ctx to end.
func (in *Ingress) Shutdown(ctx context.Context) error {
	err := in.srv.Shutdown(ctx)
	in.cancel()
	return err
}

// session is one SMTP connection's current transaction.
type session struct {
	in   *Ingress
	conn *smtp.Conn
	from string
	to   []string
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

// Mail accepts any sender, the null sender of bounces included: SES receives before it judges.
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.Reset()
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.in.checkRecipient("smtpingress.Rcpt", to); err != nil {
		var fe *fault.Error
		errors.As(err, &fe)
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message: fmt.Sprintf("<%s>: Recipient address rejected: %s", to, fe.Message)}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	env := envelope{from: s.from, to: s.to, helo: s.conn.Hostname(), ip: "127.0.0.1"}
	if a, ok := s.conn.Conn().RemoteAddr().(*net.TCPAddr); ok {
		env.ip = a.IP.String()
	}
	rc, err := s.in.receive(s.in.ctx, env, r)
	switch {
	case err == nil:
		// go-smtp writes any *SMTPError as the reply; this one is a success that tells the person
		// sending which object to look for under inbound/.
		return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Ok " + rc.MessageID}
	case errors.Is(err, errTooLarge):
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
			Message: fmt.Sprintf("Message is larger than %d bytes, the most accepted", s.in.maxSize)}
	case errors.Is(err, smtp.ErrTooLongLine):
		return &smtp.SMTPError{Code: 500, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Line too long"}
	case fault.Is(err, fault.Invalid):
		var fe *fault.Error
		errors.As(err, &fe)
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: fe.Error()}
	default:
		s.in.log.Warn("message not accepted; sender told to retry", "from", s.from, "recipients", s.to, "err", err)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
			Message: "Temporary failure storing the message; try again later"}
	}
}

// smtpLogger sends go-smtp's own diagnostics (accept errors, panics) to the ingress's logger.
type smtpLogger struct{ log *slog.Logger }

func (l smtpLogger) Printf(format string, v ...any) { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l smtpLogger) Println(v ...any)               { l.log.Warn(fmt.Sprint(v...)) }
