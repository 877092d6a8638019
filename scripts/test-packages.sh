#!/bin/sh
# test-packages.sh: build the release snapshot and check the .deb for real.
#
# It lists the .deb's files (dpkg-deb -c), installs it on this machine with
# dpkg, runs "mailkeep version", "man mailkeep-scan" and a scan from it,
# then removes and purges it and checks nothing is left. It exits non-zero
# on the first failure, and removes the package even then.
#
# Usage (as root, or with sudo available; Debian or Ubuntu):
#   scripts/test-packages.sh            # goreleaser release --snapshot --clean, then test
#   scripts/test-packages.sh --no-build # test the .deb already in dist/
#
# Slow (a full cross build), and it changes the machine it runs on, so it
# is not part of "go test ./...". It refuses to run when mailkeep is
# already installed.
set -eu

cd "$(dirname "$0")/.."

build=yes
case "${1:-}" in
"") ;;
--no-build) build=no ;;
*)
	echo "usage: $0 [--no-build]" >&2
	exit 2
	;;
esac

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
ok() { echo "ok: $*"; }

sudo=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || fail "run as root, or install sudo"
	sudo=sudo
fi
command -v dpkg >/dev/null || fail "dpkg not found: this test needs Debian or Ubuntu"

if dpkg -s mailkeep >/dev/null 2>&1 || [ -e /usr/bin/mailkeep ]; then
	fail "mailkeep is already installed here; remove it first (dpkg -P mailkeep)"
fi

if [ "$build" = yes ]; then
	goreleaser=$(command -v goreleaser || echo "$(go env GOPATH)/bin/goreleaser")
	[ -x "$goreleaser" ] ||
		fail "goreleaser not found: go install github.com/goreleaser/goreleaser/v2@v2.15.1"
	# goreleaser learns the commit and its date only when "git ls-remote
	# --get-url" answers; in a checkout without a remote it would build
	# with an empty commit and a year-1 date. Lend it one, for this run only.
	if [ -z "$(git remote)" ]; then
		export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url \
			GIT_CONFIG_VALUE_0=https://github.com/mailkeep/mailkeep.git
	fi
	"$goreleaser" check
	"$goreleaser" release --snapshot --clean
fi

arch=$(dpkg --print-architecture)
set -- dist/mailkeep_*_"$arch".deb
[ $# -eq 1 ] && [ -f "$1" ] || fail "want exactly one dist/mailkeep_*_$arch.deb, found: $*"
deb=$1
echo "== $deb"
dpkg-deb --field "$deb" Package Version Architecture Maintainer

# --- the package's contents ---------------------------------------------
listing=$(dpkg-deb -c "$deb")
echo "$listing" | awk '{print $1, $6}'
for path in \
	./usr/bin/mailkeep \
	./usr/share/man/man1/mailkeep.1.gz \
	./usr/share/man/man1/mailkeep-scan.1.gz \
	./usr/share/man/man1/mailkeep-check.1.gz \
	./usr/share/man/man1/mailkeep-version.1.gz \
	./usr/share/bash-completion/completions/mailkeep \
	./usr/share/zsh/vendor-completions/_mailkeep \
	./usr/share/fish/vendor_completions.d/mailkeep.fish \
	./usr/lib/systemd/system/mailkeep-scan.service \
	./usr/lib/systemd/system/mailkeep-scan.timer \
	./etc/cron.d/mailkeep \
	./etc/default/mailkeep \
	./usr/share/doc/mailkeep/copyright; do
	echo "$listing" | awk '{print $6}' | grep -qxF "$path" || fail "$deb lacks $path"
done
ok "the .deb holds the binary, man pages, completions, units, cron and default files"
if echo "$listing" | awk '{print $6}' | grep -q gendocs; then
	fail "the hidden gendocs command has a man page in $deb"
fi

control=$(mktemp -d)
scratch=$(mktemp -d)
installed=no
cleanup() {
	if [ "$installed" = yes ]; then
		echo "cleanup: purging mailkeep" >&2
		$sudo dpkg -P mailkeep >/dev/null 2>&1 || true
	fi
	rm -rf "$control" "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dpkg-deb -e "$deb" "$control"
for f in /etc/cron.d/mailkeep /etc/default/mailkeep; do
	grep -qxF "$f" "$control/conffiles" || fail "$f is not a conffile"
done
ok "conffiles: $(tr '\n' ' ' <"$control/conffiles")"
# Installed disabled: no maintainer script may enable or start anything.
for script in preinst postinst prerm postrm; do
	if [ -f "$control/$script" ] && grep -qE 'systemctl|deb-systemd|enable' "$control/$script"; then
		fail "$script touches systemd units"
	fi
done
dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./etc/cron.d/mailkeep >"$scratch/cron"
if grep -vE '^[[:space:]]*(#|$)' "$scratch/cron"; then
	fail "/etc/cron.d/mailkeep has an active line: it must be installed disabled"
fi
grep -q '^#.* root .*/usr/bin/mailkeep scan' "$scratch/cron" || fail "/etc/cron.d/mailkeep has no (commented) scan job"
ok "the cron job is commented out and no script enables the timer"

# --- install --------------------------------------------------------------
if ! command -v man >/dev/null; then
	echo "installing man-db for the man page check" >&2
	$sudo apt-get install -y --no-install-recommends man-db >/dev/null
fi
installed=yes
# Minimal images tell dpkg to skip /usr/share/man; let ours in.
$sudo dpkg --path-include='/usr/share/man/man1/mailkeep*' -i "$deb"
dpkg -s mailkeep | grep -q '^Status: install ok installed' || fail "dpkg -s: mailkeep not installed"
ok "installed $(dpkg-query -W -f '${Package} ${Version}' mailkeep)"

out=$(mailkeep version) || fail "mailkeep version failed"
echo "$out"
echo "$out" | grep -qE '^mailkeep [0-9][^ ]* \(commit [0-9a-f]{40}, built [0-9]{4}-[0-9]{2}-[0-9]{2}T' ||
	fail "mailkeep version does not show the release's version, commit and date"
ok "mailkeep version"

page=$(MANPAGER=cat MANWIDTH=80 man mailkeep-scan 2>&1) || fail "man mailkeep-scan: $page"
echo "$page" | sed -n '1,12p'
echo "$page" | grep -q 'EXIT STATUS' || fail "man mailkeep-scan has no EXIT STATUS"
echo "$page" | grep -q -- '--limit' || fail "man mailkeep-scan does not describe --limit"
ok "man mailkeep-scan"

bash -c '. /usr/share/bash-completion/completions/mailkeep && declare -F __start_mailkeep >/dev/null' ||
	fail "the bash completion does not load"
ok "bash completion loads"

[ ! -e /etc/systemd/system/timers.target.wants/mailkeep-scan.timer ] || fail "the timer was enabled on install"
if command -v systemd-analyze >/dev/null; then
	systemd-analyze verify --man=no /usr/lib/systemd/system/mailkeep-scan.service \
		/usr/lib/systemd/system/mailkeep-scan.timer || fail "systemd-analyze verify"
	ok "systemd-analyze verify: the units are valid, and the timer is not enabled"
fi
[ -d /var/lib/mailkeep ] || fail "/var/lib/mailkeep was not created"

# A scan with the installed binary, on a one-message mbox.
printf 'From alice@example.org Mon Jan  6 10:00:00 2025\nSubject: hi\n\nhello\n' >"$scratch/inbox"
json=$(mailkeep scan --format json "$scratch/inbox") || fail "mailkeep scan failed"
echo "$json" | grep -q '"messages": *1' || fail "mailkeep scan: want 1 message, got $json"
ok "mailkeep scan on a test mbox"

# --- remove ---------------------------------------------------------------
$sudo dpkg -r mailkeep
[ ! -e /usr/bin/mailkeep ] || fail "/usr/bin/mailkeep is still there after dpkg -r"
[ ! -e /usr/share/man/man1/mailkeep-scan.1.gz ] || fail "the man pages are still there after dpkg -r"
[ ! -e /usr/lib/systemd/system/mailkeep-scan.timer ] || fail "the timer is still there after dpkg -r"
! command -v mailkeep >/dev/null || fail "mailkeep is still on PATH after dpkg -r"
ok "dpkg -r mailkeep: the binary, man pages and units are gone (conffiles kept)"
$sudo dpkg -P mailkeep
installed=no
[ ! -e /etc/cron.d/mailkeep ] || fail "/etc/cron.d/mailkeep is still there after dpkg -P"
if dpkg -s mailkeep >/dev/null 2>&1; then
	fail "dpkg still knows mailkeep after dpkg -P"
fi
ok "dpkg -P mailkeep: nothing left"
echo "PASS: $deb"
