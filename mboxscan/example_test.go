package mboxscan_test

import (
	"fmt"
	"io"
	"strings"

	"github.com/mailkeep/mailkeep/mboxscan"
)

func ExampleScanner() {
	const mbox = `From alice@example.org Mon Jan  6 10:00:00 2025
Subject: lunch?
Status: RO

From here to eternity: a body line, not a new message.
>From an escaped line, also body.

From MAILER-DAEMON Tue Jan  7 11:00:00 2025
Subject: Undelivered Mail Returned to Sender

Sorry.
`
	sc := mboxscan.NewScanner(strings.NewReader(mbox), "example.mbox")
	defer sc.Close()
	for {
		m, err := sc.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		// [m.Offset, m.Offset+m.Length) is the message's span: the spans
		// tile the file, so copying them rewrites it byte for byte.
		fmt.Printf("%d+%d %s %q seen=%v bounce=%v\n", m.Offset, m.Length,
			m.Received.Format("2006-01-02"), m.Header.Subject, m.Seen(), m.Bounce())
	}
	fmt.Println("problems:", len(sc.Problems()))
	// Output:
	// 0+166 2025-01-06 "lunch?" seen=true bounce=false
	// 166+97 2025-01-07 "Undelivered Mail Returned to Sender" seen=false bounce=true
	// problems: 0
}
