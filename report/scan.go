package report

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
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
	// Trends are the stores' growth, keyed by store (a Maildir root, or an
	// mbox file's path: [mboxscan.Mailbox.Store], else its Path), from the
	// history the nightly runs record. nil means there is no history: the
	// terminal table then has no FULL IN column. JSON and CSV give each
	// mailbox its store's trend, when there is one.
	Trends map[string]Trend
}

// Trend is a store's growth, fitted over the runs the history database
// recorded: what scan shows as "full in N days".
type Trend struct {
	// BytesPerDay is the fitted growth; negative when the store shrinks.
	BytesPerDay float64
	// FullAt is when the store is projected to reach its limit at that
	// rate; zero when it is not growing.
	FullAt time.Time
	// FullInDays is how long from the scan until FullAt, in days; 0 when
	// the store is already full. It means nothing when FullAt is zero.
	FullInDays float64
}

// Growing reports whether the store is projected to reach its limit.
func (t Trend) Growing() bool { return !t.FullAt.IsZero() }

// trendOf returns the trend of m's store, if trends has one.
func trendOf(trends map[string]Trend, m *mboxscan.Mailbox) (Trend, bool) {
	t, ok := trends[storeKey(m)]
	return t, ok
}

// WarnEarly raises to warn the level of every mailbox of a store that
// trends project to be full by until (the scan's time plus the trend
// horizon): its level is computed on the whole store, so every folder
// row is raised, and levels already warn or crit stay. The store gets one
// problem, "projected full in N days (growth X/day)", on its root row
// (the Maildir itself, or the mbox file), else on its first row. A store
// that is not growing is never raised. It returns the stores warned
// about, in res's order. res is changed in place.
func WarnEarly(res *mboxscan.Result, trends map[string]Trend, until time.Time) []string {
	if len(trends) == 0 {
		return nil
	}
	var (
		warned []string
		first  = map[string]int{} // store → the row that gets the problem
	)
	for i := range res.Mailboxes {
		m := &res.Mailboxes[i]
		t, ok := trendOf(trends, m)
		if !ok || !t.Growing() || t.BytesPerDay <= 0 || t.FullAt.After(until) {
			continue
		}
		key := storeKey(m)
		if m.Level == mboxscan.LevelOK || m.Level == "" {
			m.Level = mboxscan.LevelWarn
		}
		j, seen := first[key]
		switch {
		case !seen:
			first[key] = i
			warned = append(warned, key)
		case m.Path == key && res.Mailboxes[j].Path != key:
			first[key] = i
		}
	}
	for _, key := range warned {
		m := &res.Mailboxes[first[key]]
		t := trends[key]
		m.Problems = append(m.Problems, fmt.Sprintf("projected full in %s (growth %s/day)",
			InDays(t.FullInDays), ibytes(int64(math.Round(t.BytesPerDay)))))
	}
	return warned
}

// InDays says "N days", "1 day" or "less than a day": how the reports
// and the commands write a time to full.
func InDays(d float64) string {
	switch {
	case d < 1:
		return "less than a day"
	case d < 2:
		return "1 day"
	}
	return strconv.Itoa(int(d)) + " days"
}

// fullIn is the FULL IN column: whole days ("12d"), "<1d", or "-" when
// there is no trend or the store is not growing.
func fullIn(trends map[string]Trend, m *mboxscan.Mailbox) string {
	t, ok := trendOf(trends, m)
	switch {
	case !ok || !t.Growing():
		return "-"
	case t.FullInDays < 1:
		return "<1d"
	}
	return strconv.Itoa(int(t.FullInDays)) + "d"
}

// Scan renders res in the chosen format. It returns [ErrUnsupportedFormat]
// (wrapped) for prometheus, whose metrics need the scan's timing: use
// [WriteMetrics]. Other errors are an unknown format and those from w.
func Scan(w io.Writer, res *mboxscan.Result, opts ScanOptions) error {
	switch opts.Format {
	case FormatTable, "":
		return writeTable(w, res, opts.TTY, opts.Trends)
	case FormatJSON:
		return writeJSON(w, res, opts.Now, opts.Trends)
	case FormatCSV:
		return writeCSV(w, res, opts.Trends)
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
//
// [Scan] with [ScanOptions.Trends] adds, on a terminal, a FULL IN column
// after USED%: the days until the store is projected to be full ("12d"),
// or "-". The rows for programs stay as they are; programs read the
// trend from JSON or CSV.
func WriteTable(w io.Writer, res *mboxscan.Result, tty bool) error {
	return writeTable(w, res, tty, nil)
}

func writeTable(w io.Writer, res *mboxscan.Result, tty bool, trends map[string]Trend) error {
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
	// With a history, FULL IN follows USED%: how full, and how soon.
	fullCol, fullHead := func(*mboxscan.Mailbox) string { return "" }, ""
	if trends != nil {
		fullCol = func(m *mboxscan.Mailbox) string { return fullIn(trends, m) + "\t" }
		fullHead = "FULL IN\t"
	}
	if len(boxes) > 0 {
		fmt.Fprintln(tw, "LEVEL\tUSED%\t"+fullHead+"SIZE\tMSGS\tOLDEST\tNEWEST\tLARGEST\tLARGE\tBOUNCES\tOWNER\tFORMAT\tPATH")
	}
	var total struct {
		bytes            int64
		messages         int
		warn, crit, prob int
	}
	for _, m := range boxes {
		fmt.Fprintf(tw, "%s\t%s%%\t%s%s\t%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n",
			levelLabel(m.Level), percent(m.UsedRatio), fullCol(m), ibytes(m.Bytes), m.Messages,
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
// it. Fields beyond the contract's: folder, store_bytes, quota, and, when
// the store has a trend (see [ScanReport.AddTrends]),
// growth_bytes_per_day, full_in_days and full_at.
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

	// The store's trend: absent without one; full_in_days and full_at
	// also when the store is not growing.
	GrowthBytesPerDay *float64 `json:"growth_bytes_per_day,omitempty"`
	FullInDays        *float64 `json:"full_in_days,omitempty"`
	FullAt            *string  `json:"full_at,omitempty"`
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

// AddTrends sets the trend fields of each mailbox whose store trends has:
// growth_bytes_per_day (whole bytes), and when the store is growing
// full_in_days (to a tenth of a day) and full_at (RFC 3339).
func (r *ScanReport) AddTrends(trends map[string]Trend) {
	for i := range r.Mailboxes {
		m := &r.Mailboxes[i]
		t, ok := trends[m.Store]
		if !ok {
			continue
		}
		g := math.Round(t.BytesPerDay)
		m.GrowthBytesPerDay = &g
		if t.Growing() {
			d := math.Round(t.FullInDays*10) / 10
			m.FullInDays = &d
			m.FullAt = rfc3339(t.FullAt)
		}
	}
}

// WriteJSON writes res as the contract's JSON document, indented, with
// generated_at set to now. Nothing is written when encoding fails.
func WriteJSON(w io.Writer, res *mboxscan.Result, now time.Time) error {
	return writeJSON(w, res, now, nil)
}

func writeJSON(w io.Writer, res *mboxscan.Result, now time.Time, trends map[string]Trend) error {
	doc := NewScanReport(res, now)
	doc.AddTrends(trends)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	// Paths with & < > are common enough; \u0026 helps nobody reading a
	// report that is never embedded in HTML.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
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
	"problems", "growth_bytes_per_day", "full_in_days", "full_at",
}

// WriteCSV writes a header row ([CSVHeader]) and one row per mailbox, in
// res's order, with the values of the JSON document: dates RFC 3339 or
// empty, quota limits empty when there is no quota, problems joined by
// "; ", the trend columns empty without a trend (they are filled by
// [Scan] with [ScanOptions.Trends]). Skipped files are not written; the
// caller reports them.
func WriteCSV(w io.Writer, res *mboxscan.Result) error {
	return writeCSV(w, res, nil)
}

func writeCSV(w io.Writer, res *mboxscan.Result, trends map[string]Trend) error {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	cw.Write(CSVHeader)
	r := NewScanReport(res, time.Time{})
	r.AddTrends(trends)
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
			optFloat(m.GrowthBytesPerDay), optFloat(m.FullInDays), deref(m.FullAt),
		})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	_, err := w.Write(b.Bytes())
	return err
}

func optFloat(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(*f, 'f', -1, 64)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
