#!/usr/bin/env bash
# Sets up (builds lockscope) and runs it on the bundled example: the serial console of a
# real 3-way lockup (IPI waiter -> spinning CPU -> sleeping lock holder).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
./target/release/lockscope analyze tests/data/corpus/ipi_sleeping_holder.live.console.log "$@"
# The same machine's vmcore (filtered kdump in tests/data/dumps), read without debuginfo.
echo
echo "== lockscope sys tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31 =="
./target/release/lockscope sys tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31
