#!/usr/bin/env bash
# The aarch64 install of seedcore, end to end, in emulation (no board needed):
#   1. builds seedcore's sdist on the host (python3 -m build --sdist),
#   2. builds an arm64 Debian root with debootstrap (Debian packages only: python3,
#      python3-dev, python3-venv, g++, cmake, ninja-build),
#   3. inside it, under qemu (proot runs every exec through qemu-aarch64-static with
#      -cpu cortex-a72, so binfmt_misc need not be registered; see proot-nostatx.c),
#      creates a venv and
#      `pip install`s the sdist: a compiler, cmake and pip, nothing else, no flags,
#   4. runs a smoke assembly there: native decoding (which must report NEON) equals
#      the numpy reference decoders bit for bit, in memory and streamed to
#      .safetensors, for prng, q8 and q4 seeds.
# Slow (tens of minutes: the C++ core compiles under qemu), so CI does not run it;
# its measured duration is in toolchains/README.md.
#
#   sudo apt-get install debootstrap qemu-user-static proot python3-venv gcc
#   bash toolchains/emulate-pi.sh [WORKDIR]        (default: build/emulate-pi)
#
# Environment: SUITE (bookworm), MIRROR (http://deb.debian.org/debian), CPU (cortex-a72;
# cortex-a57 for the Jetson Nano), KEEP_ROOT=1 reuses an existing root (step 2 skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=$(realpath -m "${1:-build/emulate-pi}")
suite=${SUITE:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
cpu=${CPU:-cortex-a72}
root="$work/root"
start=$(date +%s)
step() { printf '\n=== %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

for tool in debootstrap proot qemu-aarch64-static python3 cc; do
  command -v "$tool" >/dev/null || { echo "emulate-pi.sh: $tool is missing (apt-get install debootstrap qemu-user-static proot python3-venv gcc)" >&2; exit 1; }
done
mkdir -p "$work"
# proot 5.3 (Debian bookworm) does not translate the paths of statx and faccessat2,
# which qemu-user issues for the guest (cmake, os.access, ls then see the host's
# files); proot-nostatx makes both fail with ENOSYS, so qemu and glibc fall back to
# fstatat / faccessat, which proot translates.
cc -O2 -o "$work/proot-nostatx" toolchains/proot-nostatx.c

step "sdist"
rm -rf "$work/dist"
# (from $work: the repository's own build/ folder would pass for the package)
if ! (cd "$work" && python3 -c "import build.__main__") 2>/dev/null; then
  python3 -m venv "$work/build-venv"
  "$work/build-venv/bin/pip" install -q build
  py="$work/build-venv/bin/python"
else
  py=python3
fi
(cd "$work" && "$py" -m build --sdist --outdir "$work/dist" "$repo" >/dev/null)
sdist=$(ls "$work"/dist/seedcore-*.tar.gz)
echo "$sdist ($(stat -c %s "$sdist") bytes)"

# A host whose HTTPS goes through a proxy with its own CA names it in PIP_CERT (or
# SSL_CERT_FILE); pip inside the root then needs the same bundle.
binds=(-b /dev -b /proc -b /sys -b /etc/resolv.conf)
envs=()
ca=${PIP_CERT:-${SSL_CERT_FILE:-}}
if [ -n "$ca" ] && [ -f "$ca" ]; then
  binds+=(-b "$ca:/etc/host-ca-bundle.crt")
  envs+=(PIP_CERT=/etc/host-ca-bundle.crt)
fi
in_root() {  # runs a command in the arm64 root, as (fake) root, every exec under qemu
  "$work/proot-nostatx" proot -0 -q "qemu-aarch64-static -cpu $cpu" -r "$root" "${binds[@]}" -w / \
        /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 "${envs[@]}" "$@"
}

if [ "${KEEP_ROOT:-0}" = 1 ] && [ -x "$root/usr/bin/python3" ]; then
  step "arm64 root: kept ($root)"
else
  step "arm64 root: debootstrap $suite, first stage"
  rm -rf "$root"
  debootstrap --foreign --arch=arm64 --variant=minbase \
    --include=python3,python3-dev,python3-venv,g++,cmake,ninja-build,ca-certificates \
    "$suite" "$root" "$mirror" >"$work/debootstrap-1.log" 2>&1 || { tail -20 "$work/debootstrap-1.log"; exit 1; }
  # In a container the first stage may leave /proc a link to the host's: make it a folder.
  if [ -L "$root/proc" ]; then rm "$root/proc"; mkdir "$root/proc"; fi
  step "arm64 root: second stage under qemu"
  in_root /usr/bin/env DEBOOTSTRAP_DIR=/debootstrap /bin/sh /debootstrap/debootstrap --second-stage >"$work/debootstrap-2.log" 2>&1 \
    || { tail -20 "$work/debootstrap-2.log"; exit 1; }
fi
in_root /bin/sh -c 'uname -m; python3 --version; g++ --version | head -1; cmake --version | head -1'

step "pip install the sdist inside the root (compiles the core under qemu)"
cp "$sdist" "$root/tmp/"
in_root /bin/sh -c "rm -rf /opt/venv && python3 -m venv /opt/venv && /opt/venv/bin/pip install -q --upgrade pip \
  && CMAKE_BUILD_PARALLEL_LEVEL=2 /opt/venv/bin/pip install /tmp/$(basename "$sdist")" >"$work/pip-install.log" 2>&1 \
  || { tail -30 "$work/pip-install.log"; exit 1; }
tail -2 "$work/pip-install.log"

step "smoke assembly inside the root"
cp toolchains/smoke.py "$root/tmp/smoke.py"
in_root /opt/venv/bin/python /tmp/smoke.py

step "done: emulated aarch64 install and smoke assembly passed"
