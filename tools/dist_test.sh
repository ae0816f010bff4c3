#!/usr/bin/env bash
# Distributed testing with torchrun; several nodes and CPU-only machines: see dist_run.sh.
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT NGPUS [test.py args]
set -euo pipefail
[ "$#" -ge 3 ] || {
    echo "usage: bash tools/dist_test.sh CONFIG CHECKPOINT NGPUS [test.py args]" >&2; exit 2; }
exec bash "$(dirname "$0")/dist_run.sh" test.py "$3" "$1" "$2" "${@:4}"
