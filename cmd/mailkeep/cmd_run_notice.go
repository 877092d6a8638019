package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/mail"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/mailkeep/mailkeep/mboxscan"
	"github.com/mailkeep/mailkeep/report"
	"github.com/mailkeep/mailkeep/retention"
	"github.com/mailkeep/mailkeep/retention/history"
)

// announcement is what one mailbox's owner is to be told.
type announcement struct {
	kind        string    // history.KindRemoval or KindReport
	cutoff      time.Time // messages dated before it are announced
	removeAfter time.Time // removal: not before this instant
	mb          *mboxscan.Mailbox
	owner       report.Owner
	rule        retention.Rule
	policy      retention.Policy
	remove      report.NoticeRemoval
	largest     []report.NoticeMessage
}

// notifier collects the announcements of a run and mails one notice per
// owner, through the notify command's renderer and delivery.
type notifier struct {
	tmpl    *report.NoticeTemplate
	to      report.AddressBook
	sender  report.Sender
	rate    report.Rate
	from    string // the From header
	envFrom string // its address: the envelope sender
	host    string
	anns    []announcement
}

func (n *notifier) add(a announcement) { n.anns = append(n.anns, a) }

// prepareNotify checks the notification settings before anything runs:
// a template or an address template that does not work is a
// configuration error (exit 2).
func (r *runner) prepareNotify() error {
	c := r.cfg.Notify
	if !c.Enabled {
		return nil
	}
	bad := func(key string, err error) error {
		return &exitStatus{code: 2, err: fmt.Errorf("config %s: key notify.%s: %w", r.cfg.File, key, err)}
	}
	n := &notifier{}
	var err error
	if c.Template != "" {
		n.tmpl, err = report.ReadNoticeTemplate(c.Template)
	} else {
		lang := c.Lang
		if lang == "" {
			lang = "en"
		}
		n.tmpl, err = report.BuiltinNoticeTemplate(lang)
	}
	if err != nil {
		return bad("template", err)
	}
	if n.to, err = report.ParseToTemplate(c.To); err != nil {
		return bad("to", err)
	}
	if c.Rate != "" {
		if n.rate, err = report.ParseRate(c.Rate); err != nil {
			return bad("rate", err)
		}
	}
	n.host, _ = os.Hostname()
	n.from = c.From
	if n.from == "" {
		n.from = "postmaster@" + n.host
	}
	a, err := mail.ParseAddress(n.from)
	if err != nil {
		return bad("from", err)
	}
	n.envFrom = a.Address
	if c.SMTP != "" {
		n.sender = &report.SMTP{Addr: c.SMTP, User: c.SMTPUser, Password: os.Getenv("MAILKEEP_SMTP_PASSWORD")}
	} else {
		n.sender = &report.Sendmail{Path: c.Sendmail}
	}
	r.notify = n
	return nil
}

// ownerKey groups announcements by owner.
func ownerKey(o report.Owner) string {
	return fmt.Sprintf("%s\x00%s\x00%d", o.User, o.Domain, o.UID)
}

// outgoingNotice is one owner's message and what it announces.
type outgoingNotice struct {
	out  report.Outgoing
	anns []announcement
}

// sendNotices mails one notice per owner with something to hear and
// records each notice once it was handed to the mail system. A dry run
// only counts them.
func (r *runner) sendNotices(ctx context.Context) {
	n := r.notify
	if n == nil || len(n.anns) == 0 {
		return
	}
	var order []string
	byOwner := map[string][]announcement{}
	for _, a := range n.anns {
		k := ownerKey(a.owner)
		if _, ok := byOwner[k]; !ok {
			order = append(order, k)
		}
		byOwner[k] = append(byOwner[k], a)
	}
	var msgs []outgoingNotice
	for _, k := range order {
		o, err := r.buildNotice(byOwner[k])
		if err != nil {
			r.fail("notice for %s: %v", report.Printable(byOwner[k][0].owner.String()), err)
			continue
		}
		msgs = append(msgs, o)
	}
	if r.s.dryRun {
		r.tally.notified += len(msgs)
		return
	}
	outs := make([]report.Outgoing, len(msgs))
	for i, m := range msgs {
		outs[i] = m.out
	}
	sum, _ := report.Deliver(ctx, n.sender, outs, report.DeliverOptions{Rate: n.rate})
	for i, res := range sum.Results {
		switch {
		case !res.Attempted:
			r.fail("notice for %s: not sent (delivery stopped)", report.Printable(res.Label))
		case res.Err != nil:
			r.fail("notice for %s: %v", report.Printable(res.Label), res.Err)
		default:
			r.tally.notified++
			for _, a := range msgs[i].anns {
				err := r.db.RecordNotice(ctx, history.Notice{Path: a.mb.Path, SentAt: r.now, Cutoff: a.cutoff, Kind: a.kind})
				if err != nil {
					r.fail("%v", err)
				}
			}
		}
	}
}

// buildNotice renders one owner's notice.
func (r *runner) buildNotice(anns []announcement) (outgoingNotice, error) {
	n := r.notify
	owner := anns[0].owner
	addr, err := n.to.Address(owner)
	if err != nil {
		return outgoingNotice{}, err
	}
	nt := &report.Notice{
		User: owner.User, UID: owner.UID, Domain: owner.Domain,
		Address: addr, To: addr, Admin: n.from, Cc: r.cfg.Notify.Cc,
		Host: n.host, Now: r.now, Level: mboxscan.LevelOK,
		HasPolicy: true, KeepsFlagged: true,
	}
	byPath := map[string]*announcement{}
	var policies []string
	for i := range anns {
		a := &anns[i]
		byPath[a.mb.Path] = a
		if d := a.policy.String(); !slices.Contains(policies, d) {
			policies = append(policies, d)
		}
		if a.cutoff.After(nt.Cutoff) {
			nt.Cutoff = a.cutoff
		}
		if nt.DateKind == "" {
			nt.DateKind = a.policy.DateKind
			if nt.DateKind == "" {
				nt.DateKind = mboxscan.DateReceived
			}
		}
		nt.KeepsFlagged = nt.KeepsFlagged && !a.policy.IncludeFlagged
		// The first removal the notice announces.
		if !a.removeAfter.IsZero() && (nt.RemoveAfter.IsZero() || a.removeAfter.Before(nt.RemoveAfter)) {
			nt.RemoveAfter = a.removeAfter
		}
		nt.Largest = append(nt.Largest, a.largest...)
	}
	nt.Policy = strings.Join(policies, "; ")
	slices.SortStableFunc(nt.Largest, func(a, b report.NoticeMessage) int { return int(min(max(b.Bytes-a.Bytes, -1), 1)) })
	nt.Largest = nt.Largest[:min(len(nt.Largest), report.DefaultLargest)]

	// All of the owner's mailboxes and stores, for the picture.
	seenStore := map[string]bool{}
	for i := range r.res.Mailboxes {
		mb := &r.res.Mailboxes[i]
		if ownerKey(r.owner(mb)) != ownerKey(owner) {
			continue
		}
		row := report.NoticeMailbox{
			Path: mb.Path, Name: retention.FolderName(mb.Path, strings.TrimPrefix(mb.Folder, "."), mb.Format == mboxscan.FormatMaildir),
			Format: mb.Format, Folder: mb.Folder, Store: mb.Store,
			Messages: mb.Messages, Bytes: mb.Bytes, Oldest: mb.Oldest, Newest: mb.Newest,
		}
		if a := byPath[mb.Path]; a != nil {
			row.Remove = a.remove
			nt.Remove.Messages += a.remove.Messages
			nt.Remove.Bytes += a.remove.Bytes
			nt.Remove.Undated += a.remove.Undated
			if !a.remove.Oldest.IsZero() && (nt.Remove.Oldest.IsZero() || a.remove.Oldest.Before(nt.Remove.Oldest)) {
				nt.Remove.Oldest = a.remove.Oldest
			}
			if a.remove.Newest.After(nt.Remove.Newest) {
				nt.Remove.Newest = a.remove.Newest
			}
		}
		nt.Mailboxes = append(nt.Mailboxes, row)
		nt.Messages += mb.Messages
		nt.Bytes += mb.Bytes
		st := storeOf(mb)
		if seenStore[st] {
			continue
		}
		seenStore[st] = true
		over := mb.StoreBytes >= mb.LimitBytes && mb.LimitBytes > 0
		ns := report.NoticeStore{
			Path: st, Bytes: mb.StoreBytes, LimitBytes: mb.LimitBytes, UsedRatio: mb.UsedRatio,
			Level: mb.Level, OverLimit: over, Quota: mb.Quota != nil && mb.Quota.LimitBytes > 0,
		}
		if t, ok := r.storeTrends[st]; ok {
			ns.SetTrend(t)
		}
		nt.Stores = append(nt.Stores, ns)
		nt.OverLimit = nt.OverLimit || over
		if levelRank(mb.Level) > levelRank(nt.Level) {
			nt.Level = mb.Level
		}
	}
	if nt.OverLimit {
		// A full mailbox cannot take the notice: the admin gets it.
		nt.To, nt.Redirected = n.from, true
	}
	subject, body, err := n.tmpl.Render(nt)
	if err != nil {
		return outgoingNotice{}, err
	}
	var b bytes.Buffer
	if err := report.WriteMessage(&b, nt, subject, body, report.MessageOptions{From: n.from, Date: r.now}); err != nil {
		return outgoingNotice{}, err
	}
	to := []string{addressOnly(nt.To)}
	for _, c := range nt.Cc {
		to = append(to, addressOnly(c))
	}
	return outgoingNotice{
		out: report.Outgoing{
			Envelope: report.Envelope{From: n.envFrom, To: to},
			Msg:      b.Bytes(),
			Label:    fmt.Sprintf("%s <%s>", owner, addressOnly(nt.To)),
		},
		anns: anns,
	}, nil
}

func addressOnly(s string) string {
	if a, err := mail.ParseAddress(s); err == nil {
		return a.Address
	}
	return s
}

func levelRank(l mboxscan.Level) int {
	switch l {
	case mboxscan.LevelCrit:
		return 2
	case mboxscan.LevelWarn:
		return 1
	}
	return 0
}

// writeMetrics writes the textfile: the scan's metrics (report.WriteMetrics)
// and the run's own, labelled with the shard.
func (r *runner) writeMetrics(scanDur time.Duration) {
	path := r.cfg.MetricsTextfile
	if path == "" || r.s.dryRun {
		return
	}
	success := r.tally.failed == 0
	last := r.now
	if !success {
		var err error
		if last, err = report.ReadLastSuccess(path); err != nil {
			r.warn("%v", err)
		}
	}
	err := report.WriteTextfile(path, func(w io.Writer) error {
		// A sharded run labels every series with its shard, as
		// writeRunMetrics does: the hosts of a fleet write the same metric
		// names. (Unsharded, the label is left out; an empty label is the
		// same as none to Prometheus.)
		m := report.MetricsOptions{Duration: scanDur, LastSuccess: last, Success: success}
		if !r.s.shard.IsZero() {
			m.Labels = map[string]string{"shard": r.s.shard.String()}
		}
		err := report.WriteMetrics(w, r.res, m)
		if err != nil {
			return err
		}
		return r.writeRunMetrics(w)
	})
	if err != nil {
		r.fail("%v", err)
	}
}

// writeRunMetrics writes what the run did and the stores' trends. Every
// series carries the shard ("" when the run is not sharded), so that the
// hosts of a fleet can be told apart and summed.
func (r *runner) writeRunMetrics(w io.Writer) error {
	reg := prometheus.NewPedanticRegistry()
	shard := r.s.shard.String()
	runGauge := func(name, help string, v float64) {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"shard"})
		g.WithLabelValues(shard).Set(v)
		reg.MustRegister(g)
	}
	t := r.tally
	runGauge("mailkeep_run_mailboxes", "Mailboxes the last run scanned.", float64(t.scanned))
	runGauge("mailkeep_run_removed_messages", "Messages the last run removed.", float64(t.removed))
	runGauge("mailkeep_run_removed_bytes", "Bytes the last run removed.", float64(t.bytesRemoved))
	runGauge("mailkeep_run_archived_messages", "Messages the last run archived.", float64(t.archived))
	runGauge("mailkeep_run_notices", "Notices the last run sent.", float64(t.notified))
	runGauge("mailkeep_run_failures", "Mailboxes and notices that failed in the last run.", float64(t.failed))
	runGauge("mailkeep_run_timestamp_seconds", "When the last run ran (its clock).", float64(r.now.Unix()))

	growth := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mailkeep_store_growth_bytes_per_day",
		Help: "Growth of the store fitted over recent runs (Theil-Sen)."}, []string{"store", "shard"})
	full := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mailkeep_store_full_timestamp_seconds",
		Help: "When the store is projected to reach its limit; absent when it is not growing."}, []string{"store", "shard"})
	reg.MustRegister(growth, full)
	for _, tr := range r.trends {
		store := tr.Store
		if !utf8.ValidString(store) {
			store = strconv.Quote(store) // label values must be UTF-8
		}
		growth.WithLabelValues(store, shard).Set(tr.GrowthBytesPerDay)
		if tr.FullAt != nil {
			at, _ := time.Parse(time.RFC3339, *tr.FullAt)
			full.WithLabelValues(store, shard).Set(float64(at.Unix()))
		}
	}
	fams, err := reg.Gather()
	if err != nil {
		return fmt.Errorf("gather run metrics: %w", err)
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			return fmt.Errorf("write run metrics: %w", err)
		}
	}
	return nil
}
