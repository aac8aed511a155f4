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
# The diagnosis from that vmcore's memory alone (its log ignored), and the stack that shows
# the spinning CPU with the lock in RDI.
echo
echo "== lockscope analyze --no-log tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31 =="
./target/release/lockscope analyze --no-log tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31 | sed -n '1,/^INCIDENT/p'
echo "== lockscope bt -c 3 tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31 =="
./target/release/lockscope bt tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31 -c 3
