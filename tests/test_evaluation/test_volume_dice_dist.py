"""VolumeDiceMetric over 2 gloo processes equals the 1-process result:
slices of one volume that land on different ranks are regrouped."""
import os
import socket

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp
from test_volume_dice import two_cases

from medssl.evaluation import VolumeDiceMetric

CLASSES = ('background', 'spleen', 'liver', 'aorta')


def _metric():
    metric = VolumeDiceMetric()
    metric.dataset_meta = dict(classes=CLASSES)
    return metric


def _worker(rank, world, port, queue):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        samples = two_cases()
        metric = _metric()
        # interleaved: every volume is split across both ranks
        metric.process({}, samples[rank::world])
        res = metric.evaluate(len(samples))
        queue.put((rank, res))
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_ranks_equal_one_process():
    single = _metric()
    samples = two_cases()
    single.process({}, samples)
    expected = single.evaluate(len(samples))

    ctx = mp.get_context('spawn')
    queue = ctx.SimpleQueue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, queue))
             for r in range(2)]
    for p in procs:
        p.start()
    results = dict(queue.get() for _ in procs)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    for rank in (0, 1):  # BaseMetric broadcasts rank 0's result
        assert results[rank].keys() == expected.keys()
        for k, v in expected.items():
            assert results[rank][k] == pytest.approx(v, nan_ok=True), k
    assert expected['mDice'] == pytest.approx(100 * (0.375 + 0.6) / 2,
                                              abs=0.01)
