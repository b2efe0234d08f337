#!/usr/bin/env bash
# Codec micro-benchmark (`npm run bench:codec`): runs bench/codec.ts on Bun, Deno and Node, in turn.
#
#   bash scripts/bench-codec.sh [--json-dir DIR] [bench options, e.g. --runs 3 --seconds 1]
#
# With --json-dir, each runtime writes DIR/codec-<runtime>.json. Exits non-zero when a run fails
# (a variant computed a different checksum, frame count or output, or crashed) or when Bun misses a
# target; Deno and Node print their targets for information only. The V8 runtimes get --expose-gc so
# that the bench can collect garbage between runs, as it does on Bun (Bun.gc).
set -uo pipefail
cd "$(dirname "$0")/.."

BIN="$PWD/node_modules/.bin"
export DENO_NO_UPDATE_CHECK=1

json_dir=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --json-dir)
      json_dir="$2"
      shift 2
      ;;
    *)
      args+=("$1")
      shift
      ;;
  esac
done
if [ -n "$json_dir" ]; then mkdir -p "$json_dir"; fi

json() {
  if [ -n "$json_dir" ]; then echo "--json" "$json_dir/codec-$1.json"; fi
}

status=0
run() {
  local name="$1"
  shift
  echo
  echo "==> $name: $*"
  "$@"
  local rc=$?
  if [ $rc -ne 0 ]; then
    echo "<== $name FAILED (exit $rc)"
    status=1
  fi
}

# shellcheck disable=SC2046
run bun "$BIN/bun" bench/codec.ts --enforce $(json bun) "${args[@]}"
# shellcheck disable=SC2046
run deno "$BIN/deno" run -A --v8-flags=--expose-gc bench/codec.ts $(json deno) "${args[@]}"
# shellcheck disable=SC2046
run node "$BIN/node" --expose-gc --import tsx bench/codec.ts $(json node) "${args[@]}"

echo
if [ $status -ne 0 ]; then
  echo "bench:codec FAILED"
else
  echo "bench:codec ok"
fi
exit $status
