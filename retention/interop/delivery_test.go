package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// deliveryCase is one entry of the delivery tests' tables.
type deliveryCase struct {
	rewrite string   // --rewrite
	agents  []string // one delivery loop per entry
	mode    string   // the mode every prune that removes something must report
}

// name is the subtest's name: mode/agents.
func (c deliveryCase) name() string {
	return c.rewrite + "/" + strings.Join(slices.Compact(slices.Clone(c.agents)), "+")
}

// renameWithDovecot explains why no delivery test renames where
// dovecot-lda delivers; set MAILKEEP_INTEROP_RENAME_DOVECOT=1 to run those
// cases all the same (they are expected to fail).
const renameWithDovecot = "--rewrite rename where dovecot-lda delivers is not supported: " +
	"dovecot-lda takes fcntl before the dotlock (mbox_write_locks = fcntl dotlock) and looks for a " +
	"replaced mbox before it waits for fcntl, not after, so one that waited while mailkeep renamed " +
	"wakes up holding the deleted file: it appends there (carried over), rewrites headers there " +
	"(mail was doubled) or loops there for good (with procmail beside it, 3 runs in 5 hung); " +
	"auto rewrites a mailbox with Dovecot's X-IMAPbase in place instead"

// skipRenameWithDovecot skips a case that renames with dovecot-lda
// delivering, unless asked to run it.
func skipRenameWithDovecot(t *testing.T, c deliveryCase) {
	t.Helper()
	if c.rewrite == "rename" && slices.Contains(c.agents, "dovecot-lda") && os.Getenv("MAILKEEP_INTEROP_RENAME_DOVECOT") == "" {
		t.Skip(renameWithDovecot)
	}
}

// deliveryConfig describes one run of delivery agents against prunes.
type deliveryConfig struct {
	agents     []string      // one delivery loop per entry: "procmail" or "dovecot-lda"
	deliveries int           // total deliveries (an upper bound when duration is set)
	duration   time.Duration // deliver for this long (0: until deliveries are done)
	rewrite    string        // --rewrite mode
	mode       string        // the mode prune must report when it removes something
	messages   int           // messages in the generated mbox, half of them old
	bodySize   int           // bytes of body per generated message
	bands      int           // prunes that each remove a band of the old messages
	pruneGap   time.Duration // pause between prunes
}

// deliveryResult is what a run measured.
type deliveryResult struct {
	idleDelivery, delivery elapsedStats // per-agent-invocation wall times
	idlePrune, prunes      elapsedStats // per-prune wall times
	delivered              int
	troubles               []string // agent log lines that are not routine
	pruneNotes             []string // what mailkeep prune said on stderr
}

// agentTimeout is how long one delivery may take before the agent is
// killed and the delivery counted as failed: far more than procmail's
// 8-second lock sleeps, far less than the test's budget.
const agentTimeout = 45 * time.Second

// agentRunner delivers one message with a real delivery agent.
type agentRunner struct {
	name string
	cmd  func() *exec.Cmd
}

// setupAgents prepares the mailbox and the agents. The mailbox is the
// Dovecot INBOX of a daemonless setup when dovecot-lda is among them (so it
// belongs to the mail user), else mail/inbox in a temporary directory.
func setupAgents(t *testing.T, names []string) (mbox string, own func(), runners map[string]agentRunner) {
	t.Helper()
	runners = map[string]agentRunner{}
	var d *dovecot
	for _, n := range slices.Compact(slices.Sorted(slices.Values(names))) {
		switch n {
		case "procmail":
			need(t, "procmail")
			logVersion(t, "procmail")
		case "dovecot-lda":
			d = newDovecot(t, false)
			needFile(t, d.lda)
		default:
			t.Fatalf("unknown agent %q", n)
		}
	}
	base := ""
	own = func() {}
	if d != nil {
		base, mbox = d.dir, d.inbox(false)
		own = func() { d.own(t) }
		runners["dovecot-lda"] = agentRunner{"dovecot-lda", func() *exec.Cmd { return d.ldaCommand("sender@example.org") }}
	} else {
		base = worldDir(t)
		if err := os.Mkdir(filepath.Join(base, "mail"), 0o755); err != nil {
			t.Fatal(err)
		}
		mbox = filepath.Join(base, "mail", "inbox")
	}
	// procmail as an LDA with a one-rule rcfile: ":0:" takes procmail's
	// locks (the dotlock, then fcntl). A delivery that fails falls back to
	// DEFAULT, here a file the test checks is never created, instead of
	// /var/mail.
	// The rcfile lives apart: procmail calls an rcfile in a directory
	// another user owns (nobody's Dovecot tree) suspicious and ignores it.
	rcDir := t.TempDir()
	rc := filepath.Join(rcDir, "procmailrc")
	fallback := filepath.Join(rcDir, "procmail-fallback")
	rcText := fmt.Sprintf("ORGMAIL=%s\nDEFAULT=%s\n:0:\n%s\n", fallback, fallback, mbox)
	if err := os.WriteFile(rc, []byte(rcText), 0o644); err != nil {
		t.Fatal(err)
	}
	runners["procmail"] = agentRunner{"procmail", func() *exec.Cmd {
		return exec.Command("procmail", "-f", "sender@example.org", "-m", rc)
	}}
	t.Cleanup(func() {
		if _, err := os.Stat(fallback); err == nil {
			t.Errorf("procmail delivered to its fallback %s: a delivery failed", fallback)
		}
	})
	return mbox, own, runners
}

// runDeliveryDuringPrune generates an mbox, delivers into it with real
// agents from one or more loops while mailkeep prunes it again and again,
// and then checks that every delivery is there exactly once, every kept
// original byte for byte and no removed one.
func runDeliveryDuringPrune(t *testing.T, cfg deliveryConfig) deliveryResult {
	t.Helper()
	mbox, own, runners := setupAgents(t, cfg.agents)
	base := time.Now().Truncate(time.Second)
	data, origs := genMbox(cfg.messages, cfg.bodySize, base)
	if err := os.WriteFile(mbox, data, 0o600); err != nil {
		t.Fatal(err)
	}
	own()
	t.Logf("mbox: %d messages, %d bytes; delivery loops %v; --rewrite %s",
		len(origs), len(data), cfg.agents, cfg.rewrite)

	var res deliveryResult
	var mu sync.Mutex
	var delivered []int // sequence numbers the agents accepted
	deliver := func(a agentRunner, seq int) (time.Duration, error) {
		cmd := a.cmd()
		cmd.Stdin = bytes.NewReader(delivery(seq))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Start()
		if err == nil {
			// A stuck agent is killed (this process started it), so that
			// the test ends and says so.
			kill := time.AfterFunc(agentTimeout, func() { cmd.Process.Kill() })
			err = cmd.Wait()
			if !kill.Stop() {
				err = fmt.Errorf("killed after %v: %w", agentTimeout, err)
			}
		}
		took := time.Since(start)
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			// dovecot-lda logs every delivery as Info; anything else is
			// worth reading.
			if line != "" && !strings.Contains(line, ": Info: ") {
				mu.Lock()
				res.troubles = append(res.troubles, a.name+": "+line)
				mu.Unlock()
			}
		}
		if err != nil {
			return took, fmt.Errorf("%s delivery %d: %w: %s", a.name, seq, err, out.String())
		}
		mu.Lock()
		delivered = append(delivered, seq)
		mu.Unlock()
		return took, nil
	}
	pruneAt := func(now time.Time) (time.Duration, int, error) {
		start := time.Now()
		doc, errOut, err := tryPrune(t, "--older-than", "1y", "--now", now.Format(time.RFC3339),
			"--rewrite", cfg.rewrite, "--lock-timeout", "20s", mbox)
		if s := strings.TrimSpace(errOut); s != "" {
			res.pruneNotes = append(res.pruneNotes, s)
		}
		if err != nil {
			return time.Since(start), 0, err
		}
		m := doc.Mailboxes[0]
		if m.MessagesRemoved > 0 && cfg.mode != "" && m.Mode != cfg.mode {
			return time.Since(start), m.MessagesRemoved, fmt.Errorf("prune --rewrite %s rewrote the mailbox by %q, want %q", cfg.rewrite, m.Mode, cfg.mode)
		}
		return time.Since(start), m.MessagesRemoved, nil
	}
	bandNow := func(k int) time.Time { // band k of cfg.bands removes older old messages first
		return base.Add(-oldSpan * time.Duration(cfg.bands-k) / time.Duration(cfg.bands))
	}

	// Idle baselines: a few deliveries with no prune running, and the
	// first band's prune with no delivery running.
	var seq atomic.Int64
	var idle []time.Duration
	agentNames := slices.Compact(slices.Sorted(slices.Values(cfg.agents)))
	for range 3 {
		for _, name := range agentNames {
			took, err := deliver(runners[name], int(seq.Add(1)))
			if err != nil {
				t.Fatal(err)
			}
			idle = append(idle, took)
		}
	}
	res.idleDelivery = statsOf(idle)
	removed := 0
	took, n, err := pruneAt(bandNow(1))
	if err != nil {
		t.Fatal(err)
	}
	removed += n
	res.idlePrune = statsOf([]time.Duration{took})

	// Deliveries and prunes together.
	start := time.Now()
	hardStop := start.Add(cfg.duration + 90*time.Second) // every loop is bounded in time
	var wg sync.WaitGroup
	var waits []time.Duration
	var failures []error
	var running atomic.Int32
	running.Store(int32(len(cfg.agents)))
	for _, name := range cfg.agents {
		a := runners[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer running.Add(-1)
			for {
				if cfg.duration > 0 && time.Since(start) > cfg.duration || time.Now().After(hardStop) {
					return
				}
				n := int(seq.Add(1))
				if n > cfg.deliveries {
					return
				}
				took, err := deliver(a, n)
				mu.Lock()
				waits = append(waits, took)
				if err != nil {
					failures = append(failures, err)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	// The band prunes run while the deliveries do; with a duration, prunes
	// go on (removing nothing more, but under the same locks) as long as
	// the deliveries.
	var pruneTimes []time.Duration
	pruneFailed := false
	for k := 2; k <= cfg.bands || cfg.duration > 0 && running.Load() > 0; k++ {
		if k > cfg.bands+200 || time.Now().After(hardStop) {
			t.Errorf("prune loop stopped after %d prunes and %v", k-1, time.Since(start))
			break
		}
		now := base
		if k <= cfg.bands {
			now = bandNow(k)
		}
		took, n, err := pruneAt(now)
		pruneTimes = append(pruneTimes, took)
		if err != nil {
			// The deliveries go on and are checked all the same.
			t.Errorf("prune %d after %v: %v", k, took.Round(time.Millisecond), err)
			pruneFailed = true
			break
		}
		removed += n
		time.Sleep(cfg.pruneGap)
	}
	wg.Wait()
	if pruneFailed {
		// Finish the bands with nothing running, so that the checks below
		// still say whether any mail was lost.
		if _, _, err := pruneAt(base); err != nil {
			t.Errorf("idle prune after the failure: %v", err)
		}
	}
	res.delivery = statsOf(waits)
	res.prunes = statsOf(pruneTimes)
	for _, err := range failures {
		t.Error(err)
	}
	res.delivered = len(delivered)

	final, err := os.ReadFile(mbox)
	if err != nil {
		t.Fatal(err)
	}
	nOld := 0
	for _, o := range origs {
		if o.old {
			nOld++
		}
	}
	if removed != nOld && !pruneFailed {
		t.Errorf("prunes removed %d messages in all, want the %d old originals", removed, nOld)
	}
	withDovecot := slices.Contains(cfg.agents, "dovecot-lda")
	c := checkMbox(final, origs, withDovecot)
	exact := 0
	bad := 0
	for _, o := range origs {
		exact += c.origExact[o.n]
		var msg string
		switch {
		case o.old && c.origSeen[o.n] != 0:
			msg = fmt.Sprintf("old original %d (%s) is still there %d times", o.n, o.date, c.origSeen[o.n])
		case !o.old && (c.origSeen[o.n] != 1 || c.origSame[o.n] != 1):
			msg = fmt.Sprintf("kept original %d: Message-ID %d times, intact %d times, want 1 and 1", o.n, c.origSeen[o.n], c.origSame[o.n])
		default:
			continue
		}
		if bad++; bad <= 10 {
			t.Error(msg)
		}
	}
	if bad > 10 {
		t.Errorf("... %d originals wrong in all", bad)
	}
	// Dovecot writes X-UID (and X-IMAPbase, Status, X-Keywords) into every
	// message it syncs: then the kept originals are equal but for those.
	t.Logf("kept originals byte for byte: %d of %d", exact, len(origs)-nOld)
	if !withDovecot && exact != len(origs)-nOld {
		t.Errorf("only %d of %d kept originals are byte-exact", exact, len(origs)-nOld)
	}
	missing, dup := 0, 0
	for _, n := range delivered {
		switch got := c.seqs[n]; {
		case got == 0:
			missing++
			if missing <= 10 {
				t.Errorf("delivery %d is missing (damaged copies: %d)", n, c.seqBad[n])
			}
		case got > 1:
			dup++
			if dup <= 10 {
				t.Errorf("delivery %d is there %d times", n, got)
			}
		}
	}
	for n, got := range c.seqs {
		if !slices.Contains(delivered, n) {
			t.Errorf("delivery %d, which its agent failed, is there %d times", n, got)
		}
	}
	if len(c.seqBad) > 0 {
		t.Errorf("%d deliveries have a damaged body", len(c.seqBad))
	}
	if missing+dup > 0 {
		t.Errorf("%d deliveries missing, %d duplicated, of %d", missing, dup, res.delivered)
	}
	leftovers(t, filepath.Dir(mbox), filepath.Base(mbox))

	// mailkeep's own parser agrees: kept originals plus deliveries.
	out, errOut, code := mailkeep(t, "scan", "--format", "json", mbox)
	var scan scanJSON
	if err := json.Unmarshal([]byte(out), &scan); err != nil || code != 0 || len(scan.Mailboxes) != 1 {
		t.Fatalf("scan after the run: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if want := len(origs) - nOld + res.delivered; scan.Mailboxes[0].Messages != want {
		t.Errorf("scan counts %d messages, want %d kept originals and deliveries", scan.Mailboxes[0].Messages, want)
	}
	return res
}

// leftovers fails the test when dir holds anything besides the mailbox:
// lock files or mailkeep temporaries left behind.
func leftovers(t *testing.T, dir, mbox string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	for _, e := range ents {
		if e.Name() != mbox {
			extra = append(extra, e.Name())
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("left in %s besides %s: %v", dir, mbox, extra)
	}
}

// TestDeliveryDuringPrune: a few hundred deliveries by a real agent while
// prunes rewrite the mailbox; see runDeliveryDuringPrune for the checks.
// procmail delivers from one loop, as an MTA delivers to one mailbox (Postfix:
// one at a time per recipient): two procmails colliding on the dotlock make
// the loser sleep 8 s, which would measure procmail against itself.
// dovecot-lda, which waits in the kernel for fcntl first, runs three loops,
// with --rewrite auto, which must rewrite in place (Dovecot's X-IMAPbase is
// in the mailbox after its first delivery); see renameWithDovecot.
func TestDeliveryDuringPrune(t *testing.T) {
	dovecot3 := []string{"dovecot-lda", "dovecot-lda", "dovecot-lda"}
	for _, c := range []deliveryCase{
		{"rename", []string{"procmail"}, "rename"},
		{"inplace", []string{"procmail"}, "inplace"},
		{"auto", dovecot3, "inplace"},
		{"rename", dovecot3, "rename"},
	} {
		t.Run(c.name(), func(t *testing.T) {
			skipRenameWithDovecot(t, c)
			skipUnlessRewrite(t, c.rewrite)
			res := runDeliveryDuringPrune(t, deliveryConfig{
				agents: c.agents, deliveries: 300, rewrite: c.rewrite, mode: c.mode,
				messages: 4000, bodySize: 6000, bands: 8, pruneGap: 500 * time.Millisecond,
			})
			report(t, res)
		})
	}
}

// TestLockInterplay runs agents and prunes concurrently for ten seconds
// with a generous --lock-timeout: with procmail's locks (dotlock, then
// fcntl), Dovecot's defaults (mbox_write_locks = fcntl dotlock, the other
// order) and both agents at once, no prune may time out and no delivery
// fail, and the longest waits are reported. Where dovecot-lda delivers,
// prune runs with --rewrite auto and must rewrite in place.
func TestLockInterplay(t *testing.T) {
	for _, c := range []deliveryCase{
		{"rename", []string{"procmail"}, "rename"},
		{"inplace", []string{"procmail"}, "inplace"},
		{"auto", []string{"dovecot-lda", "dovecot-lda"}, "inplace"},
		{"auto", []string{"procmail", "dovecot-lda"}, "inplace"},
		{"rename", []string{"procmail", "dovecot-lda"}, "rename"},
	} {
		t.Run(c.name(), func(t *testing.T) {
			skipRenameWithDovecot(t, c)
			skipUnlessRewrite(t, c.rewrite)
			res := runDeliveryDuringPrune(t, deliveryConfig{
				agents: c.agents, deliveries: 2000, duration: 10 * time.Second,
				rewrite: c.rewrite, mode: c.mode, messages: 4000, bodySize: 6000, bands: 10, pruneGap: time.Second,
			})
			report(t, res)
			// procmail sleeps LOCKSLEEP (8 s) each time it finds the
			// dotlock taken, so one or two collisions cost 8 or 16 s;
			// more would mean the two sides hold each other up. A prune
			// that waited out its 20 s lock timeout has failed already.
			if res.delivery.max > 25*time.Second {
				t.Errorf("a delivery waited %v", res.delivery.max)
			}
			if res.prunes.max > 20*time.Second {
				t.Errorf("a prune took %v", res.prunes.max)
			}
		})
	}
}

func report(t *testing.T, res deliveryResult) {
	t.Helper()
	t.Logf("deliveries: %d; agent wall time idle %v, during prunes %v", res.delivered, res.idleDelivery, res.delivery)
	t.Logf("prune wall time idle %v, during deliveries %v", res.idlePrune, res.prunes)
	for i, line := range res.pruneNotes {
		if i == 10 {
			t.Logf("... %d more prune notes", len(res.pruneNotes)-i)
			break
		}
		t.Logf("prune said: %s", line)
	}
	for i, line := range res.troubles {
		if i == 20 {
			t.Logf("... %d more agent log lines", len(res.troubles)-i)
			break
		}
		t.Logf("agent log: %s", line)
	}
}
