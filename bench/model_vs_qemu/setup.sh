#!/usr/bin/env bash
# Installs what the model-vs-QEMU bench needs: Debian's QEMU (7.2 on bookworm),
# gcc with a static libc, and a guest kernel extracted from Debian's
# linux-image package (downloaded, never installed as the running kernel).
set -euo pipefail

cache="${HOME}/.cache/chaintrace/bench"
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v gcc >/dev/null || need+=(gcc)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
if [ "${#need[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

if ! ls "${cache}"/kernel/boot/vmlinuz-* >/dev/null 2>&1; then
    mkdir -p "${cache}/download"
    # linux-image-amd64 is a meta package: take the versioned image it depends on.
    image=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    (cd "${cache}/download" && apt-get download "${image}")
    dpkg -x "${cache}"/download/"${image}"_*.deb "${cache}/kernel"
    # Only the kernel image is used: drop the modules.
    rm -rf "${cache}/kernel/lib" "${cache}/kernel/usr"
    rm -rf "${cache}/download"
fi
ls "${cache}"/kernel/boot/vmlinuz-*
qemu-system-x86_64 --version | head -n 1
