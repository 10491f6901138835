#!/bin/sh
# The Debian package as an operator gets it (ctest package_deb): built by
# CPack from BUILD-DIR, its dependencies read back with dpkg-deb, unpacked
# into an empty directory with dpkg -x, and the memtop in it run.
set -eu
build=${1:?usage: test-package.sh BUILD-DIR}
fail() {
    echo "test-package: FAIL: $*" >&2
    exit 1
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$build"
cpack -G DEB -B "$tmp/out" >"$tmp/cpack.log" 2>&1 || { cat "$tmp/cpack.log" >&2; fail "cpack"; }
deb=$(ls "$tmp"/out/memtop_*.deb) || fail "no .deb in $tmp/out"
echo "test-package: $(basename "$deb"), $(du -k "$deb" | cut -f1) KiB"
depends=$(dpkg-deb -f "$deb" Depends)
echo "test-package: Depends: $depends"
# What memtop links, as dpkg-shlibdeps found it: an install with apt pulls these.
case "$depends" in *"libbpf1 (>= 1:1.1)"*) ;; *) fail "Depends lacks libbpf1 (>= 1:1.1)" ;; esac
for lib in libbpf1 libcpp-httplib0.11 libssl3 libdw1 libelf1 libcapstone4 libc6; do
    case "$depends" in *"$lib "* | *"$lib," | *"$lib") ;; *) fail "Depends lacks $lib" ;; esac
done
dpkg -x "$deb" "$tmp/root"
bin=$tmp/root/usr/bin/memtop
[ -x "$bin" ] || fail "no usr/bin/memtop in the package"
if ldd "$bin" | grep -q 'not found'; then fail "unresolved libraries: $(ldd "$bin" | grep 'not found')"; fi
version=$("$bin" --version)
[ "$version" = "memtop $(dpkg-deb -f "$deb" Version)" ] || fail "--version says '$version'"
"$bin" --help | grep -q -- '--listen' || fail "--help does not list --listen"
# A usage error from the installed binary: its documented status.
status=0
"$bin" --listen nope >/dev/null 2>&1 || status=$?
[ "$status" = 2 ] || fail "--listen nope: exit $status, not 2"
unit=$tmp/root/usr/lib/systemd/system/memtop.service
[ -f "$unit" ] || fail "no systemd unit"
grep -q '^ExecStart=/usr/bin/memtop ' "$unit" || fail "the unit does not run the installed memtop"
if command -v systemd-analyze >/dev/null; then
    # Its directives as systemd reads them; ExecStart pointed at the
    # unpacked binary, since the host has none in /usr/bin.
    sed "s|/usr/bin/memtop|$bin|" "$unit" >"$tmp/memtop.service"
    systemd-analyze verify "$tmp/memtop.service" >"$tmp/verify.log" 2>&1 ||
        { cat "$tmp/verify.log" >&2; fail "systemd-analyze verify"; }
    # It only warns (status 0) about keys it does not know.
    if grep -qiE 'unknown|invalid|ignoring' "$tmp/verify.log"; then cat "$tmp/verify.log" >&2; fail "the unit has directives systemd ignores"; fi
fi
echo "test-package: ok"
