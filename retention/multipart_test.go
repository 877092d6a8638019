package retention

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/mboxscan"
)

// fromLine is an mbox From_ line dated d.
func fromLine(d time.Time) string {
	return "From someone@example.org " + d.UTC().Format("Mon Jan _2 15:04:05 2006") + "\n"
}

// forwardingMessage is a multipart message dated d whose second part is a
// mailbox attached as text, its From_ lines not escaped: every mbox reader
// splits it there into pieces dated inner.
func forwardingMessage(d time.Time, inner ...time.Time) string {
	var b strings.Builder
	b.WriteString(fromLine(d))
	b.WriteString("From: Admin <admin@example.org>\nSubject: the mailbox you asked for\n")
	b.WriteString("Date: " + d.UTC().Format(time.RFC1123Z) + "\nMIME-Version: 1.0\n")
	b.WriteString("Content-Type: multipart/mixed; boundary=\"=-outer-=\"\n\n")
	b.WriteString("--=-outer-=\nContent-Type: text/plain\n\nHere it is.\n\n")
	b.WriteString("--=-outer-=\nContent-Type: text/plain; name=old.mbox\nContent-Disposition: attachment\n\n")
	for i, t := range inner {
		b.WriteString(fromLine(t))
		fmt.Fprintf(&b, "Subject: inner %d\n\nbody of inner message %d\n\n", i, i)
	}
	b.WriteString("--=-outer-=--\n\n")
	return b.String()
}

// truncatedMultipart is a multipart message dated d that ends before its
// closing delimiter, as a delivery cut short leaves it.
func truncatedMultipart(d time.Time, boundary string) string {
	return fromLine(d) + "Subject: cut short\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/alternative; boundary=" + boundary + "\n\n" +
		"--" + boundary + "\nContent-Type: text/plain\n\nthe first part, and then noth\n\n"
}

func plainMessage(d time.Time, n int) string {
	return fromLine(d) + fmt.Sprintf("Subject: plain %d\n\nplain body %d\n\n", n, n)
}

func pruneString(t *testing.T, data string) (string, *Result) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mbox")
	writeFile(t, path, []byte(data))
	res, err := PruneMbox(context.Background(), path, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(got), res
}

func countMessages(t *testing.T, data string) int {
	t.Helper()
	sc := mboxscan.NewScanner(strings.NewReader(data), "x")
	defer sc.Close()
	n := 0
	for {
		if _, err := sc.Next(); err != nil {
			return n
		}
		n++
	}
}

// A kept message with an unescaped mailbox attached keeps all of it,
// however old the pieces a reader splits off it look.
func TestPruneKeepsSplitMultipartWhole(t *testing.T) {
	old, young := oldDate, youngDate
	fwd := forwardingMessage(young, old, old.AddDate(0, 0, 1))
	if n := countMessages(t, fwd); n != 3 {
		t.Fatalf("the scanner splits the forwarding message into %d pieces, want 3 (the case this test is about)", n)
	}
	before, after := plainMessage(old, 1), plainMessage(old, 2)
	got, res := pruneString(t, before+fwd+after+plainMessage(young, 3))
	if want := fwd + plainMessage(young, 3); got != want {
		t.Errorf("mailbox is\n%s\nwant\n%s", got, want)
	}
	if res.MessagesRemoved != 2 {
		t.Errorf("removed %d, want the 2 old plain messages", res.MessagesRemoved)
	}
}

// An old forwarding message goes whole, pieces included.
func TestPruneRemovesOldSplitMultipartWhole(t *testing.T) {
	fwd := forwardingMessage(oldDate, oldDate, youngDate) // an inner piece looks young
	young := plainMessage(youngDate, 1)
	got, res := pruneString(t, fwd+young)
	if got != fwd+young {
		t.Errorf("a piece looked young, so the whole message must stay; mailbox is\n%s", got)
	}
	if res.MessagesRemoved != 0 {
		t.Errorf("removed %d, want 0", res.MessagesRemoved)
	}
	fwd = forwardingMessage(oldDate, oldDate, oldDate)
	got, res = pruneString(t, fwd+young)
	if got != young || res.MessagesRemoved != 3 {
		t.Errorf("removed %d (want 3) and left\n%s", res.MessagesRemoved, got)
	}
}

// A multipart message that is merely truncated holds nothing back: no
// later message ends with its delimiter, so each is judged alone.
func TestPruneTruncatedMultipartHoldsNothingBack(t *testing.T) {
	var in, want strings.Builder
	for i := range 5 {
		in.WriteString(truncatedMultipart(oldDate, fmt.Sprintf("b%d", i)))
		m := plainMessage(youngDate, i)
		in.WriteString(m)
		want.WriteString(m)
	}
	got, res := pruneString(t, in.String())
	if got != want.String() || res.MessagesRemoved != 5 {
		t.Errorf("removed %d (want the 5 truncated ones) and left\n%s", res.MessagesRemoved, got)
	}
}

// The search for the closing delimiter stops after maxOpenGroup messages:
// past that, the pieces are judged alone (a documented limit).
func TestPruneSplitMultipartBound(t *testing.T) {
	inner := make([]time.Time, maxOpenGroup+1)
	for i := range inner {
		inner[i] = oldDate
	}
	fwd := forwardingMessage(youngDate, inner...)
	got, res := pruneString(t, fwd)
	if res.MessagesRemoved != maxOpenGroup+1 {
		t.Errorf("removed %d, want %d", res.MessagesRemoved, maxOpenGroup+1)
	}
	if !strings.HasPrefix(fwd, strings.TrimSuffix(got, "--=-outer-=--\n\n")) {
		t.Errorf("left an unexpected mailbox:\n%.500s", got)
	}
	// One fewer piece and the closing delimiter is found: all kept.
	fwd = forwardingMessage(youngDate, inner[:maxOpenGroup-1]...)
	if got, _ := pruneString(t, fwd); got != fwd {
		t.Error("a forwarding message within the bound was cut")
	}
}

// Many truncated multipart messages in a row cost linear work: each tail
// is read once however many lookaheads pass over it.
func TestPruneManyTruncatedMultipart(t *testing.T) {
	var in bytes.Buffer
	for i := range 5000 {
		in.WriteString(truncatedMultipart(oldDate, fmt.Sprintf("b%d", i)))
	}
	in.WriteString(plainMessage(youngDate, 0))
	start := time.Now()
	got, res := pruneString(t, in.String())
	if res.MessagesRemoved != 5000 || got != plainMessage(youngDate, 0) {
		t.Errorf("removed %d, want 5000", res.MessagesRemoved)
	}
	t.Logf("5000 truncated multipart messages pruned in %s", time.Since(start))
}

// The real case from the corpus: in mailarc-1.txt a reply of 16 July 1998
// (multipart) carries a mailbox of 10 July as a message/rfc822 part, its
// From_ line unescaped. With a cutoff between the two dates the reply
// stays, and so must its attachment, though a reader takes it for an older
// message of its own.
func TestPruneCorpusForwardedMailbox(t *testing.T) {
	const file = "../../shared/corpus/mail-mbox-messageparser/t/mailboxes/mailarc-1.txt"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Skipf("corpus file not found (%v): the shared corpus is not here", err)
	}
	inner := []byte("From someone@imagecraft.com  Fri Jul 10 18:59:26 1998\n")
	closing := []byte("\n--Troop_of_Baboons_752_000--\n")
	if bytes.Count(data, inner) != 2 || !bytes.Contains(data, closing) {
		t.Skip("mailarc-1.txt is not the file this test knows")
	}
	opts := testOpts()
	opts.Policy = Policy{Before: time.Date(1998, 7, 12, 0, 0, 0, 0, time.UTC), IncludeFlagged: true}
	path := filepath.Join(t.TempDir(), "mbox")
	writeFile(t, path, data)
	if _, err := PruneMbox(context.Background(), path, opts); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	i := bytes.Index(got, []byte("Subject: Re: Handyboard/RWP without p-code"))
	if i < 0 {
		t.Fatal("the reply of 16 July is gone")
	}
	rest := got[i:]
	if j, k := bytes.Index(rest, inner), bytes.Index(rest, closing); j < 0 || k < j {
		t.Errorf("the reply of 16 July lost its attached mailbox of 10 July")
	}
}
