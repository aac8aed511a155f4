#!/usr/bin/env bash
# Installs what building and testing lockscope needs on a fresh Debian machine with the
# Rust toolchain present, then builds the release binary. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null; then
  echo "setup: cargo is required (install Rust with rustup)" >&2
  exit 1
fi
# xz decompresses the corpus' ELF dumps in the shared-corpus tests.
if ! command -v xz >/dev/null && command -v apt-get >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq xz-utils) >/dev/null 2>&1 || echo "setup: could not install xz-utils (only needed for some corpus tests)" >&2
fi
cargo build --release --locked -q 2>/dev/null || cargo build --release -q
