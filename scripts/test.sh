#!/usr/bin/env bash
# The test command: unit and golden tests (no external data needed), plus the
# shared-corpus suites when ../shared is beside the checkout (they skip themselves otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --release 2>&1
