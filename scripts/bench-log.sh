#!/usr/bin/env bash
# Kernel-log scanning benchmark (BENCHMARKS.md, "Kernel-log scanning"): builds
# `lockscope-bench` in release mode and runs it on logs of 100 MB and 500 MB assembled from
# the real logs in shared/ (written under $TMPDIR, removed afterwards), so that throughput
# and peak memory can be compared across sizes. Single-threaded.
#
# Usage: scripts/bench-log.sh [SIZES_MB...]     (default: 100 500)
# Env:   LOCKSCOPE_SHARED (default /work/shared), RUNS (default 3), MIXES (default "all console")
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ $# -eq 0 ] && sizes=(100 500)
cargo build --release --quiet -p lockscope-bench
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB"
echo "commit: $(git describe --always --dirty 2>/dev/null || echo unknown)"
echo "rustc: $(rustc --version)"
for mix in ${MIXES:-all console}; do
  for mb in "${sizes[@]}"; do
    echo
    ./target/release/lockscope-bench --mb "$mb" --mix "$mix" --runs "${RUNS:-3}"
  done
done
