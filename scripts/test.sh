#!/usr/bin/env bash
# Runs every check and test of latchkey, installing what they need first. Used by .ci/run.
# Needs: Rust stable, and PostgreSQL reachable at $LATCHKEY_TEST_POSTGRES_URL
# (default postgres://postgres@127.0.0.1:5432/test, trust auth).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export LATCHKEY_TEST_POSTGRES_URL="${LATCHKEY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

echo "== checking PostgreSQL at ${LATCHKEY_TEST_POSTGRES_URL%%@*}@…"
if command -v pg_isready >/dev/null 2>&1; then
  host=$(python3 -c "import urllib.parse,sys;u=urllib.parse.urlparse(sys.argv[1]);print(u.hostname or '127.0.0.1', u.port or 5432)" "$LATCHKEY_TEST_POSTGRES_URL")
  # shellcheck disable=SC2086
  set -- $host
  for _ in $(seq 1 30); do pg_isready -q -h "$1" -p "$2" && break; sleep 1; done
  pg_isready -h "$1" -p "$2"
fi

# Installed first: the Rust integration tests also start node (the loopback OpenID Provider
# of tests/it/oidc uses npm's oidc-provider).
echo "== npm packages (pinned in package.json / package-lock.json), Debian's Chromium, HAProxy and Go"
npm ci --no-audit --no-fund --loglevel=error
# The older Clerk generation's example has its own tree: Next 14 and React 18 beside the root's.
npm ci --no-audit --no-fund --loglevel=error --prefix examples/nextjs-clerk5
# Chromium drives the browser suites; HAProxy balances the fleet test (tests/it/fleet_proof.rs).
missing=""
if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then missing="$missing chromium"; fi
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then missing="$missing haproxy"; fi
# Go runs the token check of docs/guides/protect-an-api.md (standard library only).
if ! command -v go >/dev/null 2>&1; then missing="$missing golang-go"; fi
if [ -n "$missing" ]; then
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  # shellcheck disable=SC2086
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null
fi
"${CHROMIUM_PATH:-/usr/bin/chromium}" --version
/usr/sbin/haproxy -v | sed -n 1p  # sed reads to the end: head would make haproxy die of SIGPIPE (141) under pipefail

echo "== formatting"
cargo fmt --all -- --check
echo "== lints"
cargo clippy --all-targets --workspace --locked -- -D warnings
echo "== tests (unit, conformance on SQLite and PostgreSQL, HTTP, real binary)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')

# The real binary cargo just built, driven by third-party clients.
export LATCHKEY_BIN="$PWD/target/debug/latchkey"

sdk_status=0
# Runs one npm test script and adds its node:test counts to the totals.
run_node_tests() {
  local name=$1 status
  echo "== $name"
  set +e
  npm run --silent "$2" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  set -e
  passed=$((passed + $(grep -Eo '^# pass [0-9]+' "$log" | awk '{s+=$3} END {print s+0}')))
  failed=$((failed + $(grep -Eo '^# fail [0-9]+' "$log" | awk '{s+=$3} END {print s+0}')))
  if [ "$status" -ne 0 ]; then
    sdk_status=1
    if ! grep -Eq '^# fail [1-9]' "$log"; then failed=$((failed + 1)); fi
  fi
}
run_node_tests "latchkey-js (web/packages/latchkey-js: TypeScript build, unit tests against a fresh latchkey)" test:latchkey-js
echo "== BabyLog: the build embedded in the binary equals a fresh build of web/apps/babylog"
if npm run --silent check:babylog; then passed=$((passed + 1)); else failed=$((failed + 1)); sdk_status=1; fi
run_node_tests "BabyLog (served by latchkey at /) end to end in Chromium" test:babylog
run_node_tests "@clerk/backend (npm, pinned) against a fresh latchkey" test:clerk-backend
run_node_tests "@clerk/clerk-sdk-node 5 (npm, pinned; the seeds' older generation) against a fresh latchkey" test:clerk-sdk-node
run_node_tests "@clerk/clerk-js and @clerk/ui (npm, pinned) in Chromium against a fresh latchkey" test:clerk-js
run_node_tests "examples/nextjs-clerk: @clerk/nextjs (npm, pinned) built, started and used in Chromium" test:clerk-nextjs
run_node_tests "examples/nextjs-clerk5: @clerk/nextjs 5 with authMiddleware (npm, pinned) built, started and used in Chromium" test:clerk-nextjs5

echo "== PyJWT and schemathesis (PyPI, pinned) against a fresh latchkey"
set +e
(python3 -m venv target/py-venv && target/py-venv/bin/pip install --quiet --disable-pip-version-check -r sdk/python/requirements.txt && target/py-venv/bin/python sdk/python/run.py)
py_status=$?
set -e
if [ "$py_status" -eq 0 ]; then passed=$((passed + 2)); else failed=$((failed + 1)); fi

# After the venv: the guides' Python blocks use its PyJWT.
run_node_tests "docs: README's tour and the guides' runnable blocks against a fresh latchkey, docs/reference/ regenerated and compared" test:docs

echo "== all checks done"
echo "tests: ${passed} passed, ${failed} failed"
if [ "$status" -ne 0 ] || [ "$sdk_status" -ne 0 ] || [ "$py_status" -ne 0 ]; then exit 1; fi
