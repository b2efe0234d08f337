#!/usr/bin/env bash
# `npm run build`: compiles src/ into dist/ (ES2022 modules, .d.ts and source maps) for Node users
# and bundlers. Relative `.ts` imports are rewritten to `.js` by tsc (rewriteRelativeImportExtensions).
# Deno and JSR users import src/ directly (deno.json); the repo's own tests and examples do too.
set -euo pipefail
cd "$(dirname "$0")/.."

# A clean build; test/dist.test.ts's incremental build state goes too, so it cannot go stale.
rm -rf dist node_modules/.cache/sluice
"$PWD/node_modules/.bin/tsc" -p tsconfig.build.json
echo "built dist/ ($(find dist -name '*.js' | wc -l) modules)"
