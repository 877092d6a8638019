package mboxlock_test

import (
	"context"
	"errors"
	"log"
	"os"
	"syscall"
	"time"

	"github.com/mailkeep/mailkeep/retention/mboxlock"
)

// A rewrite holds the locks from before it reads the mbox until after the
// new file is renamed over it.
func ExampleLock() {
	const path = "/var/mail/alice"
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOFOLLOW, 0) // fcntl needs O_RDWR
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()

	ctx := context.Background()
	held, err := mboxlock.Lock(ctx, path, f, mboxlock.Options{Timeout: 30 * time.Second})
	switch {
	case errors.Is(err, mboxlock.ErrTimeout):
		log.Fatalf("mailbox busy, try later: %v", err)
	case err != nil:
		log.Fatal(err)
	}
	defer held.Unlock()
	held.KeepFresh(ctx)

	// ... read f, write the kept messages to a temp file, fsync ...

	if err := held.Check(); err != nil {
		log.Fatal(err) // lost the dotlock: do not rename
	}
	// ... rename the temp file over path, fsync the directory ...
}
