#!/usr/bin/env bash
# arm64 against x86_64 (BENCHMARKS.md, "arm64"): `lockscope analyze` (log + memory, and
# --no-log) on the arm64 dump of ../shared/corpus-arm64 and on the x86_64 dump of the same
# scenario in the same format (QEMU kdump-zlib), same run; with VMLINUX_ARM64 (Debian's
# linux-image-6.1.0-50-arm64-dbg vmlinux), drgn walking the arm64 dump's CPU and D-task
# stacks and log with it. crash on an x86_64 host does not open arm64 dumps.
# Median of RUNS wall times, peak RSS of the last run.
#
# Usage: [VMLINUX_ARM64=/path/vmlinux-6.1.0-50-arm64] scripts/bench-arm64.sh
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${LOCKSCOPE_SHARED:-../shared}
runs=${RUNS:-7}
source scripts/bench-lib.sh

arm=$shared/corpus-arm64/ipi_sleeping_holder.live/vmcore.qemu-kdump-zlib
x86=$shared/corpus/ipi_sleeping_holder.live/vmcore.qemu-kdump-zlib
# The ELF core is stored xz-compressed: unpacked once into /tmp for the run.
arm_elf=${ARM64_ELF:-/tmp/lockscope-bench-arm64.elf}
[ -f "$arm_elf" ] || xz -dc "$shared/corpus-arm64/ipi_sleeping_holder.live/vmcore.qemu-elf.xz" > "$arm_elf"
drgn_script=scripts/drgn-walk.py

echo
echo "| dump (ipi_sleeping_holder.live) | size | lockscope analyze | lockscope analyze --no-log | lockscope bt -a | drgn: CPU and D-task stacks, log (DWARF) |"
echo "|---|---:|---:|---:|---:|---:|"
for d in "$x86" "$arm" "$arm_elf"; do
  case $d in "$x86") name="x86_64 QEMU kdump-zlib";; "$arm") name="arm64 QEMU kdump-zlib";; *) name="arm64 QEMU ELF";; esac
  size=$(du -m "$d" | cut -f1)
  ours=$(measure "$lockscope" analyze "$d")
  mem=$(measure "$lockscope" analyze --no-log "$d")
  bt=$(measure "$lockscope" bt -a "$d")
  drgn_t="–"
  if [ "$d" != "$x86" ] && [ -n "${VMLINUX_ARM64:-}" ] && python3 -c "import drgn" 2>/dev/null; then
    if python3 "$drgn_script" "$VMLINUX_ARM64" "$d" > /dev/null 2>&1; then
      drgn_t=$(measure python3 "$drgn_script" "$VMLINUX_ARM64" "$d")
    else
      drgn_t="fails: $( (python3 "$drgn_script" "$VMLINUX_ARM64" "$d" 2>&1 || true) | tail -1 | cut -c1-60)"
    fi
  fi
  echo "| $name | ${size} MB | $ours | $mem | $bt | $drgn_t |"
done
