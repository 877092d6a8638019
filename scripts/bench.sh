#!/usr/bin/env bash
# scripts/bench.sh [SCRATCH_DIR]
#
# Times mailkeep against the tools an admin would compare it with, in one
# run on the same page-cached files (issue 2, "Speed and memory"):
#
#   cat FILE >/dev/null                  vs  mailkeep scan --format json FILE
#   grep -c '^From ' FILE | cat          vs  the same scan
#   du -sb DIR                           vs  mailkeep scan --format json DIR
#   cp FILE COPY && sync COPY            vs  mailkeep prune --older-than 1y COPY
#   cp FILE NEW && sync NEW && mv NEW COPY   (the same, plus the rename)
#
# FILE is a generated 1 GiB mbox (about 15,000 messages, a third with
# base64 attachments, the first half of the bytes two years old) and DIR a
# generated 100,000-message Maildir. They are written once to SCRATCH_DIR
# (default /tmp/mailkeep-bench) and reused. grep's output goes to a pipe
# because GNU grep stops at the first match when it writes to /dev/null.
# Each command runs RUNS times (default 3); the table shows the best wall
# time and the peak RSS of that run (GNU time's %e and %M).
#
# Environment: RUNS, SIZE (default 1GiB), COUNT (default 100000).
# Not run by CI: it needs several GiB of disk and minutes of both cores.
set -euo pipefail

cd "$(dirname "$0")/.."
DIR=${1:-/tmp/mailkeep-bench}
RUNS=${RUNS:-3}
SIZE=${SIZE:-1GiB}
COUNT=${COUNT:-100000}
MBOX=$DIR/big.mbox
MAILDIR=$DIR/Maildir
GEN_VERSION=1

mkdir -p "$DIR"

if [ ! -x /usr/bin/time ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		apt-get install -y time >/dev/null
	else
		echo "bench: needs GNU time at /usr/bin/time (apt-get install time)" >&2
		exit 1
	fi
fi

# The binary: mailkeep, or the mboxscan test binary's scan hook while
# cmd/mailkeep does not build.
BIN=$DIR/mailkeep
if go build -o "$BIN" ./cmd/mailkeep 2>"$DIR/build.log"; then
	scan_cmd() { printf '%q scan --format json %q' "$BIN" "$1"; }
	HAVE_MAILKEEP=1
	echo "bench: built ./cmd/mailkeep" >&2
else
	echo "bench: ./cmd/mailkeep does not build (see $DIR/build.log); timing the mboxscan test binary instead" >&2
	go test -c -o "$DIR/mboxscan.test" ./mboxscan
	scan_cmd() { printf 'MAILKEEP_BENCH_SCAN=%q %q -test.run %q' "$1" "$DIR/mboxscan.test" '^TestBenchScanHook$'; }
	HAVE_MAILKEEP=0
fi

# The inputs, generated once (a stamp records the generator's settings).
stamp="v$GEN_VERSION size=$SIZE count=$COUNT"
if [ ! -f "$DIR/stamp" ] || [ "$(cat "$DIR/stamp")" != "$stamp" ]; then
	rm -rf "$MBOX" "$MAILDIR" "$DIR/stamp"
	echo "bench: generating a $SIZE mbox and a $COUNT-message Maildir in $DIR" >&2
	go run ./testdata/gen/genmbox -size "$SIZE" -out "$MBOX"
	go run ./testdata/gen/genmbox -maildir "$MAILDIR" -count "$COUNT"
	echo "$stamp" >"$DIR/stamp"
fi

# Warm the page cache and the dentry/inode caches.
cat "$MBOX" >/dev/null
du -sb "$MAILDIR" >/dev/null

# measure KEY 'SETUP' 'COMMAND': run SETUP (untimed) then COMMAND, RUNS
# times; keep the best wall time and that run's peak RSS in KiB.
declare -A WALL RSS
measure() {
	local key=$1 setup=$2 cmd=$3 out=$DIR/time.out best="" rss=""
	for ((i = 0; i < RUNS; i++)); do
		[ -n "$setup" ] && bash -c "$setup"
		/usr/bin/time -o "$out" -f '%e %M' bash -c "$cmd" >/dev/null
		read -r e m <"$out"
		if [ -z "$best" ] || awk -v a="$e" -v b="$best" 'BEGIN { exit !(a < b) }'; then
			best=$e rss=$m
		fi
	done
	WALL[$key]=$best
	RSS[$key]=$rss
	printf 'bench: %-12s %6ss %8s KiB   %s\n' "$key" "$best" "$rss" "$cmd" >&2
}

q() { printf '%q' "$1"; }

measure cat "" "cat $(q "$MBOX") >/dev/null"
measure grep "" "grep -c '^From ' $(q "$MBOX") | cat"
measure scan "" "$(scan_cmd "$MBOX") >/dev/null"
measure du "" "du -sb $(q "$MAILDIR") >/dev/null"
measure mdscan "" "$(scan_cmd "$MAILDIR") >/dev/null"

PRUNE=0
if [ "$HAVE_MAILKEEP" = 1 ] && "$BIN" prune --help >/dev/null 2>&1; then
	PRUNE=1
	COPY=$DIR/copy.mbox
	measure cp "rm -f $(q "$COPY")" "cp $(q "$MBOX") $(q "$COPY") && sync $(q "$COPY")"
	# The whole of a rewrite by hand, as issue 3 measured it: copy, fsync,
	# rename over a fresh copy, which frees the replaced file (its last
	# close is where the kernel releases its blocks; prune pays that too).
	measure cpmv "rm -f $(q "$COPY") $(q "$COPY.new") && cp $(q "$MBOX") $(q "$COPY") && sync $(q "$COPY")" \
		"cp $(q "$MBOX") $(q "$COPY.new") && sync $(q "$COPY.new") && mv $(q "$COPY.new") $(q "$COPY")"
	# A fresh copy for every run, written and synced before the clock starts.
	measure prune "rm -f $(q "$COPY") && cp $(q "$MBOX") $(q "$COPY") && sync $(q "$COPY")" \
		"$(q "$BIN") prune --older-than 1y $(q "$COPY") >/dev/null"
	rm -f "$COPY" "$COPY.new"
else
	echo "bench: mailkeep prune not available: prune timing skipped" >&2
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

echo
printf '%s, %s messages; Maildir of %s messages; best of %s runs\n' \
	"$(du -h "$MBOX" | cut -f1)" "$(grep -c '^From ' "$MBOX")" "$COUNT" "$RUNS"
echo
printf '%-40s %9s %12s\n' "command" "wall (s)" "peak RSS MiB"
row() { printf '%-40s %9s %12s\n' "$1" "${WALL[$2]}" "$(mib "${RSS[$2]}")"; }
row "cat FILE >/dev/null" cat
row "grep -c '^From ' FILE | cat" grep
row "mailkeep scan --format json FILE" scan
row "du -sb DIR" du
row "mailkeep scan --format json DIR" mdscan
if [ "$PRUNE" = 1 ]; then
	row "cp FILE COPY && sync COPY" cp
	row "cp FILE NEW && sync NEW && mv NEW COPY" cpmv
	row "mailkeep prune --older-than 1y COPY" prune
fi
echo
printf '%-24s %6s   %s\n' "ratio" "value" "target"
printf '%-24s %6s   %s\n' "scan / cat" "$(ratio "${WALL[scan]}" "${WALL[cat]}")" "<= 2 (aim 1.3)"
printf '%-24s %6s   %s\n' "scan / grep -c" "$(ratio "${WALL[scan]}" "${WALL[grep]}")" "< 1"
printf '%-24s %6s   %s\n' "maildir scan / du -sb" "$(ratio "${WALL[mdscan]}" "${WALL[du]}")" "<= 1.5"
if [ "$PRUNE" = 1 ]; then
	printf '%-24s %6s   %s\n' "prune / cp+sync" "$(ratio "${WALL[prune]}" "${WALL[cp]}")" "<= 1.5 (aim < 1)"
	printf '%-24s %6s\n' "prune / cp+sync+mv" "$(ratio "${WALL[prune]}" "${WALL[cpmv]}")"
fi
printf '%-24s %6s   %s\n' "scan peak RSS MiB" "$(mib "${RSS[scan]}")" "< 64"
printf '%-24s %6s   %s\n' "maildir scan RSS MiB" "$(mib "${RSS[mdscan]}")" "< 64"
