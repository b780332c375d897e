#!/usr/bin/env bash
# Builds the .deb from this build tree (cpack -G DEB), installs it into a scratch root with
# dpkg -x, and checks what a lab's IT gets: files in place, the config a conffile, the postinst
# creating the user, the unit passing systemd-analyze verify, the binary finding its profiles.
set -euo pipefail
build=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$build"
cpack -G DEB -D CPACK_PACKAGING_INSTALL_PREFIX=/usr -B "$work/out" >"$work/cpack.log" 2>&1 || { cat "$work/cpack.log"; exit 1; }
deb=$(ls "$work"/out/*.deb)
root="$work/root"
dpkg -x "$deb" "$root"
dpkg -e "$deb" "$work/control"
fail() { echo "FAIL: $*"; exit 1; }
for f in usr/bin/interfaced usr/lib/systemd/system/interfaced.service etc/interfaced/interfaced.json \
         usr/share/interfaced/profiles/sysmex-xn.json usr/share/interfaced/samples/demo-chemistry.astm; do
  [ -e "$root/$f" ] || fail "$f missing from the package"
done
grep -qx /etc/interfaced/interfaced.json "$work/control/conffiles" || fail "config is not a conffile"
grep -q "adduser --system" "$work/control/postinst" || fail "postinst does not create the service user"
# The installed binary finds the installed profiles (exe-relative), and the example config is valid.
INTERFACED_PROFILE_DIR= "$root/usr/bin/interfaced" check-config --no-device-check "$root/etc/interfaced/interfaced.json" \
  || fail "the packaged example configuration is not valid"
"$root/usr/bin/interfaced" replay --format text "$root/usr/share/interfaced/samples/demo-chemistry.astm" >/dev/null \
  || fail "the packaged binary cannot replay the packaged sample"
unit="$root/usr/lib/systemd/system/interfaced.service"
for key in Type=notify WatchdogSec= StateDirectory= LogsDirectory= SupplementaryGroups=dialout \
           NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes RestartPreventExitStatus=78; do
  grep -q "^$key" "$unit" || fail "unit lacks $key"
done
if command -v systemd-analyze >/dev/null; then
  # Verified as installed, with its binary paths pointing into the scratch root (the host has no
  # /usr/bin/interfaced; a --root= verify would need a whole OS tree for sysinit.target).
  mkdir -p "$work/units"
  sed "s|/usr/bin/interfaced|$root/usr/bin/interfaced|g" "$unit" >"$work/units/interfaced.service"
  systemd-analyze verify "$work/units/interfaced.service" 2>&1 | tee "$work/verify.log"
  ! grep -qiE "error|failed|unknown" "$work/verify.log" || fail "systemd-analyze verify reported problems"
else
  echo "SKIPPED: systemd-analyze not installed"
fi
echo "package ok: $(basename "$deb")"
