package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

// PruneReport is the JSON document of a prune, as the CLI contract
// defines it. The caller (cmd) fills it from the retention results, so
// that this package needs nothing from retention.
type PruneReport struct {
	DryRun    bool           `json:"dry_run"`
	Cutoff    string         `json:"cutoff"` // RFC 3339
	Mailboxes []PruneMailbox `json:"mailboxes"`
}

// PruneMailbox is one mailbox of a [PruneReport]. Error is nil when the
// mailbox was pruned (or left alone) without error. Removed is set (to a
// possibly empty list) with --list, and left out of the JSON otherwise.
//
// Beyond the contract's fields ("others may be added"): MessagesArchived
// counts the removed messages that are in the archive (--archive), Archive
// is the directory of that mailbox's archive files (null without an
// archive or when nothing was archived) and ArchiveFiles lists them; Mode
// is how an mbox was rewritten, "rename" or "inplace" (left out when it
// was not rewritten).
type PruneMailbox struct {
	Path             string          `json:"path"`
	Format           string          `json:"format"`
	MessagesBefore   int             `json:"messages_before"`
	MessagesRemoved  int             `json:"messages_removed"`
	BytesBefore      int64           `json:"bytes_before"`
	BytesRemoved     int64           `json:"bytes_removed"`
	KeptUndated      int             `json:"kept_undated"`
	Error            *string         `json:"error"`
	MessagesArchived int             `json:"messages_archived"`
	Archive          *string         `json:"archive"`
	ArchiveFiles     []string        `json:"archive_files,omitempty"`
	Mode             string          `json:"mode,omitempty"`
	Removed          *[]PruneRemoved `json:"removed,omitempty"`
}

// PruneRemoved is one removed message (--list). Date is RFC 3339.
type PruneRemoved struct {
	MessageID string `json:"message_id"`
	Date      string `json:"date"`
	Bytes     int64  `json:"bytes"`
	From      string `json:"from"`
	Subject   string `json:"subject"`
}

// PruneOptions choose how [Prune] renders a report.
type PruneOptions struct {
	Format Format
	// TTY selects the table for people (header, removed messages, totals)
	// over tab-separated rows for programs.
	TTY bool
}

// Prune renders rep in the chosen format: table, json or csv. Mailboxes
// are written in rep's order. Nothing is written when encoding fails.
func Prune(w io.Writer, rep *PruneReport, opts PruneOptions) error {
	var b bytes.Buffer
	var err error
	switch opts.Format {
	case FormatTable, "":
		err = writePruneTable(&b, rep, opts.TTY)
	case FormatJSON:
		err = writePruneJSON(&b, rep)
	case FormatCSV:
		err = writePruneCSV(&b, rep)
	default:
		return fmt.Errorf("unknown format %q for prune", opts.Format)
	}
	if err != nil {
		return err
	}
	_, err = w.Write(b.Bytes())
	return err
}

func writePruneJSON(b *bytes.Buffer, rep *PruneReport) error {
	r := *rep
	if r.Mailboxes == nil {
		r.Mailboxes = []PruneMailbox{}
	}
	enc := json.NewEncoder(b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	return nil
}

// PruneCSVHeader is the header row of the CSV format: the JSON fields of a
// mailbox except the lists, plus dry_run and cutoff on every row (the
// columns added since, archive and mode, come last).
var PruneCSVHeader = []string{
	"path", "format", "messages_before", "messages_removed", "bytes_before",
	"bytes_removed", "kept_undated", "error", "dry_run", "cutoff",
	"messages_archived", "archive", "mode",
}

func writePruneCSV(b *bytes.Buffer, rep *PruneReport) error {
	cw := csv.NewWriter(b)
	cw.Write(PruneCSVHeader)
	for _, m := range rep.Mailboxes {
		cw.Write([]string{
			m.Path, m.Format, strconv.Itoa(m.MessagesBefore), strconv.Itoa(m.MessagesRemoved),
			strconv.FormatInt(m.BytesBefore, 10), strconv.FormatInt(m.BytesRemoved, 10),
			strconv.Itoa(m.KeptUndated), deref(m.Error), strconv.FormatBool(rep.DryRun), rep.Cutoff,
			strconv.Itoa(m.MessagesArchived), deref(m.Archive), m.Mode,
		})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// writePruneTable writes, for people (tty), an aligned table with a header:
// MSGS REMOVED SIZE FREED UNDATED FORMAT PATH (with ARCHIVED after REMOVED
// when any mailbox archived messages), failed mailboxes marked with
// their error on the next line, the removed messages of each mailbox when
// listed, and a totals line. For programs, one tab-separated row per
// mailbox with the same columns as raw numbers, then the error (empty when
// none); the removed list is not written.
func writePruneTable(b *bytes.Buffer, rep *PruneReport, tty bool) error {
	if !tty {
		for _, m := range rep.Mailboxes {
			fmt.Fprintf(b, "%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", m.MessagesBefore, m.MessagesRemoved,
				m.BytesBefore, m.BytesRemoved, m.KeptUndated, m.Format, printable(m.Path), printable(deref(m.Error)))
		}
		return nil
	}
	verb := "removed"
	if rep.DryRun {
		verb = "would remove"
	}
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	var tot struct {
		before, removed, undated, failed, archived int
		bytesBefore, bytesRemoved                  int64
	}
	archiving := false
	for _, m := range rep.Mailboxes {
		archiving = archiving || m.MessagesArchived > 0 || m.Archive != nil
	}
	if len(rep.Mailboxes) > 0 {
		if archiving {
			fmt.Fprintln(tw, "MSGS\tREMOVED\tARCHIVED\tSIZE\tFREED\tUNDATED\tFORMAT\tPATH")
		} else {
			fmt.Fprintln(tw, "MSGS\tREMOVED\tSIZE\tFREED\tUNDATED\tFORMAT\tPATH")
		}
	}
	for _, m := range rep.Mailboxes {
		if archiving {
			fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%d\t%s\t%s\n", m.MessagesBefore, m.MessagesRemoved, m.MessagesArchived,
				ibytes(m.BytesBefore), ibytes(m.BytesRemoved), m.KeptUndated, m.Format, printable(m.Path))
		} else {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%d\t%s\t%s\n", m.MessagesBefore, m.MessagesRemoved,
				ibytes(m.BytesBefore), ibytes(m.BytesRemoved), m.KeptUndated, m.Format, printable(m.Path))
		}
		if m.Error != nil {
			pad := "\t\t\t\t\t\t"
			if archiving {
				pad += "\t"
			}
			fmt.Fprintf(tw, "%s  error: %s\n", pad, printable(*m.Error))
			tot.failed++
		}
		tot.archived += m.MessagesArchived
		tot.before += m.MessagesBefore
		tot.removed += m.MessagesRemoved
		tot.undated += m.KeptUndated
		tot.bytesBefore += m.BytesBefore
		tot.bytesRemoved += m.BytesRemoved
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, m := range rep.Mailboxes {
		if m.Removed == nil || len(*m.Removed) == 0 {
			continue
		}
		fmt.Fprintf(b, "\n%s %s:\n", printable(m.Path), verb)
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  DATE\tSIZE\tFROM\tSUBJECT\tMESSAGE-ID")
		for _, r := range *m.Removed {
			date := r.Date
			if len(date) >= 10 {
				date = date[:10]
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", date, ibytes(r.Bytes), printable(r.From), printable(r.Subject), printable(r.MessageID))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(b, "\n%s %s of %s (%s of %s) from %s; cutoff %s",
		verb, plural(tot.removed, "message"), strconv.Itoa(tot.before), ibytes(tot.bytesRemoved),
		ibytes(tot.bytesBefore), plural(len(rep.Mailboxes), "mailbox"), rep.Cutoff)
	if archiving {
		verb := "archived"
		if rep.DryRun {
			verb = "would archive"
		}
		fmt.Fprintf(b, "; %s %d", verb, tot.archived)
	}
	if tot.undated > 0 {
		fmt.Fprintf(b, "; %s kept undated", plural(tot.undated, "message"))
	}
	if tot.failed > 0 {
		fmt.Fprintf(b, "; %d failed", tot.failed)
	}
	b.WriteString("\n")
	return nil
}
