#!/usr/bin/env bash
# The web page's browser tests (tests/web/page.test.mjs; site.test.mjs: the --dist folder on a
# static host, its service worker, the npm package and its ten-line example): builds the
# release binary (for `qnn eval`), the page, its --dist folder and the npm package, installs
# playwright-core (npm) and runs the tests in Debian's headless Chromium (`apt-get install
# chromium`). Screenshots go to target/web-test/.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || { echo "web-test.sh: needs chromium (apt-get install chromium)" >&2; exit 1; }
cargo build --release
# fresh folders, so a file the script no longer writes cannot pass the test
rm -rf target/web-test/dist target/web-test/npm
scripts/web.sh --dist target/web-test/dist --npm target/web-test/npm
(cd tests/web && npm ci --no-audit --no-fund --silent)
cd tests/web
# one file after the other (their timings stay apart); both run even if the first fails
status=0
node --test page.test.mjs || status=1
node --test site.test.mjs || status=1
exit $status
