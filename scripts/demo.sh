#!/usr/bin/env bash
# Sets up (builds lockscope) and runs it on the bundled example: the serial console of a
# real 3-way lockup (IPI waiter -> spinning CPU -> sleeping lock holder).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
./target/release/lockscope analyze tests/data/corpus/ipi_sleeping_holder.live.console.log "$@"
