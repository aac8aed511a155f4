#!/usr/bin/env bash
# Crash-session benchmark (BENCHMARKS.md, "Crash sessions"): `lockscope analyze` on pasted
# crash output of 50 MB, built from real backtraces of the repo's dumps (`lockscope foreach
# DUMP bt` and `bt -a`, the text crash prints) repeated with new PIDs. Two shapes:
#   foreach-5000: 5000 switched-out tasks with traces of ~10 KB (the issue's "50 MB bt -a of
#                 5 000 tasks"); tasks sharing a trace keep it once;
#   running-32k:  every block a running CPU with its exception frame (32 000 CPUs spinning,
#                 a worst case: no two share registers).
# Time and peak RSS from /usr/bin/time; no peer reads crash output back, so none is compared.
#
# Usage: scripts/bench-transcript.sh        Env: RUNS (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p lockscope
bin=./target/release/lockscope
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$bin foreach tests/data/dumps/hung_rwsem_chain.live.mkd-zlib-d31 bt >"$tmp/foreach.txt"
$bin bt -a tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31 >"$tmp/bt-a.txt"
python3 - "$tmp" <<'EOF'
import re, sys
tmp = sys.argv[1]
def blocks(path):
    return [b.strip('\n') for b in open(path).read().split('\n\n') if b.strip().startswith('PID:')]
# 5000 tasks, each trace repeated to ~10 KB.
out, n = [], 0
src = blocks(f'{tmp}/foreach.txt')
while n < 5000:
    for b in src:
        n += 1
        lines = b.split('\n')
        head = re.sub(r'PID: +\d+', f'PID: {1000 + n}', lines[0], count=1)
        frames = [l for l in lines[1:] if l.strip().startswith('#')]
        body, k = [], 0
        while frames and len('\n'.join(body)) < 10000:
            for f in frames:
                body.append(re.sub(r'#\d+', f'#{k}', f, count=1))
                k += 1
        out.append(head + '\n' + '\n'.join(body))
        if n >= 5000:
            break
open(f'{tmp}/foreach-5000.txt', 'w').write('crash> foreach bt\n' + '\n\n'.join(out) + '\n')
# Running CPUs, each with its registers, to 50 MB.
out, n, size = [], 0, 0
src = [b for b in blocks(f'{tmp}/bt-a.txt') if 'exception RIP' in b]
while size < 50_000_000:
    for b in src:
        n += 1
        b = re.sub(r'PID: +\d+', f'PID: {1000 + n}', b, count=1)
        b = re.sub(r'CPU: +\d+', f'CPU: {n}', b, count=1)
        out.append(b)
        size += len(b) + 2
open(f'{tmp}/running-32k.txt', 'w').write('crash> bt -a\n' + '\n\n'.join(out) + '\n')
EOF
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "commit: $(git describe --always --dirty 2>/dev/null || echo unknown)"
for shape in foreach-5000 running-32k; do
  f="$tmp/$shape.txt"
  echo
  echo "$shape: $(du -m "$f" | cut -f1) MB, $(grep -c '^PID:' "$f") tasks"
  for _ in $(seq "${RUNS:-3}"); do
    /usr/bin/time -f "  %e s  %M KiB peak" $bin analyze "$f" >/dev/null
  done
done
