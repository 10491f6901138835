#!/bin/sh
# Installs BCC's memleak (bpfcc-tools) for tools/bench.sh to compare with.
# BCC compiles its BPF code at run time against kernel headers; Debian 12's
# 6.1 headers serve (memleak uses no structure that differs up to 6.18),
# linked where BCC looks for the running kernel's.
set -eu
export DEBIAN_FRONTEND=noninteractive
dpkg-query -W -f='${Status}' bpfcc-tools 2>/dev/null | grep -q "ok installed" &&
    dpkg-query -W -f='${Status}' linux-headers-amd64 2>/dev/null | grep -q "ok installed" || {
    apt-get update -qq
    apt-get install -y -qq bpfcc-tools linux-headers-amd64 >/dev/null
}
mod=/lib/modules/$(uname -r)
if [ ! -e "$mod/build" ]; then
    hdr=$(ls -d /usr/src/linux-headers-*-amd64 | sort -V | tail -n 1)
    common=$(ls -d /usr/src/linux-headers-*-common | sort -V | tail -n 1)
    mkdir -p "$mod"
    ln -sfn "$hdr" "$mod/build"
    ln -sfn "$common" "$mod/source"
    echo "bench-bcc: linked $mod/build -> $hdr" >&2
fi
