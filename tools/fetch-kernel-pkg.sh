#!/usr/bin/env bash
# fetch-kernel-pkg.sh - download (and unpack) a Debian package from any suite
# of the Debian archive that this machine's APT is already configured for,
# without touching the host's APT state (lists, cache, dpkg status) or /boot.
#
# Usage:
#   tools/fetch-kernel-pkg.sh [options] SUITE PACKAGE [DEST]
#
#   SUITE    bullseye, bookworm, bookworm-security, bookworm-backports,
#            trixie, trixie-backports, ...
#   PACKAGE  a package name, optionally NAME=VERSION.  With --follow, a
#            metapackage (linux-image-amd64, linux-image-cloud-amd64, ...) is
#            followed through its Depends to the real linux-image-* package.
#   DEST     directory to unpack into with `dpkg -x`
#            (default: $CACHE/unpacked/NAME_VERSION_ARCH).
#
# Options:
#   --follow        follow metapackage dependencies (see above)
#   --no-unpack     only download; print the .deb path
#   --resolve       only print the resolved "NAME VERSION" (no download)
#   --refresh       force `apt-get update` of the private lists
#   -q              quiet (only the result on stdout)
#
# Prints the unpack directory (or the .deb with --no-unpack) on stdout; all
# progress goes to stderr.
#
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/memtop/kernels (override with
# MEMTOP_KERNEL_CACHE).  Private lists are refreshed when older than
# MEMTOP_APT_MAX_AGE seconds (default 86400); if the refresh fails, the old
# lists are used.  Downloaded .debs and unpacked trees are reused, so reruns
# do no network I/O.
#
# The archive URI is taken from the host's enabled APT sources
# (/etc/apt/sources.list, /etc/apt/sources.list.d/*.list|*.sources): the
# entry that serves *-security suites for SUITE=*-security, else the entry
# that serves the Debian release suites.  Override with MEMTOP_APT_URI.
set -euo pipefail

prog=${0##*/}
follow=0 unpack=1 resolve_only=0 refresh=0 quiet=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --follow) follow=1 ;;
    --no-unpack) unpack=0 ;;
    --resolve) resolve_only=1 ;;
    --refresh) refresh=1 ;;
    -q) quiet=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    -*) echo "$prog: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
[[ $# -ge 2 && $# -le 3 ]] || { echo "usage: $prog [--follow] [--no-unpack] [--resolve] [--refresh] [-q] SUITE PACKAGE [DEST]" >&2; exit 2; }
suite=$1 pkgarg=$2 dest=${3:-}

log() { [[ $quiet = 1 ]] || echo "$prog: $*" >&2; }
die() { echo "$prog: error: $*" >&2; exit 1; }

for t in apt-get apt-cache dpkg-deb; do
  command -v "$t" >/dev/null || die "$t not found (install apt/dpkg)"
done

cache=${MEMTOP_KERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/memtop/kernels}
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)

# --- pick the archive URI from the host's own APT sources -------------------
# Emits "URI<TAB>SIGNED_BY<TAB>SUITE SUITE..." for every enabled deb entry.
host_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    awk '
      /^[[:space:]]*deb[[:space:]]/ {
        line=$0; sub(/#.*/, "", line); n=split(line, w, /[[:space:]]+/)
        i=2; sb=""
        if (w[i] ~ /^\[/) {              # [ options ]
          while (i <= n) {
            o=w[i]; gsub(/[\[\]]/, "", o)
            if (o ~ /^signed-by=/) { sb=o; sub(/^signed-by=/, "", sb) }
            if (w[i] ~ /\]$/) { i++; break }
            i++
          }
        }
        if (i+1 <= n) printf "%s\t%s\t%s\n", w[i], sb, w[i+1]
      }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    awk '
      function flush() {
        if (types ~ /(^|[[:space:]])deb([[:space:]]|$)/ && enabled !~ /^no$/ && uris != "") {
          n=split(uris, u, /[[:space:]]+/)
          for (k=1; k<=n; k++) if (u[k] != "") printf "%s\t%s\t%s\n", u[k], sb, suites
        }
        types=""; uris=""; suites=""; sb=""; enabled=""
      }
      /^[[:space:]]*#/ { next }
      /^[[:space:]]*$/ { flush(); next }
      { key=$0; sub(/:.*/, "", key); val=$0; sub(/^[^:]*:[[:space:]]*/, "", val)
        key=tolower(key)
        if (key=="types") types=val; else if (key=="uris") uris=val
        else if (key=="suites") suites=val; else if (key=="signed-by") sb=val
        else if (key=="enabled") enabled=tolower(val) }
      END { flush() }' "$f"
  done
}

pick_uri() {
  local want_security=0 uri sb suites s
  [[ $suite == *-security ]] && want_security=1
  while IFS=$'\t' read -r uri sb suites; do
    for s in $suites; do
      [[ $s =~ ^(buster|bullseye|bookworm|trixie|forky|duke|sid|oldoldstable|oldstable|stable|testing|unstable)(-[a-z-]+)?$ ]] || continue
      if [[ $want_security = 1 && $s == *-security ]] || [[ $want_security = 0 && $s != *-security ]]; then
        printf '%s\t%s\n' "$uri" "$sb"; return 0
      fi
    done
  done < <(host_sources)
  return 1
}

if [[ -n ${MEMTOP_APT_URI:-} ]]; then
  uri=$MEMTOP_APT_URI signed_by=${MEMTOP_APT_SIGNED_BY:-}
else
  sel=$(pick_uri) || die "no Debian archive entry for suite '$suite' found in the host's APT sources"
  uri=${sel%%$'\t'*} signed_by=${sel#*$'\t'}
fi
# A Signed-By may be an inline key block; only a keyring file path is usable here.
[[ -n $signed_by && -r $signed_by ]] || signed_by=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -r $signed_by ]] || die "keyring $signed_by missing (install debian-archive-keyring)"

# --- private APT configuration -----------------------------------------------
adir=$cache/apt/$suite
mkdir -p "$adir"/{lists/partial,archives/partial,etc/apt.conf.d,etc/preferences.d,etc/sources.list.d,etc/trusted.gpg.d,log}
: >"$adir/etc/preferences"
[[ -e $adir/status ]] || : >"$adir/status"
printf 'deb [signed-by=%s] %s %s main\n' "$signed_by" "$uri" "$suite" >"$adir/etc/sources.list.new"
if ! cmp -s "$adir/etc/sources.list.new" "$adir/etc/sources.list"; then
  mv "$adir/etc/sources.list.new" "$adir/etc/sources.list"; refresh=1
else
  rm -f "$adir/etc/sources.list.new"
fi

# Carry over the host's Acquire settings that matter for reaching the archive
# (proxies, date checks); nothing else from the host's apt.conf.d is read.
host_acquire=$(apt-config dump 2>/dev/null | grep -E '^Acquire::(https?::Proxy|https?::proxy|Check-Valid-Until|Check-Date|ForceIPv4|ForceIPv6|Retries) ' || true)

cat >"$adir/apt.conf" <<EOF
// generated by tools/fetch-kernel-pkg.sh; private APT state for suite $suite
Dir::Etc "$adir/etc";
Dir::Etc::main "apt.conf.d/none";
Dir::Etc::Parts "apt.conf.d";
Dir::Etc::SourceList "sources.list";
Dir::Etc::SourceParts "sources.list.d";
Dir::Etc::Preferences "preferences";
Dir::Etc::PreferencesParts "preferences.d";
Dir::Etc::TrustedParts "trusted.gpg.d";
Dir::State "$adir";
Dir::State::Lists "$adir/lists";
Dir::State::status "$adir/status";
Dir::State::extended_states "$adir/extended_states";
Dir::Cache "$adir";
Dir::Cache::archives "$adir/archives";
Dir::Cache::pkgcache "$adir/pkgcache.bin";
Dir::Cache::srcpkgcache "$adir/srcpkgcache.bin";
Dir::Log "$adir/log";
APT::Architecture "$arch";
APT::Architectures { "$arch"; };
APT::Get::List-Cleanup "true";
APT::Sandbox::User "root";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled "false";
Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled "false";
$host_acquire
EOF
export APT_CONFIG=$adir/apt.conf
# Never let a caller's APT_CONFIG-related env leak host hooks in.
unset DEBIAN_FRONTEND_HOOKS 2>/dev/null || true

lock=$adir/.lock
exec 9>"$lock"
flock 9

max_age=${MEMTOP_APT_MAX_AGE:-86400}
stamp=$adir/.updated
if [[ $refresh = 0 && -e $stamp ]] && (( $(date +%s) - $(stat -c %Y "$stamp") < max_age )); then
  :
else
  log "apt-get update (private lists for $suite)"
  if apt-get -q -o APT::Update::Error-Mode=any update >"$adir/log/update.log" 2>&1; then
    touch "$stamp"
  elif [[ -e $stamp ]]; then
    log "warning: update failed, using lists from $(date -r "$stamp" '+%F %T'); see $adir/log/update.log"
  else
    cat "$adir/log/update.log" >&2
    die "apt-get update for suite '$suite' failed"
  fi
fi

# --- resolve -----------------------------------------------------------------
cand_version() {  # NAME -> candidate version (empty if none)
  apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2; exit }'
}

name=${pkgarg%%=*} version=
[[ $pkgarg == *=* ]] && version=${pkgarg#*=}
[[ -n $version ]] || version=$(cand_version "$name")
[[ -n $version ]] || die "package '$name' not found in suite '$suite'"

if [[ $follow = 1 ]]; then
  # Follow a metapackage to the package that ships the kernel image.
  # linux-image-amd64 -> linux-image-6.1.0-N-amd64; on trixie-backports 7.x
  # linux-image-X -> linux-binary-X (which holds usr/lib/modules/X/vmlinuz).
  for _ in 1 2 3 4; do
    deps=$(apt-cache show "$name=$version" 2>/dev/null | awk -F': ' '/^Depends:/ { print $2; exit }' \
          | tr ',' '\n' | sed 's/^ *//; s/|.*//; s/[ (].*//')
    dep=$(grep -E '^linux-binary-[0-9]' <<<"$deps" | head -n1 || true)
    [[ -n $dep ]] || dep=$(grep -E '^linux-image-[0-9]' <<<"$deps" | head -n1 || true)
    [[ -n $dep ]] || break
    log "following $name -> $dep"
    name=$dep version=$(cand_version "$name")
    [[ -n $version ]] || die "dependency '$name' has no candidate in suite '$suite'"
  done
fi

if [[ $resolve_only = 1 ]]; then
  echo "$name $version"; exit 0
fi

# --- download ----------------------------------------------------------------
debdir=$cache/debs
mkdir -p "$debdir"
fver=${version//:/%3a}
deb=$(ls -1 "$debdir/${name}_${fver}_"*.deb 2>/dev/null | head -n1 || true)
if [[ -z $deb ]]; then
  log "downloading $name=$version from $suite"
  tmpd=$(mktemp -d "$debdir/.dl.XXXXXX")
  if ! (cd "$tmpd" && apt-get -q download "$name=$version" >"$adir/log/download.log" 2>&1); then
    cat "$adir/log/download.log" >&2; rm -rf "$tmpd"
    die "apt-get download $name=$version failed"
  fi
  f=$(ls -1 "$tmpd"/*.deb | head -n1)
  dpkg-deb --info "$f" >/dev/null || { rm -rf "$tmpd"; die "downloaded file is not a valid .deb"; }
  deb=$debdir/${f##*/}
  mv "$f" "$deb"; rm -rf "$tmpd"
else
  log "cached: ${deb##*/}"
fi

if [[ $unpack = 0 ]]; then
  echo "$deb"; exit 0
fi

# --- unpack ------------------------------------------------------------------
base=${deb##*/}; base=${base%.deb}
[[ -n $dest ]] || dest=$cache/unpacked/$base
if [[ -e $dest/.memtop-unpacked ]] && [[ $(cat "$dest/.memtop-unpacked") == "$base" ]]; then
  log "already unpacked in $dest"
else
  log "unpacking into $dest"
  mkdir -p "$dest"
  dpkg -x "$deb" "$dest"
  echo "$base" >"$dest/.memtop-unpacked"
fi
echo "$dest"
