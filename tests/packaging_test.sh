#!/usr/bin/env bash
# Builds the .deb from this build tree (cpack -G DEB), installs it into a scratch root with
# dpkg -x, and checks what a lab's IT gets: files in place (licence, changelog, manual page,
# completion, docs), the config a conffile, the maintainer scripts doing the Debian systemd steps,
# lintian without errors, a stripped binary with a -dbgsym package, the unit passing
# systemd-analyze verify and scoring <= 2.0 in systemd-analyze security, the binary finding its
# profiles.
set -euo pipefail
build=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$build"
cpack -G DEB -D CPACK_PACKAGING_INSTALL_PREFIX=/usr -B "$work/out" >"$work/cpack.log" 2>&1 || { cat "$work/cpack.log"; exit 1; }
deb=$(ls "$work"/out/*.deb)
ls "$work"/out/interfaced-dbgsym_*.ddeb >/dev/null 2>&1 || { echo "FAIL: no -dbgsym package"; exit 1; }
root="$work/root"
dpkg -x "$deb" "$root"
dpkg -e "$deb" "$work/control"
fail() { echo "FAIL: $*"; exit 1; }
for f in usr/bin/interfaced usr/lib/systemd/system/interfaced.service etc/interfaced/interfaced.json \
         usr/share/interfaced/profiles/sysmex-xn.json usr/share/interfaced/samples/demo-chemistry.astm \
         usr/share/doc/interfaced/copyright usr/share/doc/interfaced/changelog.gz \
         usr/share/doc/interfaced/configuration.md usr/share/doc/interfaced/rules.example.json \
         usr/share/bash-completion/completions/interfaced usr/share/interfaced/help_items.json; do
  [ -e "$root/$f" ] || fail "$f missing from the package"
done
grep -qx /etc/interfaced/interfaced.json "$work/control/conffiles" || fail "config is not a conffile"
grep -q "adduser --system" "$work/control/postinst" || fail "postinst does not create the service user"
grep -q "deb-systemd-helper enable" "$work/control/postinst" || fail "postinst does not enable the service"
grep -q "deb-systemd-invoke \"\$action\"" "$work/control/postinst" || fail "postinst does not start / restart the service"
grep -q "deb-systemd-invoke stop" "$work/control/prerm" || fail "prerm does not stop the service"
grep -q "deb-systemd-helper purge" "$work/control/postrm" || fail "postrm does not purge the unit state"
file "$root/usr/bin/interfaced" | grep -q ", stripped" || fail "the packaged binary is not stripped"
grep -q "^ [a-z]" "$work/control/control" || fail "the package has no extended description"
grep -q "Apache License" "$root/usr/share/doc/interfaced/copyright" || fail "copyright names no licence"
# The completion is the binary's own; it must complete subcommands.
bash -c "source '$root/usr/share/bash-completion/completions/interfaced'; COMP_WORDS=(interfaced outbox l); COMP_CWORD=2; _interfaced; [ \"\${COMPREPLY[*]}\" = list ]" \
  || fail "bash completion does not complete 'interfaced outbox l' to 'list'"
if command -v help2man >/dev/null; then
  [ -e "$root/usr/share/man/man1/interfaced.1.gz" ] || fail "no manual page"
  zcat "$root/usr/share/man/man1/interfaced.1.gz" | grep -q "^simulate" || fail "the manual page does not list the commands"
else
  echo "SKIPPED: help2man not installed (no manual page to check)"
fi
if command -v lintian >/dev/null; then
  # --allow-root: CI containers run as root. Errors fail the test; warnings are listed.
  lintian --allow-root --tag-display-limit 0 "$deb" >"$work/lintian.log" 2>&1 || true
  cat "$work/lintian.log"
  ! grep -q "^E: " "$work/lintian.log" || fail "lintian reports errors"
else
  echo "SKIPPED: lintian not installed"
fi
# The installed binary finds the installed profiles (exe-relative), and the example config is valid.
INTERFACED_PROFILE_DIR= "$root/usr/bin/interfaced" check-config --no-device-check "$root/etc/interfaced/interfaced.json" \
  || fail "the packaged example configuration is not valid"
"$root/usr/bin/interfaced" replay --format text "$root/usr/share/interfaced/samples/demo-chemistry.astm" >/dev/null \
  || fail "the packaged binary cannot replay the packaged sample"
# The help built into the binary is the help the package installs.
cmp -s <(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["items"], sort_keys=True))' "$root/usr/share/interfaced/help_items.json") \
       <("$root/usr/bin/interfaced" help export 2>/dev/null | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["items"], sort_keys=True))') \
  || fail "the installed help_items.json differs from the help built into the binary"
unit="$root/usr/lib/systemd/system/interfaced.service"
for key in Type=notify WatchdogSec= StateDirectory= LogsDirectory= SupplementaryGroups=dialout \
           NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes RestartPreventExitStatus=78 \
           UMask=0027 LogsDirectoryMode=0750 "DeviceAllow=char-usb_serial rw" "DeviceAllow=char-ttyS rw"; do
  grep -q "^$key" "$unit" || fail "unit lacks $key"
done
# The configuration check is the main process's (exit 78): a failing ExecStartPre= would restart-loop.
! grep -q "^ExecStartPre=" "$unit" || fail "unit checks the configuration in ExecStartPre= (restarts in a loop on a bad file)"
if command -v systemd-analyze >/dev/null; then
  # Verified as installed, with its binary paths pointing into the scratch root (the host has no
  # /usr/bin/interfaced; a --root= verify would need a whole OS tree for sysinit.target).
  mkdir -p "$work/units"
  sed "s|/usr/bin/interfaced|$root/usr/bin/interfaced|g" "$unit" >"$work/units/interfaced.service"
  systemd-analyze verify "$work/units/interfaced.service" 2>&1 | tee "$work/verify.log"
  ! grep -qiE "error|failed|unknown" "$work/verify.log" || fail "systemd-analyze verify reported problems"
  if systemd-analyze security --help 2>/dev/null | grep -q -- --offline; then
    systemd-analyze security --offline=true "$work/units/interfaced.service" >"$work/security.log" 2>&1 || true
    score=$(grep -o "Overall exposure level for interfaced.service: [0-9.]*" "$work/security.log" | grep -o "[0-9.]*$")
    echo "systemd-analyze security: $score"
    [ -n "$score" ] || { cat "$work/security.log"; fail "no security score"; }
    awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || { cat "$work/security.log"; fail "unit exposure $score > 2.0"; }
  fi
else
  echo "SKIPPED: systemd-analyze not installed"
fi
echo "package ok: $(basename "$deb") $(stat -c %s "$deb") bytes, installed $(dpkg-deb -f "$deb" Installed-Size) KiB"
