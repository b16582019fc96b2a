#!/usr/bin/env bash
# Runs the test command (bash scripts/test.sh) N times in a row (default 3) while every CPU core
# is kept busy by a burner process, to show that no test waits on a guess of the machine's
# speed. Prints each run's wall-clock time and result; exits non-zero if any run failed.
# Usage: bash scripts/busy-test.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-3}"
if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [runs]   (runs: a positive number, default 3)" >&2
  exit 2
fi

burners=()
stop_burners() {
  if ((${#burners[@]} > 0)); then
    kill "${burners[@]}" 2>/dev/null || true
    wait "${burners[@]}" 2>/dev/null || true
    burners=()
  fi
}
trap stop_burners EXIT
trap 'exit 130' INT TERM

cores=$(nproc)
for _ in $(seq "$cores"); do
  yes >/dev/null &
  burners+=("$!")
done
echo "== $cores CPU burners running (pids ${burners[*]})"

results=()
failed=0
for i in $(seq "$runs"); do
  echo "== run $i of $runs: bash scripts/test.sh"
  start=$SECONDS
  if bash scripts/test.sh; then
    result=pass
  else
    result=FAIL
    failed=$((failed + 1))
  fi
  took=$((SECONDS - start))
  results+=("run $i: $result in $((took / 60)) min $((took % 60)) s")
  echo "== ${results[-1]}"
done
stop_burners

echo "== busy-test summary ($cores burners)"
printf '%s\n' "${results[@]}"
if ((failed > 0)); then
  echo "== $failed of $runs runs failed"
  exit 1
fi
echo "== all $runs runs passed"
