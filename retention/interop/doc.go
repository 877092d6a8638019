// Package interop holds no code: its tests prove mailkeep against the mail
// software users run, driven as real programs on this machine.
//
// # What is tested
//
//   - Delivery during prune: procmail (as an LDA with a ":0:" rule) and
//     Dovecot's dovecot-lda deliver a few hundred numbered messages into an
//     mbox while "mailkeep prune" rewrites it again and again; every
//     delivered message must be there exactly once, every kept original
//     byte for byte, and no removed one. procmail runs with --rewrite
//     rename and inplace; dovecot-lda with --rewrite auto, which must
//     rewrite in place (each prune's JSON "mode" is checked).
//   - Lock interplay: the same, for a fixed time, with procmail's locks
//     (dotlock, then fcntl) and Dovecot's defaults (mbox_write_locks =
//     fcntl dotlock); no side may fail or wait long, and the longest waits
//     are logged.
//
// Renaming where dovecot-lda delivers is not supported, and those cases
// are skipped: dovecot-lda takes fcntl before the dotlock and looks for a
// replaced mbox before it waits, not after, so one that waited through a
// rename holds the deleted file; it appends there, rewrites headers there
// or loops there for good. MAILKEEP_INTEROP_RENAME_DOVECOT=1 runs them
// anyway, to see that mailkeep saves what it can and says so.
//   - Readers after prune: doveadm (mbox and Maildir mail locations) lists
//     the same UIDs and flags as before minus the removed messages, with no
//     resync or corruption warning; mutt still sees new mail where there
//     was new mail, and none where there was none.
//   - Scanner against Dovecot: the counts and sizes "mailkeep scan" and
//     "mailkeep prune --dry-run --list" report agree with doveadm's.
//
// # Running
//
// Every test skips with a message naming the program it misses (Debian:
// apt-get install procmail dovecot-core mutt). No daemon is started:
// doveadm and dovecot-lda run against a minimal configuration in a
// temporary directory, as the user nobody when the tests run as root
// (Dovecot refuses mail access as root). The tests build mailkeep from
// ./cmd/mailkeep with the go command that runs them.
package interop
