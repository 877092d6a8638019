package report

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailkeep/mailkeep/mboxscan"
)

// Format is an output format of scan.
type Format string

const (
	FormatTable      Format = "table"
	FormatJSON       Format = "json"
	FormatCSV        Format = "csv"
	FormatPrometheus Format = "prometheus"
)

// Formats lists the formats scan accepts, in the order help shows them.
var Formats = []Format{FormatTable, FormatJSON, FormatCSV, FormatPrometheus}

// ErrUnsupportedFormat is returned for a format that is named in the
// contract but not rendered yet (prometheus).
var ErrUnsupportedFormat = errors.New("format not yet supported")

// ScanOptions choose how [Scan] renders a result.
type ScanOptions struct {
	Format Format
	// TTY selects the table for people (header, notes, totals) over
	// tab-separated rows for programs. Only the table format uses it.
	TTY bool
	// Now is the report's generated_at time (JSON only); injected so that
	// output is reproducible.
	Now time.Time
}

// Scan renders res in the chosen format. It returns [ErrUnsupportedFormat]
// (wrapped) for prometheus, whose metrics need the scan's timing: use
// [WriteMetrics]. Other errors are an unknown format and those from w.
func Scan(w io.Writer, res *mboxscan.Result, opts ScanOptions) error {
	switch opts.Format {
	case FormatTable, "":
		return WriteTable(w, res, opts.TTY)
	case FormatJSON:
		return WriteJSON(w, res, opts.Now)
	case FormatCSV:
		return WriteCSV(w, res)
	case FormatPrometheus:
		return fmt.Errorf("%s: %w", opts.Format, ErrUnsupportedFormat)
	default:
		return fmt.Errorf("unknown format %q", opts.Format)
	}
}

// byFullness returns the mailboxes sorted fullest first: by used ratio
// descending, then by path. res is not changed.
func byFullness(res *mboxscan.Result) []*mboxscan.Mailbox {
	out := make([]*mboxscan.Mailbox, len(res.Mailboxes))
	for i := range res.Mailboxes {
		out[i] = &res.Mailboxes[i]
	}
	slices.SortStableFunc(out, func(a, b *mboxscan.Mailbox) int {
		if c := cmp.Compare(b.UsedRatio, a.UsedRatio); c != 0 {
			return c
		}
		return strings.Compare(a.Path, b.Path)
	})
	return out
}

// levelLabel marks the levels for people: the ones that need action in
// capitals, so that they stand out in a column of "ok".
func levelLabel(l mboxscan.Level) string {
	switch l {
	case mboxscan.LevelCrit:
		return "CRIT"
	case mboxscan.LevelWarn:
		return "WARN"
	case mboxscan.LevelOK:
		return "ok"
	case "":
		return "-"
	default:
		return printable(string(l))
	}
}

// WriteTable writes the mailboxes of res fullest first.
//
// With tty set it writes, for people, an aligned table with a header, sizes
// in binary units and dates as YYYY-MM-DD, then one "skipped: PATH: reason"
// line per skipped file, one "problem: PATH: text" line per problem, and a
// totals line. With no mailbox, the header is left out.
//
// Without tty it writes, for programs, one tab-separated row per mailbox
// and nothing else: the same columns with level as ok|warn|crit, USED% as a
// number, sizes in bytes and missing dates empty. Skipped files and problems
// are not written; the caller reports them (on stderr).
//
// Columns: LEVEL USED% SIZE MSGS OLDEST NEWEST LARGEST LARGE BOUNCES OWNER
// FORMAT PATH. USED% is the store's use of its limit (for Maildir, of the
// whole store); SIZE is the mailbox's own size.
func WriteTable(w io.Writer, res *mboxscan.Result, tty bool) error {
	boxes := byFullness(res)
	if !tty {
		var b bytes.Buffer
		for _, m := range boxes {
			fields := []string{
				string(m.Level),
				percent(m.UsedRatio),
				strconv.FormatInt(m.Bytes, 10),
				strconv.Itoa(m.Messages),
				day(m.Oldest, ""),
				day(m.Newest, ""),
				strconv.FormatInt(m.LargestBytes, 10),
				strconv.Itoa(m.LargeMessages),
				strconv.Itoa(m.Bounces),
				printable(m.Owner),
				string(m.Format),
				printable(m.Path),
			}
			b.WriteString(strings.Join(fields, "\t"))
			b.WriteByte('\n')
		}
		_, err := w.Write(b.Bytes())
		return err
	}

	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	if len(boxes) > 0 {
		fmt.Fprintln(tw, "LEVEL\tUSED%\tSIZE\tMSGS\tOLDEST\tNEWEST\tLARGEST\tLARGE\tBOUNCES\tOWNER\tFORMAT\tPATH")
	}
	var total struct {
		bytes            int64
		messages         int
		warn, crit, prob int
	}
	for _, m := range boxes {
		fmt.Fprintf(tw, "%s\t%s%%\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n",
			levelLabel(m.Level), percent(m.UsedRatio), ibytes(m.Bytes), m.Messages,
			day(m.Oldest, "-"), day(m.Newest, "-"), ibytes(m.LargestBytes),
			m.LargeMessages, m.Bounces, dash(printable(m.Owner)), m.Format, printable(m.Path))
		total.bytes += m.Bytes
		total.messages += m.Messages
		switch m.Level {
		case mboxscan.LevelWarn:
			total.warn++
		case mboxscan.LevelCrit:
			total.crit++
		}
		total.prob += len(m.Problems)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(boxes) > 0 && (len(res.Skipped) > 0 || total.prob > 0) {
		b.WriteByte('\n')
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(&b, "skipped: %s: %s\n", printable(s.Path), printable(s.Reason))
	}
	for _, m := range res.Mailboxes { // by path, as the scanner ordered them
		for _, p := range m.Problems {
			fmt.Fprintf(&b, "problem: %s: %s\n", printable(m.Path), printable(p))
		}
	}
	fmt.Fprintf(&b, "%s (%d crit, %d warn), %s in %s",
		plural(len(boxes), "mailbox"), total.crit, total.warn,
		ibytes(total.bytes), plural(total.messages, "message"))
	if len(res.Skipped) > 0 {
		fmt.Fprintf(&b, ", %d skipped", len(res.Skipped))
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ScanReport is the JSON document of a scan, as the CLI contract defines
// it. Fields beyond the contract's: folder, store_bytes, quota.
type ScanReport struct {
	GeneratedAt string        `json:"generated_at"`
	Mailboxes   []ScanMailbox `json:"mailboxes"`
	Skipped     []ScanSkipped `json:"skipped"`
}

// ScanMailbox is one mailbox of a [ScanReport]. Oldest and Newest are
// RFC 3339 in the zone the scanner gave, nil when the mailbox has no
// dated message.
type ScanMailbox struct {
	Path          string     `json:"path"`
	Format        string     `json:"format"`
	Folder        string     `json:"folder,omitempty"`
	Owner         string     `json:"owner"`
	Messages      int        `json:"messages"`
	Bytes         int64      `json:"bytes"`
	Oldest        *string    `json:"oldest"`
	Newest        *string    `json:"newest"`
	Undated       int        `json:"undated"`
	LargestBytes  int64      `json:"largest_bytes"`
	LargeMessages int        `json:"large_messages"`
	Bounces       int        `json:"bounces"`
	Store         string     `json:"store"`
	StoreBytes    int64      `json:"store_bytes"`
	LimitBytes    int64      `json:"limit_bytes"`
	UsedRatio     float64    `json:"used_ratio"`
	Level         string     `json:"level"`
	Quota         *ScanQuota `json:"quota,omitempty"`
	Problems      []string   `json:"problems,omitempty"`
}

// ScanQuota is a Maildir++ quota; zero limits mean none.
type ScanQuota struct {
	LimitBytes    int64 `json:"limit_bytes"`
	LimitMessages int64 `json:"limit_messages"`
	UsedBytes     int64 `json:"used_bytes"`
	UsedMessages  int64 `json:"used_messages"`
}

// ScanSkipped is a file that is not a mailbox, or could not be read.
type ScanSkipped struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// NewScanReport converts res to the JSON document, in res's order. The
// arrays are empty, never nil, so that they encode as [] rather than null.
func NewScanReport(res *mboxscan.Result, now time.Time) ScanReport {
	r := ScanReport{
		GeneratedAt: now.Format(time.RFC3339),
		Mailboxes:   make([]ScanMailbox, 0, len(res.Mailboxes)),
		Skipped:     make([]ScanSkipped, 0, len(res.Skipped)),
	}
	for i := range res.Mailboxes {
		m := &res.Mailboxes[i]
		j := ScanMailbox{
			Path:          m.Path,
			Format:        string(m.Format),
			Folder:        m.Folder,
			Owner:         m.Owner,
			Messages:      m.Messages,
			Bytes:         m.Bytes,
			Oldest:        rfc3339(m.Oldest),
			Newest:        rfc3339(m.Newest),
			Undated:       m.Undated,
			LargestBytes:  m.LargestBytes,
			LargeMessages: m.LargeMessages,
			Bounces:       m.Bounces,
			Store:         storeKey(m),
			StoreBytes:    storeBytes(m),
			LimitBytes:    m.LimitBytes,
			UsedRatio:     m.UsedRatio,
			Level:         string(m.Level),
		}
		if q := m.Quota; q != nil {
			j.Quota = &ScanQuota{q.LimitBytes, q.LimitMessages, q.UsedBytes, q.UsedMessages}
		}
		if len(m.Problems) > 0 {
			j.Problems = slices.Clone(m.Problems)
		}
		r.Mailboxes = append(r.Mailboxes, j)
	}
	for _, s := range res.Skipped {
		r.Skipped = append(r.Skipped, ScanSkipped{Path: s.Path, Reason: s.Reason})
	}
	return r
}

// WriteJSON writes res as the contract's JSON document, indented, with
// generated_at set to now. Nothing is written when encoding fails.
func WriteJSON(w io.Writer, res *mboxscan.Result, now time.Time) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	// Paths with & < > are common enough; \u0026 helps nobody reading a
	// report that is never embedded in HTML.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(NewScanReport(res, now)); err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// CSVHeader is the header row of [WriteCSV]: the JSON fields, flattened.
var CSVHeader = []string{
	"path", "format", "folder", "owner", "messages", "bytes", "oldest", "newest",
	"undated", "largest_bytes", "large_messages", "bounces", "store", "store_bytes",
	"limit_bytes", "used_ratio", "level", "quota_limit_bytes", "quota_limit_messages",
	"problems",
}

// WriteCSV writes a header row ([CSVHeader]) and one row per mailbox, in
// res's order, with the values of the JSON document: dates RFC 3339 or
// empty, quota limits empty when there is no quota, problems joined by
// "; ". Skipped files are not written; the caller reports them.
func WriteCSV(w io.Writer, res *mboxscan.Result) error {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	cw.Write(CSVHeader)
	r := NewScanReport(res, time.Time{})
	for _, m := range r.Mailboxes {
		var qb, qm string
		if m.Quota != nil {
			qb = strconv.FormatInt(m.Quota.LimitBytes, 10)
			qm = strconv.FormatInt(m.Quota.LimitMessages, 10)
		}
		cw.Write([]string{
			m.Path, m.Format, m.Folder, m.Owner,
			strconv.Itoa(m.Messages), strconv.FormatInt(m.Bytes, 10),
			deref(m.Oldest), deref(m.Newest), strconv.Itoa(m.Undated),
			strconv.FormatInt(m.LargestBytes, 10), strconv.Itoa(m.LargeMessages),
			strconv.Itoa(m.Bounces), m.Store, strconv.FormatInt(m.StoreBytes, 10),
			strconv.FormatInt(m.LimitBytes, 10),
			strconv.FormatFloat(m.UsedRatio, 'f', -1, 64), m.Level, qb, qm,
			strings.Join(m.Problems, "; "),
		})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	_, err := w.Write(b.Bytes())
	return err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
