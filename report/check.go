package report

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/mailkeep/mailkeep/mboxscan"
)

// Status is a monitoring plugin's status; its value is the plugin's exit
// code (Nagios plugin guidelines, "Plugin Return Codes").
type Status int

const (
	StatusOK       Status = 0
	StatusWarning  Status = 1
	StatusCritical Status = 2
	StatusUnknown  Status = 3
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "OK"
	case StatusWarning:
		return "WARNING"
	case StatusCritical:
		return "CRITICAL"
	default:
		return "UNKNOWN"
	}
}

// CheckOptions hold the thresholds that [Check] writes into the perfdata,
// in percent of each store's limit. They do not change the status, which
// comes from the levels the scanner assessed.
type CheckOptions struct {
	Warn, Crit float64
	// Early lists the stores WarnEarly raised (projected full within the
	// horizon) and Trends holds their trends: the line names the one to
	// be full soonest.
	Early  []string
	Trends map[string]Trend
}

const checkService = "MAILKEEP"

// Check computes the plugin status of a scan and its status line, in the
// form of the Nagios plugin guidelines:
//
//	MAILKEEP CRITICAL - 1 crit, 2 warn of 7 mailboxes; fullest /var/mail/bob 97.1% (2.0 GiB of 2.0 GiB) | mailboxes=7;;;0 ...
//
// A store (an mbox file, or a Maildir with all its folders) counts once:
// it is what a limit applies to. The status is CRITICAL when a store is at
// crit level, else WARNING when one is at warn, else OK; UNKNOWN when res
// holds no mailbox. When scanErr is set (a root could not be scanned) the
// status is UNKNOWN unless it is CRITICAL, so that a failure elsewhere
// never hides a full mailbox, and the text names the error.
//
// A store that growth trends project to be full within the horizon was
// raised to warn by WarnEarly; the text then names the soonest, "projected
// full: STORE in N days".
//
// The perfdata starts with the counts (mailboxes, warn, crit, skipped),
// then one 'STORE'=BYTESB;WARN;CRIT;0;LIMIT per store, by path. The line
// has no newline. res may be nil.
func Check(res *mboxscan.Result, scanErr error, opts CheckOptions) (Status, string) {
	if res == nil {
		res = &mboxscan.Result{}
	}
	stores := checkStores(res)
	var warn, crit int
	for _, m := range stores {
		switch m.Level {
		case mboxscan.LevelWarn:
			warn++
		case mboxscan.LevelCrit:
			crit++
		}
	}

	status := StatusOK
	switch {
	case len(stores) == 0:
		status = StatusUnknown
	case crit > 0:
		status = StatusCritical
	case warn > 0:
		status = StatusWarning
	}
	if scanErr != nil && status != StatusCritical {
		status = StatusUnknown
	}

	var text []string
	if scanErr != nil {
		text = append(text, "scan failed: "+plainText(oneLine(scanErr.Error())))
	}
	switch {
	case len(stores) == 0:
		text = append(text, "no mailboxes found")
	case crit > 0:
		text = append(text, fmt.Sprintf("%d crit, %d warn of %s", crit, warn, plural(len(stores), "mailbox")))
	case warn > 0:
		text = append(text, fmt.Sprintf("%d warn of %s", warn, plural(len(stores), "mailbox")))
	default:
		text = append(text, fmt.Sprintf("%s below %s%%", plural(len(stores), "mailbox"), trimFloat(opts.Warn)))
	}
	if len(stores) > 0 {
		f := fullest(stores)
		text = append(text, fmt.Sprintf("fullest %s %s%% (%s of %s)",
			plainText(storeKey(f)), percent(f.UsedRatio), ibytes(storeBytes(f)), ibytes(f.LimitBytes)))
	}
	if soon, ok := soonestFull(opts.Early, opts.Trends); ok {
		text = append(text, fmt.Sprintf("projected full: %s in %s", plainText(soon), InDays(opts.Trends[soon].FullInDays)))
	}
	if len(res.Skipped) > 0 {
		text = append(text, fmt.Sprintf("%d skipped", len(res.Skipped)))
	}

	perf := []string{
		fmt.Sprintf("mailboxes=%d;;;0", len(stores)),
		fmt.Sprintf("warn=%d;;;0", warn),
		fmt.Sprintf("crit=%d;;;0", crit),
		fmt.Sprintf("skipped=%d;;;0", len(res.Skipped)),
	}
	for _, m := range stores {
		perf = append(perf, fmt.Sprintf("%s=%dB;%d;%d;0;%d",
			perfLabel(storeKey(m)), storeBytes(m),
			threshold(m.LimitBytes, opts.Warn), threshold(m.LimitBytes, opts.Crit), m.LimitBytes))
	}
	return status, fmt.Sprintf("%s %s - %s | %s", checkService, status,
		strings.Join(text, "; "), strings.Join(perf, " "))
}

// CheckUnknown returns the UNKNOWN status line for a check that could not
// run (bad flags, say), with msg as its text.
func CheckUnknown(msg string) string {
	return fmt.Sprintf("%s %s - %s", checkService, StatusUnknown, plainText(oneLine(msg)))
}

// checkStores returns one mailbox per store (the first of its folders,
// which all carry the store's figures), sorted by store path.
func checkStores(res *mboxscan.Result) []*mboxscan.Mailbox {
	seen := make(map[string]bool)
	var out []*mboxscan.Mailbox
	for i := range res.Mailboxes {
		m := &res.Mailboxes[i]
		if k := storeKey(m); !seen[k] {
			seen[k] = true
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b *mboxscan.Mailbox) int { return strings.Compare(storeKey(a), storeKey(b)) })
	return out
}

// soonestFull is the store of early that trends project to be full
// first (ties by path).
func soonestFull(early []string, trends map[string]Trend) (string, bool) {
	if len(early) == 0 {
		return "", false
	}
	return slices.MinFunc(early, func(a, b string) int {
		if c := trends[a].FullAt.Compare(trends[b].FullAt); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	}), true
}

func fullest(stores []*mboxscan.Mailbox) *mboxscan.Mailbox {
	return slices.MinFunc(stores, func(a, b *mboxscan.Mailbox) int {
		if c := cmp.Compare(b.UsedRatio, a.UsedRatio); c != 0 {
			return c
		}
		return strings.Compare(storeKey(a), storeKey(b))
	})
}

// threshold is pct percent of limit, in whole bytes.
func threshold(limit int64, pct float64) int64 {
	return int64(float64(limit) * pct / 100)
}

// plainText makes s safe for a plugin's text: printable, and without the
// "|" that starts perfdata.
func plainText(s string) string {
	return strings.ReplaceAll(printable(s), "|", "_")
}

// perfLabel quotes a perfdata label. The guidelines allow any character
// but "=", and a single quote is written doubled; "|" would end the text
// part, so it is replaced too.
func perfLabel(s string) string {
	s = plainText(s)
	s = strings.ReplaceAll(s, "=", "_")
	s = strings.ReplaceAll(s, "'", "''")
	return "'" + s + "'"
}

// oneLine joins the lines of a message (errors.Join makes several) so
// that the status stays on the first line.
func oneLine(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ")
}

func trimFloat(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", f), "0"), ".")
}
