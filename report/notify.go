package report

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dustin/go-humanize"
	"github.com/emersion/go-message/charset"
	gomail "github.com/emersion/go-message/mail"
	"golang.org/x/text/width"

	"github.com/mailkeep/mailkeep/mboxscan"
)

//go:embed templates/notice.*.tmpl
var noticeTemplates embed.FS

// NoticeLangs lists the languages of the built-in notice templates.
var NoticeLangs = []string{"en", "ja"}

// Notice is what one owner is told: the data of a notice template.
//
// A notice is rendered with text/template from a template that defines
// two named templates: "subject" (one line; surrounding white space is
// trimmed, and line breaks become spaces) and "body" (the plain-text
// body). The built-in templates are in English ("en") and Japanese
// ("ja"); a site's own is read by [ReadNoticeTemplate]. The fields a
// template can use:
//
//	.User .UID .Domain   the owner (UID is -1 when unknown)
//	.Address             the owner's address
//	.To                  where this notice is sent: .Address, or the admin's
//	                     address when .Redirected
//	.Redirected          the owner's store is over its limit, so the notice
//	                     goes to the admin instead (it would bounce)
//	.Admin               the admin's address
//	.Host                the host the notice is about
//	.Now                 when the notice was made (a time.Time)
//	.Level               the worst level of the owner's stores: ok, warn, crit
//	.OverLimit           some store is at or over its limit
//	.Stores              []NoticeStore: .Path .Bytes .LimitBytes .UsedRatio
//	                     .Level .OverLimit .Quota (limit from maildirsize),
//	                     and its trend from the history of nightly runs:
//	                     .Growing (it grows toward its limit: the next
//	                     two are set) .FullInDays (whole days from .Now)
//	                     .FullAt (a time.Time) .GrowthBytesPerDay
//	.Mailboxes           []NoticeMailbox: .Path .Name .Format .Folder .Store
//	                     .Messages .Bytes .Oldest .Newest .Remove .Error
//	.Messages .Bytes     totals over .Mailboxes
//	.HasPolicy           a retention policy was given
//	.Policy              the policy in words ("received older than 1y, ...")
//	.Cutoff              messages dated before this go (a time.Time)
//	.DateKind            received, saved or sent
//	.KeepsFlagged        flagged messages are kept by the policy
//	.Remove              NoticeRemoval, totals of what the policy would
//	                     remove: .Messages .Bytes .Oldest .Newest
//	                     (each mailbox has its own .Remove)
//	.RemoveAfter         when the announced messages will be removed (the
//	                     end of the notice period of "mailkeep run", a
//	                     time.Time); zero when the notice removes nothing
//	.Largest             []NoticeMessage, the largest messages, largest
//	                     first: .Mailbox .Date .From .Subject .Bytes .Remove
//
// From and Subject are decoded (RFC 2047, any charset) and stripped of
// control characters. Functions: size (bytes in binary units, "1.5 GiB"),
// percent (a ratio as "87.5%"), date ("2006-01-02", "-" for none),
// datetime ("2006-01-02 15:04"), trunc N (at most N characters, with
// "…"), plural N SINGULAR PLURAL, and pad N and rpad N (left- and
// right-aligned in N columns, counting East Asian wide characters as two).
type Notice struct {
	User   string
	UID    int // -1 when unknown (the owner came from a path pattern)
	Domain string

	Address    string // the owner's address
	To         string // where the notice goes: Address, or Admin when Redirected
	Redirected bool
	Admin      string
	Cc         []string
	Host       string
	Now        time.Time

	Level     mboxscan.Level
	OverLimit bool
	Stores    []NoticeStore
	Mailboxes []NoticeMailbox
	Messages  int
	Bytes     int64

	HasPolicy    bool
	Policy       string
	Cutoff       time.Time
	DateKind     mboxscan.DateKind
	KeepsFlagged bool
	Remove       NoticeRemoval
	// RemoveAfter is when what Remove counts will be removed: the end of
	// the notice period. Zero when nothing is to be removed on a date
	// (notify's dry run, a report-only policy).
	RemoveAfter time.Time

	Largest []NoticeMessage
}

// NoticeStore is one store of the owner: what a limit applies to (an mbox
// file, or a Maildir with its folders).
type NoticeStore struct {
	Path       string
	Bytes      int64
	LimitBytes int64
	UsedRatio  float64
	Level      mboxscan.Level
	OverLimit  bool
	Quota      bool // the limit is the Maildir++ quota

	// The store's trend (see [NoticeStore.SetTrend]); zero without a
	// history. Growing says that it grows toward its limit: FullInDays
	// (whole days from the notice's Now, 0 when less than one) and FullAt
	// are set then.
	Growing           bool
	GrowthBytesPerDay int64
	FullInDays        int
	FullAt            time.Time
}

// SetTrend sets the trend fields of s from t.
func (s *NoticeStore) SetTrend(t Trend) {
	s.GrowthBytesPerDay = int64(math.Round(t.BytesPerDay))
	s.Growing = t.Growing()
	s.FullInDays, s.FullAt = 0, time.Time{}
	if s.Growing {
		s.FullInDays = int(max(t.FullInDays, 0))
		s.FullAt = t.FullAt
	}
}

// NoticeMailbox is one mailbox (mbox file or Maildir folder) of the owner.
type NoticeMailbox struct {
	Path     string
	Name     string // what the owner calls it: the folder name, or the file name
	Format   mboxscan.Format
	Folder   string
	Store    string
	Messages int
	Bytes    int64
	Oldest   time.Time
	Newest   time.Time
	Remove   NoticeRemoval
	// Error says why the dry run of this mailbox failed; its Remove is then
	// empty.
	Error string
}

// NoticeRemoval counts what the retention policy would remove.
type NoticeRemoval struct {
	Messages int
	Bytes    int64
	Oldest   time.Time // the dates of the oldest and newest removed message
	Newest   time.Time
	Undated  int // kept because they have no usable date
}

func (r *NoticeRemoval) add(o NoticeRemoval) {
	r.Messages += o.Messages
	r.Bytes += o.Bytes
	r.Undated += o.Undated
	if !o.Oldest.IsZero() && (r.Oldest.IsZero() || o.Oldest.Before(r.Oldest)) {
		r.Oldest = o.Oldest
	}
	if o.Newest.After(r.Newest) {
		r.Newest = o.Newest
	}
}

// NoticeMessage is one listed message.
type NoticeMessage struct {
	Mailbox string // the mailbox's Name
	Path    string // the mailbox's path
	Date    time.Time
	From    string // decoded, printable
	Subject string // decoded, printable
	Bytes   int64
	Remove  bool // the policy would remove it
}

// NoticeTemplate renders notices. It is safe for concurrent use.
type NoticeTemplate struct {
	t    *template.Template
	name string
}

// noticeFuncs are the functions a template may call.
var noticeFuncs = template.FuncMap{
	"size": func(n int64) string { return ibytes(n) },
	"percent": func(r float64) string {
		return strconv.FormatFloat(r*100, 'f', 1, 64) + "%"
	},
	"date": func(t time.Time) string { return day(t, "-") },
	"datetime": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Format("2006-01-02 15:04")
	},
	"trunc": truncate,
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	},
	"pad":  pad,
	"rpad": rpad,
}

// BuiltinNoticeTemplate returns the built-in template for lang (see
// [NoticeLangs]); an error names the languages there are.
func BuiltinNoticeTemplate(lang string) (*NoticeTemplate, error) {
	name := "templates/notice." + lang + ".tmpl"
	b, err := noticeTemplates.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("no built-in notice template for language %q (have %s)", lang, strings.Join(NoticeLangs, ", "))
	}
	return ParseNoticeTemplate(name, string(b))
}

// ReadNoticeTemplate parses the template in the file at path.
func ReadNoticeTemplate(path string) (*NoticeTemplate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read notice template: %w", err)
	}
	return ParseNoticeTemplate(path, string(b))
}

// ParseNoticeTemplate parses text, which must define the templates
// "subject" and "body"; name is used in errors.
func ParseNoticeTemplate(name, text string) (*NoticeTemplate, error) {
	t, err := template.New(name).Funcs(noticeFuncs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parse notice template: %w", err)
	}
	for _, n := range []string{"subject", "body"} {
		if t.Lookup(n) == nil {
			return nil, fmt.Errorf("notice template %s: no {{define %q}} ... {{end}}", name, n)
		}
	}
	return &NoticeTemplate{t: t, name: name}, nil
}

// Render returns the subject (one line) and the body of n's notice.
func (nt *NoticeTemplate) Render(n *Notice) (subject, body string, err error) {
	var b bytes.Buffer
	if err := nt.t.ExecuteTemplate(&b, "subject", n); err != nil {
		return "", "", fmt.Errorf("render notice subject: %w", err)
	}
	subject = strings.Join(strings.Fields(b.String()), " ")
	b.Reset()
	if err := nt.t.ExecuteTemplate(&b, "body", n); err != nil {
		return "", "", fmt.Errorf("render notice body: %w", err)
	}
	body = strings.TrimLeft(b.String(), "\n")
	if !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	return subject, body, nil
}

// MessageOptions are the header fields of a notice's message that do not
// come from the notice.
type MessageOptions struct {
	From string // the From header: an address, optionally with a name
	// MessageID without angle brackets; empty: one is made from Date and
	// random bits, at the domain of From.
	MessageID string
	Date      time.Time // zero: time.Now()
}

// WriteMessage writes n as a MIME message: From, To (n.To), Cc (n.Cc), an
// RFC 2047 encoded Subject, Date, Message-ID, "Auto-Submitted:
// auto-generated" (RFC 3834: autoresponders do not answer it), and one
// text/plain UTF-8 part in quoted-printable. Lines end in CRLF.
func WriteMessage(w io.Writer, n *Notice, subject, body string, opts MessageOptions) error {
	from, err := mail.ParseAddress(opts.From)
	if err != nil {
		return fmt.Errorf("from address %q: %w", opts.From, err)
	}
	to, err := mail.ParseAddress(n.To)
	if err != nil {
		return fmt.Errorf("to address %q: %w", n.To, err)
	}
	var cc []*gomail.Address
	for _, c := range n.Cc {
		a, err := mail.ParseAddress(c)
		if err != nil {
			return fmt.Errorf("cc address %q: %w", c, err)
		}
		cc = append(cc, &gomail.Address{Name: a.Name, Address: a.Address})
	}
	date := opts.Date
	if date.IsZero() {
		date = time.Now()
	}
	// go-message writes the fields last set first: set them bottom up, so
	// that the header reads From, To, Cc, Subject, Date, ... as usual.
	var h gomail.Header
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	h.Set("MIME-Version", "1.0")
	h.Set("X-Mailer", "mailkeep")
	// RFC 3834: autoresponders (vacation) must not answer it.
	h.Set("Auto-Submitted", "auto-generated")
	if opts.MessageID != "" {
		h.SetMessageID(opts.MessageID)
	} else if err := h.GenerateMessageIDWithHostname(domainOf(from.Address)); err != nil {
		return fmt.Errorf("make message-id: %w", err)
	}
	h.SetDate(date)
	h.Set("Subject", encodeSubject(subject))
	h.SetAddressList("Cc", cc)
	h.SetAddressList("To", []*gomail.Address{{Name: to.Name, Address: to.Address}})
	h.SetAddressList("From", []*gomail.Address{{Name: from.Name, Address: from.Address}})

	mw, err := gomail.CreateSingleInlineWriter(w, h)
	if err != nil {
		return fmt.Errorf("write message header: %w", err)
	}
	if _, err := io.WriteString(mw, crlf(body)); err != nil {
		return fmt.Errorf("write message body: %w", err)
	}
	if err := mw.Close(); err != nil {
		return fmt.Errorf("write message body: %w", err)
	}
	return nil
}

// encodeSubject returns s as it goes in the Subject field: as it is when
// it is printable ASCII, else as RFC 2047 Q encoded words in UTF-8.
// mime.QEncoding (which go-message's SetSubject uses) makes words of up to
// 75 characters, and go-message cannot fold the first of them after
// "Subject: " within 78 columns: the field would be one line of hundreds.
// Shorter words, whole characters each, let it fold between them.
func encodeSubject(s string) string {
	if !needsEncoding(s) {
		return s
	}
	const (
		prefix  = "=?utf-8?q?"
		maxWord = 60 // with "Subject: " and the fold's space, under 76
	)
	var (
		words []string
		w     strings.Builder
	)
	for _, r := range s {
		var enc string
		switch {
		case r == ' ':
			enc = "_"
		case r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("!*+-/", r)):
			enc = string(r)
		default:
			var b [utf8.UTFMax]byte
			for _, c := range b[:utf8.EncodeRune(b[:], r)] {
				enc += fmt.Sprintf("=%02X", c)
			}
		}
		if w.Len() > 0 && len(prefix)+w.Len()+len(enc)+2 > maxWord {
			words = append(words, prefix+w.String()+"?=")
			w.Reset()
		}
		w.WriteString(enc)
	}
	if w.Len() > 0 {
		words = append(words, prefix+w.String()+"?=")
	}
	return strings.Join(words, " ")
}

func needsEncoding(s string) bool {
	if strings.Contains(s, "=?") {
		return true
	}
	for _, r := range s {
		if r >= utf8.RuneSelf || (r < ' ' && r != '\t') || r == 0x7f {
			return true
		}
	}
	return false
}

// crlf makes every line end in CRLF, as a message on the wire wants.
func crlf(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 && i+1 < len(addr) {
		return addr[i+1:]
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// wordDecoder decodes RFC 2047 words in any charset go-message knows
// (ISO-2022-JP, Shift_JIS, EUC-JP, GB18030, windows-125x, KOI8-R, ...).
var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// DisplayFrom shortens a decoded From header to the name, or the address
// when there is no name.
func DisplayFrom(from string) string {
	if a, err := mail.ParseAddress(from); err == nil {
		if a.Name != "" {
			return mboxscan.CleanText(a.Name)
		}
		return a.Address
	}
	return from
}

// truncate returns s cut to at most n characters, ending in "…" when cut.
func truncate(n int, s string) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	if n == 1 {
		return "…"
	}
	return string(r[:n-1]) + "…"
}

// columns is the display width of s: East Asian wide and fullwidth
// characters take two columns.
func columns(s string) int {
	n := 0
	for _, r := range s {
		switch width.LookupRune(r).Kind() {
		case width.EastAsianWide, width.EastAsianFullwidth:
			n += 2
		default:
			n++
		}
	}
	return n
}

// pad left-aligns s in n columns.
func pad(n int, s string) string {
	if c := columns(s); c < n {
		return s + strings.Repeat(" ", n-c)
	}
	return s
}

// rpad right-aligns s in n columns.
func rpad(n int, s string) string {
	if c := columns(s); c < n {
		return strings.Repeat(" ", n-c) + s
	}
	return s
}

// ErrNoAddress is returned by an [AddressBook] for an owner it has no
// address for.
var ErrNoAddress = errors.New("no address")

// sizeOf is humanize's binary size, used in summaries.
func sizeOf(n int64) string {
	if n < 0 {
		return strconv.FormatInt(n, 10) + " B"
	}
	return humanize.IBytes(uint64(n))
}

// parseAddress returns the addr-spec of a single address ("a@b" or
// "Name <a@b>").
func parseAddress(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", err
	}
	return a.Address, nil
}
