#!/usr/bin/env bash
# Full check pipeline (`npm test`). Runs every step in order, stops at the first failure.
# Node is always the project's own Node 24 (the `node` devDependency), never the `node` on PATH.
set -euo pipefail
shopt -s globstar nullglob
cd "$(dirname "$0")/.."

BIN="$PWD/node_modules/.bin"
export DENO_NO_UPDATE_CHECK=1

passed=0
current=""
trap 'rc=$?; if [ $rc -ne 0 ]; then echo; echo "FAILED: ${current} (exit ${rc})"; echo "${passed} passed, 1 failed"; fi' EXIT

step() {
  current="$1"
  shift
  echo
  echo "==> [$((passed + 1))] ${current}: $*"
  local start end
  start=$(date +%s%N)
  "$@"
  end=$(date +%s%N)
  passed=$((passed + 1))
  echo "<== ${current} ok ($(((end - start) / 1000000)) ms)"
}

step "typecheck (tsc)" "$BIN/tsc" -p tsconfig.json
step "format (deno fmt --check)" "$BIN/deno" fmt --check
step "lint (deno lint)" "$BIN/deno" lint
step "JSR publish dry-run (incl. slow types)" "$BIN/deno" publish --dry-run --allow-dirty
step "docs: every @example in src/ (deno check --doc)" "$BIN/deno" check --quiet --doc src/
step "docs: every TypeScript block of README.md and docs/ (deno check --doc-only)" \
  "$BIN/deno" check --quiet --doc-only README.md docs/**/*.md
step "vitest on Node $("$BIN/node" --version)" "$BIN/node" "$BIN/vitest" run
step "vitest on Bun $("$BIN/bun" --version)" "$BIN/bun" --bun "$BIN/vitest" run
step "vitest on Deno $("$BIN/deno" --version | head -1 | cut -d' ' -f2)" "$BIN/deno" run -A npm:vitest run

echo
echo "${passed} passed, 0 failed"
