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

drgn_script=$(mktemp /tmp/drgn-walk.XXXX.py)
cat > "$drgn_script" <<'PY'
import sys, drgn
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.cpumask import for_each_online_cpu
from drgn.helpers.linux.sched import cpu_curr
from drgn.helpers.linux.printk import get_printk_records
prog = drgn.Program()
prog.set_core_dump(sys.argv[2])
prog.load_debug_info([sys.argv[1]], default=False, main=True)
n = 0
for cpu in range(4):
    try:
        n += len(prog.stack_trace(cpu_curr(prog, cpu)))
    except Exception:
        pass
for t in for_each_task(prog):
    if t.__state.value_() & 2:
        n += len(prog.stack_trace(t))
n += len(get_printk_records(prog))
print(n)
PY
trap 'rm -f "$drgn_script"' EXIT

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
