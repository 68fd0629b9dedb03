#!/usr/bin/env bash
# The installed layout and the Debian package, checked the way an operator meets them: `cmake --install` into a
# scratch root, and `cpack -G DEB` unpacked into another; in each, the binaries run (--version, --check-config on
# the installed configuration and policy), the tokenizer and documentation are in place, and systemd-analyze
# verify finds nothing to say about the units. The package's control data: dependencies from the binaries'
# shared libraries, the postinst that creates the service user, the configuration as conffiles.
# Usage: package_test.sh BUILD_DIR
set -euo pipefail
build=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check_root() {
  local root=$1
  for b in rampartd rampart-client rampart-admin rampart-alerts rampart-inspect rampart-bench; do
    [ -x "$root/usr/bin/$b" ] || { echo "missing $root/usr/bin/$b"; exit 1; }
  done
  "$root/usr/bin/rampartd" --version | grep -q '^rampartd [0-9]'
  "$root/usr/bin/rampartd" --check-config "$root/etc/rampart/rampart.toml"
  "$root/usr/bin/rampartd" --check-config "$root/etc/rampart/policy.toml"
  "$root/usr/bin/rampart-client" --help | grep -q '^usage: rampart-client'
  [ -f "$root/usr/share/rampart/deepseek-v3-tokenizer/tokenizer.json" ]
  [ -f "$root/usr/share/doc/rampart/operations.md" ]
  local units="$tmp/units-$(basename "$root")"
  mkdir -p "$units"
  for u in rampartd.service rampart-shard@.service; do
    [ -f "$root/usr/lib/systemd/system/$u" ] || { echo "missing unit $u"; exit 1; }
    # The binary where this root has it: verify checks that ExecStart is executable.
    sed "s#/usr/bin/rampartd#$root/usr/bin/rampartd#g" "$root/usr/lib/systemd/system/$u" > "$units/$u"
  done
  cp "$units/rampart-shard@.service" "$units/rampart-shard@0.service"
  for u in rampartd.service rampart-shard@0.service; do
    # It exits 0 even when it warns: a clean unit is one it prints nothing about.
    local said
    said=$(cd "$units" && systemd-analyze verify --man=no "$units/$u" 2>&1)
    [ -z "$said" ] || { echo "systemd-analyze verify $u:"; echo "$said"; exit 1; }
  done
}

DESTDIR="$tmp/installed" cmake --install "$build" >/dev/null
check_root "$tmp/installed"

(cd "$build" && cpack -G DEB -B "$tmp/pkg" >/dev/null)
deb=$(ls "$tmp"/pkg/rampart_*_amd64.deb)
dpkg-deb -x "$deb" "$tmp/deb"
check_root "$tmp/deb"
dpkg-deb -f "$deb" Depends | grep -q 'libzmq5'
dpkg-deb -f "$deb" Depends | grep -q 'libcaf-core0.17'
dpkg-deb -f "$deb" Depends | grep -q 'adduser'
dpkg-deb -e "$deb" "$tmp/control"
grep -q 'adduser --system' "$tmp/control/postinst"
grep -qx '/etc/rampart/rampart.toml' "$tmp/control/conffiles"
grep -qx '/etc/rampart/policy.toml' "$tmp/control/conffiles"
echo "package ok: $(basename "$deb"), $(dpkg-deb -f "$deb" Installed-Size) KiB installed"
