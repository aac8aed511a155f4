#!/usr/bin/env bash
# Stack-trace benchmark (BENCHMARKS.md, "Stacks"): every task's stack of each corpus dump
# (open included), lockscope without debuginfo against crash `foreach bt` (DWARF vmlinux),
# drgn `stack_trace()` over every task (DWARF vmlinux) and drgn-crash `bt -a`, same run.
# Median of RUNS wall times, and the peak RSS of the last run.
#
# Usage: VMLINUX=/path/vmlinux-6.1.0-50-amd64 scripts/bench-stacks.sh
#        Env: LOCKSCOPE_SHARED (default ../shared), RUNS (default 7); a peer missing is "–".
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${LOCKSCOPE_SHARED:-../shared}
runs=${RUNS:-7}
source scripts/bench-lib.sh

drgn_script=$(mktemp /tmp/drgn-stacks.XXXX.py)
cat > "$drgn_script" <<'PY'
import sys, drgn
from drgn.helpers.linux.pid import for_each_task
prog = drgn.Program()
prog.set_core_dump(sys.argv[2])
prog.load_debug_info([sys.argv[1]], default=False, main=True)
frames = 0
for t in for_each_task(prog):
    try:
        frames += len(prog.stack_trace(t))
    except Exception:
        pass
print(frames)
PY
trap 'rm -f "$drgn_script"' EXIT

have_vmlinux() { [ -n "${VMLINUX:-}" ] && [ -f "$VMLINUX" ]; }

echo
echo "| dump | tasks | lockscope foreach bt (no debuginfo) | lockscope bt -a | crash foreach bt (DWARF) | drgn stack_trace, all tasks (DWARF) | drgn-crash bt -a (DWARF) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for d in "$shared"/corpus/*/vmcore.mkd-zlib-d31 "$shared"/corpus-6.12/*/vmcore.mkd-zlib-d23; do
  case=$(basename "$(dirname "$d")")
  [[ $d == *corpus-6.12* ]] && case="$case (6.12)"
  tasks=$("$lockscope" foreach "$d" bt 2>/dev/null | grep -c '^PID:' || true)
  ours=$(measure "$lockscope" foreach "$d" bt)
  ours_a=$(measure "$lockscope" bt "$d" -a)
  crash_t="–"; drgn_t="–"; dc_t="–"
  if have_vmlinux && [[ $d != *corpus-6.12* ]]; then
    if command -v crash > /dev/null; then
      cmd=$(mktemp /tmp/crash-cmd.XXXX); printf 'foreach bt\nquit\n' > "$cmd"
      crash_t=$(runs=3; measure crash -s -i "$cmd" "$VMLINUX" "$d"); rm -f "$cmd"
    fi
    python3 -c "import drgn" 2>/dev/null && drgn_t=$(measure python3 "$drgn_script" "$VMLINUX" "$d")
    if command -v drgn-crash > /dev/null; then
      dc_t=$(measure sh -c "printf 'bt -a\n' | drgn-crash '$VMLINUX' '$d'")
    fi
  fi
  echo "| $case | $tasks | $ours | $ours_a | $crash_t | $drgn_t | $dc_t |"
done
