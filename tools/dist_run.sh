#!/usr/bin/env bash
# torchrun launch of a medssl tool, shared by dist_train.sh and dist_test.sh.
# Usage: bash tools/dist_run.sh TOOL.py NGPUS [tool args]
# Several nodes: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on every node.
# On CPU-only machines each "GPU" is a process and the gloo backend is used.
set -euo pipefail
if [ "$#" -lt 2 ]; then
    echo "usage: bash tools/dist_run.sh TOOL.py NGPUS [tool args]" >&2
    exit 2
fi
TOOL=$1
GPUS=$2
shift 2
DIR="$(cd "$(dirname "$0")" && pwd)"
if ! [[ "$GPUS" =~ ^[1-9][0-9]*$ ]]; then
    echo "error: NGPUS must be a positive integer, got '$GPUS'" >&2
    exit 2
fi
if [ ! -f "$DIR/$TOOL" ]; then
    echo "error: no tool $DIR/$TOOL" >&2
    exit 2
fi

PYTHONPATH="$DIR/..:${PYTHONPATH:-}" \
python -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$GPUS" \
    --master_port="${PORT:-29500}" \
    "$DIR/$TOOL" "$@" --launcher pytorch
