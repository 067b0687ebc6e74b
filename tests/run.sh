#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what is
# missing, builds with AddressSanitizer + UBSan, runs unit and integration
# tests, then fuzzes each parser for a minute in a clang build (FUZZ_SECONDS).
# This is what CI runs (.ci/run) and what the README's second command is.
# Chromium is installed so the dashboard test renders the page for real.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config libssl-dev libevent-dev libcyaml-dev libyaml-dev
          libcmocka-dev curl openssl python3 clang-format procps chromium
          clang libclang-rt-14-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

build=${BUILD_DIR:-build-test}
cmake -S . -B "$build" -DSANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" "$@"

# Fuzzing (tests/fuzz/README.md): a second, clang + libFuzzer build of the
# fuzz targets only, each fuzzed for FUZZ_SECONDS (default 60; 0 skips).
fuzz_seconds=${FUZZ_SECONDS:-60}
if [ "$fuzz_seconds" -gt 0 ]; then
    CC=clang cmake -S . -B "${build}-fuzz" -DTLSGATE_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
        -DFUZZ_SECONDS="$fuzz_seconds"
    cmake --build "${build}-fuzz" -j"$(nproc)" --target fuzz_targets
    ctest --test-dir "${build}-fuzz" --output-on-failure -j"$(nproc)" -R '^fuzz\.run\.'
fi
