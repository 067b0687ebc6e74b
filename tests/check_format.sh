#!/usr/bin/env bash
# Fails when a C file under src/, include/ or tests/ is not clang-format clean.
set -euo pipefail
cd "${TG_SRC:-$(dirname "$0")/..}"
if ! command -v clang-format >/dev/null; then
    echo "clang-format not installed"
    exit 1
fi
bad=0
while IFS= read -r f; do
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
        echo "not clang-format clean: $f"
        bad=$((bad + 1))
    fi
done < <(find src include tests -name '*.[ch]' | sort)
echo "clang-format: $bad file(s) need formatting"
[ "$bad" -eq 0 ]
