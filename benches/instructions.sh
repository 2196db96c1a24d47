#!/usr/bin/env bash
# Instructions per loopback request, bare and through each variant of the
# `loopback_instructions` bench, counted by valgrind's cachegrind: exact enough to compare
# what layers add to a real request on a machine too noisy to time it (README, Benchmarks).
#
# Each variant runs twice, with LOW and HIGH requests after the same warm-up; the difference
# divided by HIGH - LOW is one request's user-space instructions (client and server threads;
# the kernel's are not counted). Needs valgrind (`apt-get install valgrind`).
#
#   benches/instructions.sh [variant...]
set -euo pipefail
cd "$(dirname "$0")/.."

LOW=${LOW:-500}
HIGH=${HIGH:-1500}

command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
bin=$(cargo bench -p benches --bench loopback_instructions --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*loopback_instructions[^"]*\)".*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "could not build the loopback_instructions bench" >&2; exit 1; }

variants=("$@")
if [ ${#variants[@]} -eq 0 ]; then
    mapfile -t variants < <("$bin" --list)
fi

instructions() { # variant requests -> total instructions of the run
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
        sed -n 's/.*I *refs: *\([0-9,]*\).*/\1/p' | tr -d ,
}

per_request() { # variant -> instructions per request
    local low high
    low=$(instructions "$1" "$LOW")
    high=$(instructions "$1" "$HIGH")
    echo $(((high - low) / (HIGH - LOW)))
}

bare=$(per_request bare)
printf '%-26s %14s %10s %8s\n' variant "instr/request" added "of bare"
for variant in "${variants[@]}"; do
    if [ "$variant" = bare ]; then n=$bare; else n=$(per_request "$variant"); fi
    added=$((n - bare))
    printf '%-26s %14d %10d %7.1f%%\n' "$variant" "$n" "$added" "$(awk "BEGIN { print 100 * $added / $bare }")"
done
