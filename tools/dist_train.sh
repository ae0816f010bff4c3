#!/usr/bin/env bash
# DDP training with torchrun; several nodes and CPU-only machines: see dist_run.sh.
# Usage: bash tools/dist_train.sh CONFIG NGPUS [train.py args]
set -euo pipefail
[ "$#" -ge 2 ] || {
    echo "usage: bash tools/dist_train.sh CONFIG NGPUS [train.py args]" >&2; exit 2; }
exec bash "$(dirname "$0")/dist_run.sh" train.py "$2" "$1" "${@:3}"
