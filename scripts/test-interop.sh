#!/usr/bin/env bash
# The interop suite (`npm run test:interop`): real peers nobody here wrote (redis-server, redis-cli,
# redis-benchmark, curl, wrk, nc, promtool) against the example servers on Bun, Deno and Node.
# A missing program fails the suite, naming the Debian package that ships it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/node_modules/.bin"
export DENO_NO_UPDATE_CHECK=1

missing=()
for pair in redis-server:redis-server redis-cli:redis-tools redis-benchmark:redis-tools curl:curl wrk:wrk \
  nc:netcat-openbsd promtool:prometheus; do
  program="${pair%%:*}"
  package="${pair##*:}"
  command -v "$program" >/dev/null || missing+=("$program (Debian package $package)")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "the interop suite needs programs that are not installed:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  echo "install them with apt-get (.ci/run does)" >&2
  exit 1
fi

start=$(date +%s)
"$BIN/node" "$BIN/vitest" run --config vitest.interop.config.ts "$@"
echo "interop suite: $(($(date +%s) - start)) s"
