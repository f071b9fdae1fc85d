#!/usr/bin/env bash
# Makes the toolchain pinned in rust-toolchain.toml available. When the
# machine's stable toolchain is that very release, it is linked under the
# pinned name (no download); otherwise rustup installs the pinned toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v rustup >/dev/null; then
  echo "ensure-toolchain: rustup not found; install Rust 1.95 from https://rustup.rs" >&2
  exit 1
fi
pinned=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup toolchain list | grep -q "^$pinned-"; then
  stable=$(RUSTUP_TOOLCHAIN=stable rustc --version 2>/dev/null | awk '{print $2}')
  if [ "$stable" = "$pinned" ]; then
    rustup toolchain link "$pinned" "$(RUSTUP_TOOLCHAIN=stable rustc --print sysroot)"
  else
    rustup toolchain install "$pinned" --profile minimal --component clippy,rustfmt
  fi
fi
if ! cargo clippy --version >/dev/null 2>&1 || ! cargo fmt --version >/dev/null 2>&1; then
  rustup component add clippy rustfmt 2>/dev/null || true
fi
