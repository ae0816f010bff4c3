#!/usr/bin/env bash
# Distributed testing with torchrun.
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT NGPUS [test.py args]
# Several nodes: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on every node.
# On CPU-only machines each "GPU" is a process and the gloo backend is used.
set -euo pipefail
if [ "$#" -lt 3 ]; then
    echo "usage: bash tools/dist_test.sh CONFIG CHECKPOINT NGPUS [test.py args]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
exec bash "$(dirname "$0")/dist_run.sh" test.py "$GPUS" "$CONFIG" "$CHECKPOINT" "$@"
