#!/usr/bin/env bash
# The web page's browser test (tests/web/page.test.mjs): builds the release binary (for `qnn
# eval`) and the page, installs playwright-core (npm) and runs the test in Debian's headless
# Chromium (`apt-get install chromium`). Screenshots go to target/web-test/.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || { echo "web-test.sh: needs chromium (apt-get install chromium)" >&2; exit 1; }
cargo build --release
scripts/web.sh --build
(cd tests/web && npm ci --no-audit --no-fund --silent)
cd tests/web && node --test page.test.mjs
