#!/usr/bin/env bash
# DDP training with torchrun.  Usage: bash tools/dist_train.sh CONFIG NGPUS [train.py args]
# Several nodes: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on every node.
# On CPU-only machines each "GPU" is a process and the gloo backend is used.
set -euo pipefail
if [ "$#" -lt 2 ]; then
    echo "usage: bash tools/dist_train.sh CONFIG NGPUS [train.py args]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
shift 2
exec bash "$(dirname "$0")/dist_run.sh" train.py "$GPUS" "$CONFIG" "$@"
