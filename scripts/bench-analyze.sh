#!/usr/bin/env bash
# End-to-end diagnosis benchmark (BENCHMARKS.md, "analyze DUMP"): `lockscope analyze` on each
# corpus dump without debuginfo (log + memory, and --no-log: memory alone), against what an
# engineer runs in crash for the same evidence (`bt -a; runq -T; foreach UN bt; log`, DWARF
# vmlinux) and drgn walking the same (every CPU's and D task's stack, the log), same run.
# Median of RUNS wall times, peak RSS of the last run.
#
# Usage: VMLINUX=/path/vmlinux-6.1.0-50-amd64 scripts/bench-analyze.sh
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${LOCKSCOPE_SHARED:-../shared}
runs=${RUNS:-7}
source scripts/bench-lib.sh

drgn_script=scripts/drgn-walk.py

echo
echo "| dump | lockscope analyze (log + memory) | lockscope analyze --no-log | crash bt -a; runq -T; foreach UN bt; log (DWARF) | drgn: CPU and D-task stacks, log (DWARF) |"
echo "|---|---:|---:|---:|---:|"
for d in "$shared"/corpus/*/vmcore.mkd-zlib-d31; do
  case=$(basename "$(dirname "$d")")
  ours=$(measure "$lockscope" analyze "$d")
  mem=$(measure "$lockscope" analyze --no-log "$d")
  crash_t="–"; drgn_t="–"
  if [ -n "${VMLINUX:-}" ] && [ -f "$VMLINUX" ]; then
    if command -v crash > /dev/null; then
      cmd=$(mktemp /tmp/crash-cmd.XXXX); printf 'bt -a\nrunq -T\nforeach UN bt\nlog\nquit\n' > "$cmd"
      crash_t=$(runs=3; measure crash -s -i "$cmd" "$VMLINUX" "$d"); rm -f "$cmd"
    fi
    python3 -c "import drgn" 2>/dev/null && drgn_t=$(measure python3 "$drgn_script" "$VMLINUX" "$d")
  fi
  echo "| $case | $ours | $mem | $crash_t | $drgn_t |"
done
