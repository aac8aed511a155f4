#!/usr/bin/env bash
# Kernel-view start-up benchmark (BENCHMARKS.md, "Kernel view"): `lockscope sys` on each
# corpus dump without debuginfo, against `crash -s` (DWARF vmlinux) and drgn (kallsyms from
# VMCOREINFO, no debuginfo) on the same dumps, in the same run. Median of RUNS wall times,
# and the peak RSS of the last run.
#
# Usage: scripts/bench-kernel.sh            Env: LOCKSCOPE_SHARED (default ../shared),
#        VMLINUX (DWARF vmlinux for crash; crash is skipped without it), RUNS (default 7)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${LOCKSCOPE_SHARED:-../shared}
runs=${RUNS:-7}
source scripts/bench-lib.sh

drgn_script=$(mktemp /tmp/drgn-open.XXXX.py)
cat > "$drgn_script" <<'PY'
import sys, drgn
from drgn.helpers.linux.kallsyms import load_vmlinux_kallsyms
prog = drgn.Program()
prog.set_core_dump(sys.argv[1])
prog.register_symbol_finder("vmlinux_kallsyms", load_vmlinux_kallsyms(prog), enable_index=0)
print(hex(prog.symbol("init_task").address))
PY
trap 'rm -f "$drgn_script"' EXIT

echo
echo "| dump | lockscope sys (no debuginfo) | drgn open + kallsyms (no debuginfo) | crash -s + sys (DWARF vmlinux) |"
echo "|---|---:|---:|---:|"
for d in "$shared"/corpus/*/vmcore.mkd-zlib-d31; do
  case=$(basename "$(dirname "$d")")
  ours=$(measure "$lockscope" sys "$d")
  drgn=$( python3 -c "import drgn" 2>/dev/null && measure python3 "$drgn_script" "$d" || echo "–")
  if [ -n "${VMLINUX:-}" ] && command -v crash > /dev/null; then
    crashcmd=$(mktemp /tmp/crash-cmd.XXXX); printf 'sys\nquit\n' > "$crashcmd"
    crash_t=$(runs=3; measure crash -s -i "$crashcmd" "$VMLINUX" "$d")
    rm -f "$crashcmd"
  else
    crash_t="–"
  fi
  echo "| $case | $ours | $drgn | $crash_t |"
done
