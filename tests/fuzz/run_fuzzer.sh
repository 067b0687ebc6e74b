#!/usr/bin/env bash
# Fuzzes one libFuzzer target for a while (ctest fuzz.run.NAME).
#
#   run_fuzzer.sh BINARY WORKDIR SECONDS DICT|- SEED_DIR...
#
# The seeds are copied into WORKDIR/corpus first: libFuzzer adds the inputs
# it finds to its first corpus directory, and that must not be the source
# tree. Crash, leak and timeout inputs land in WORKDIR/artifacts/; to keep
# one, minimise it (BINARY -minimize_crash=1 -runs=10000 FILE) and copy it
# into tests/fuzz/regressions/NAME/.
set -euo pipefail
bin=$1 work=$2 seconds=$3 dict=$4
shift 4

rm -rf "$work/corpus"
mkdir -p "$work/corpus" "$work/artifacts"
for d in "$@"; do
    if [ -d "$d" ]; then
        find "$d" -maxdepth 1 -type f ! -name '.*' -exec cp {} "$work/corpus/" \;
    fi
done
echo "fuzzing $(basename "$bin") for ${seconds}s over $(ls "$work/corpus" | wc -l) seed(s)"
# -timeout: one input running this long is a hang; -rss_limit_mb: a leak or
# runaway allocation. Both count as failures, like crashes.
opts=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
      -artifact_prefix="$work/artifacts/")
if [ "$dict" != - ]; then
    opts+=(-dict="$dict")
fi
exec "$bin" "${opts[@]}" "$work/corpus"
