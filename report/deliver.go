package report

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/time/rate"
)

// Envelope is who a message is from and to on the wire (SMTP MAIL FROM and
// RCPT TO), apart from its header.
type Envelope struct {
	// From is the envelope sender: bounces of a notice go there. Use the
	// postmaster, never the notified user, so that a failed notice
	// reaches the admin and can never loop.
	From string
	To   []string // the notice's To, then its Cc
}

// Sender hands one message to the mail system. Send must not keep msg.
// Implementations here are safe for use by one goroutine at a time.
type Sender interface {
	Send(ctx context.Context, env Envelope, msg []byte) error
	// Close ends a session the sender keeps open (an SMTP connection).
	Close() error
}

// Sendmail delivers through a sendmail-compatible program (Postfix, Exim,
// sendmail, msmtp, nullmailer), run once per message as
//
//	PATH [Args...] -t -oi -f ENVELOPE-FROM
//
// with the message on its standard input: -t takes the recipients from the
// To and Cc headers, -oi keeps a line with a single dot from ending the
// message.
type Sendmail struct {
	Path    string        // default /usr/sbin/sendmail
	Args    []string      // extra arguments before -t (e.g. msmtp's -C FILE)
	Timeout time.Duration // per message; default 2 minutes
}

// DefaultSendmail is where sendmail lives on Linux and the BSDs.
const DefaultSendmail = "/usr/sbin/sendmail"

// Send runs the program. A non-zero exit is an error that quotes the
// program's standard error.
func (s *Sendmail) Send(ctx context.Context, env Envelope, msg []byte) error {
	path := s.Path
	if path == "" {
		path = DefaultSendmail
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := append(append([]string(nil), s.Args...), "-t", "-oi")
	if env.From != "" {
		args = append(args, "-f", env.From)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = bytes.NewReader(msg)
	var stderr bytes.Buffer
	cmd.Stdout = &stderr // sendmail has nothing to say on stdout; keep it off ours
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		detail := strings.Join(strings.Fields(stderr.String()), " ")
		if len(detail) > 300 {
			detail = detail[:300] + "…"
		}
		if detail != "" {
			return fmt.Errorf("%s: %w: %s", path, err, detail)
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Close does nothing: each message is its own process.
func (s *Sendmail) Close() error { return nil }

// SMTP delivers over one SMTP connection, opened on the first message and
// reopened after a connection error. STARTTLS is used whenever the server
// offers it, with the certificate verified (TLSConfig); AUTH PLAIN when
// User is set, and then only over TLS or to a loopback address, so that a
// password never crosses a network in clear.
type SMTP struct {
	Addr      string      // host:port
	TLSConfig *tls.Config // nil: the system's roots, ServerName from Addr
	User      string
	Password  string
	// LocalName is what the client calls itself in EHLO; default the host
	// name.
	LocalName string
	// Timeout bounds the connection and each command; default 1 minute.
	Timeout time.Duration

	c *smtp.Client
}

func (s *SMTP) timeout() time.Duration {
	if s.Timeout <= 0 {
		return time.Minute
	}
	return s.Timeout
}

// dial opens a connection, says EHLO, starts TLS when offered and logs in.
// go-smtp starts TLS only on a fresh client, so a server that offers it is
// asked again on a second connection, once per run.
func (s *SMTP) dial(ctx context.Context) (*smtp.Client, error) {
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return nil, fmt.Errorf("smtp address %q: %w", s.Addr, err)
	}
	local := s.LocalName
	if local == "" {
		local, _ = os.Hostname()
		if local == "" {
			local = "localhost"
		}
	}
	connect := func() (net.Conn, error) {
		d := net.Dialer{Timeout: s.timeout()}
		conn, err := d.DialContext(ctx, "tcp", s.Addr)
		if err != nil {
			return nil, fmt.Errorf("connect to %s: %w", s.Addr, err)
		}
		return conn, nil
	}
	conn, err := connect()
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c := s.client(conn)
	err = c.Hello(local)
	stop()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("smtp %s: hello: %w", s.Addr, err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		_ = c.Quit()
		c.Close()
		cfg := s.TLSConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		conn, err := connect()
		if err != nil {
			return nil, err
		}
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		// NewClientStartTLS greets as "localhost"; after TLS, Hello may
		// be said again, with the real name.
		c, err = smtp.NewClientStartTLS(conn, cfg)
		if err == nil {
			c.CommandTimeout = s.timeout()
			c.SubmissionTimeout = 2 * s.timeout()
			err = c.Hello(local)
			if err != nil {
				c.Close()
			}
		}
		stop()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("smtp %s: starttls: %w", s.Addr, err)
		}
	}
	if s.User != "" {
		if _, isTLS := c.TLSConnectionState(); !isTLS && !isLoopback(host) {
			c.Close()
			return nil, fmt.Errorf("smtp %s: the server does not offer STARTTLS: refusing to send the password in clear", s.Addr)
		}
		if err := c.Auth(sasl.NewPlainClient("", s.User, s.Password)); err != nil {
			c.Close()
			return nil, fmt.Errorf("smtp %s: auth as %s: %w", s.Addr, s.User, err)
		}
	}
	return c, nil
}

func (s *SMTP) client(conn net.Conn) *smtp.Client {
	c := smtp.NewClient(conn)
	c.CommandTimeout = s.timeout()
	c.SubmissionTimeout = 2 * s.timeout()
	return c
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Send sends msg in one transaction. A rejected recipient fails the
// message and resets the transaction; the connection stays for the next
// message. Any other error closes the connection, and the next Send opens
// a new one.
func (s *SMTP) Send(ctx context.Context, env Envelope, msg []byte) error {
	if s.c == nil {
		c, err := s.dial(ctx)
		if err != nil {
			return err
		}
		s.c = c
	}
	c := s.c
	stop := context.AfterFunc(ctx, func() { c.Close() })
	err := s.transaction(env, msg)
	if !stop() && err != nil {
		err = fmt.Errorf("%w: %w", err, ctx.Err())
	}
	var se *smtp.SMTPError
	if err != nil && s.c != nil && !errors.As(err, &se) {
		s.c.Close()
		s.c = nil
	}
	return err
}

func (s *SMTP) transaction(env Envelope, msg []byte) error {
	c := s.c
	if err := c.Mail(env.From, &smtp.MailOptions{Size: int64(len(msg))}); err != nil {
		return s.reset(fmt.Errorf("smtp %s: MAIL FROM:<%s>: %w", s.Addr, env.From, err))
	}
	for _, to := range env.To {
		if err := c.Rcpt(to, nil); err != nil {
			return s.reset(fmt.Errorf("smtp %s: RCPT TO:<%s>: %w", s.Addr, to, err))
		}
	}
	w, err := c.Data()
	if err != nil {
		return s.reset(fmt.Errorf("smtp %s: DATA: %w", s.Addr, err))
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp %s: send message: %w", s.Addr, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp %s: message not accepted: %w", s.Addr, err)
	}
	return nil
}

// reset ends a transaction the server refused so that the connection can
// carry the next; when even that fails, the connection is dropped.
func (s *SMTP) reset(err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		if rerr := s.c.Reset(); rerr != nil {
			s.c.Close()
			s.c = nil
		}
	}
	return err
}

// Close says QUIT and closes the connection, if one is open.
func (s *SMTP) Close() error {
	if s.c == nil {
		return nil
	}
	err := s.c.Quit()
	s.c.Close()
	s.c = nil
	return err
}

// Rate is a sending rate: Count messages Per duration.
type Rate struct {
	Count int
	Per   time.Duration
}

// DefaultRate is 2 messages a second: a site-wide run of a few thousand
// notices takes minutes and never floods the MTA's queue.
var DefaultRate = Rate{Count: 2, Per: time.Second}

// ParseRate reads "2/s", "120/m", "1000/h" or a plain number per second.
func ParseRate(s string) (Rate, error) {
	t := strings.TrimSpace(s)
	num, unit, hasUnit := strings.Cut(t, "/")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || n <= 0 {
		return Rate{}, fmt.Errorf("rate %q: want a positive count such as 2/s, 120/m or 1000/h", s)
	}
	per := time.Second
	if hasUnit {
		switch strings.TrimSpace(unit) {
		case "s", "sec", "second":
			per = time.Second
		case "m", "min", "minute":
			per = time.Minute
		case "h", "hour":
			per = time.Hour
		default:
			return Rate{}, fmt.Errorf("rate %q: unknown unit %q (want s, m or h)", s, unit)
		}
	}
	return Rate{Count: n, Per: per}, nil
}

func (r Rate) String() string {
	u := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[r.Per]
	if u == "" {
		return fmt.Sprintf("%d/%s", r.Count, r.Per)
	}
	return fmt.Sprintf("%d/%s", r.Count, u)
}

// limit is the rate as x/time/rate wants it.
func (r Rate) limit() rate.Limit {
	if r.Count <= 0 || r.Per <= 0 {
		return rate.Inf
	}
	return rate.Limit(float64(r.Count) / r.Per.Seconds())
}

// DefaultMaxConsecutiveFailures is how many notices in a row may fail
// before a run gives up: the mail system is down, not one address bad.
const DefaultMaxConsecutiveFailures = 10

// Outgoing is one message to deliver.
type Outgoing struct {
	Envelope Envelope
	Msg      []byte
	Label    string // who it is for, in reports ("alice <alice@example.org>")
}

// DeliverOptions pace and bound a delivery run.
type DeliverOptions struct {
	// Rate paces the messages (a token bucket with a burst of one: the
	// first goes at once, the next 1/rate later). Zero: DefaultRate.
	Rate Rate
	// MaxConsecutiveFailures stops the run after that many failures in a
	// row (0: DefaultMaxConsecutiveFailures); the rest are not attempted.
	MaxConsecutiveFailures int
	// OnResult, when set, is called after each attempt, in order.
	OnResult func(DeliveryResult)
}

// DeliveryResult is the fate of one message.
type DeliveryResult struct {
	Label     string
	Err       error // nil: handed over
	Attempted bool  // false: the run stopped before it
}

// DeliverySummary counts a run.
type DeliverySummary struct {
	Sent, Failed, NotAttempted int
	Results                    []DeliveryResult
	// Stopped is set when the run gave up after too many consecutive
	// failures.
	Stopped bool
}

// ErrTooManyFailures is wrapped by [Deliver]'s error when it stopped early.
var ErrTooManyFailures = errors.New("too many consecutive delivery failures")

// Deliver sends the messages one at a time through s, paced by opts.Rate.
// A failed message does not stop the others; opts.MaxConsecutiveFailures
// in a row do. The error is nil when every message was sent; else it joins
// the failures (and wraps ErrTooManyFailures when the run stopped, or
// ctx's error when it was cancelled). s is closed at the end.
func Deliver(ctx context.Context, s Sender, msgs []Outgoing, opts DeliverOptions) (*DeliverySummary, error) {
	r := opts.Rate
	if r.Count == 0 {
		r = DefaultRate
	}
	maxFail := opts.MaxConsecutiveFailures
	if maxFail <= 0 {
		maxFail = DefaultMaxConsecutiveFailures
	}
	lim := rate.NewLimiter(r.limit(), 1)
	sum := &DeliverySummary{}
	var errs []error
	consecutive := 0
	var once sync.Once
	closeSender := func() {
		once.Do(func() {
			if err := s.Close(); err != nil {
				_ = err // the messages were accepted; a failed QUIT changes nothing
			}
		})
	}
	defer closeSender()
	for i, m := range msgs {
		if sum.Stopped || ctx.Err() != nil {
			res := DeliveryResult{Label: m.Label}
			sum.NotAttempted++
			sum.Results = append(sum.Results, res)
			continue
		}
		if err := lim.Wait(ctx); err != nil {
			sum.NotAttempted += len(msgs) - i
			for _, rest := range msgs[i:] {
				sum.Results = append(sum.Results, DeliveryResult{Label: rest.Label})
			}
			if ctx.Err() == nil {
				// The limiter saw that the next message would be due
				// after ctx's deadline.
				errs = append(errs, fmt.Errorf("deliver: %w (%s)", context.DeadlineExceeded, err))
			}
			break
		}
		err := s.Send(ctx, m.Envelope, m.Msg)
		res := DeliveryResult{Label: m.Label, Err: err, Attempted: true}
		sum.Results = append(sum.Results, res)
		if opts.OnResult != nil {
			opts.OnResult(res)
		}
		if err != nil {
			sum.Failed++
			consecutive++
			errs = append(errs, fmt.Errorf("%s: %w", m.Label, err))
			if consecutive >= maxFail && i+1 < len(msgs) {
				sum.Stopped = true
			}
			continue
		}
		sum.Sent++
		consecutive = 0
	}
	if sum.Stopped {
		errs = append(errs, fmt.Errorf("%w (%d in a row): %d notices not attempted", ErrTooManyFailures, maxFail, sum.NotAttempted))
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, fmt.Errorf("deliver: %w", err))
	}
	return sum, errors.Join(errs...)
}
