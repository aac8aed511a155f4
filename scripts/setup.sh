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
# Chromium renders the HTML report in its test (tests/html.rs); without it the page is only
# checked as text.
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 || echo "setup: could not install chromium (only needed to render the HTML report in a test)" >&2
fi
cargo build --release --locked -q 2>/dev/null || cargo build --release -q
