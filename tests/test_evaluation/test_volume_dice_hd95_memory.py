"""VolumeDiceMetric(hd95=True) computes a volume's HD95 as soon as its
slices are complete and drops its masks: memory held is bounded by one
volume, not the dataset; results equal the evaluate-time path; 2 ranks
(every volume split over both) equal 1 process."""
import json
import os
import socket
import tracemalloc

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from scipy import ndimage

from medssl.evaluation import VolumeDiceMetric

SHAPE = (96, 80, 8)  # (Y, X, Z) of one volume
NUM_CASES = 6


def _volumes(seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(NUM_CASES):
        f = ndimage.gaussian_filter(rng.standard_normal(SHAPE), 2.0)
        gt = np.digitize(f / f.std(), [0.3, 1.2]).astype(np.uint8)  # 0..2
        noise = ndimage.gaussian_filter(rng.standard_normal(SHAPE), 2.0)
        # an imperfect prediction: organs erased where the noise is high
        pred = np.where(noise / noise.std() > 1.0, 0, gt).astype(np.uint8)
        out.append((pred, gt))
    return out


def _write_meta(root, with_slices):
    os.makedirs(root / 'meta', exist_ok=True)
    for c in range(NUM_CASES):
        meta = dict(case=f'c{c}', spacing=[0.8, 0.7, 2.5])
        if with_slices:
            meta['slices'] = list(range(SHAPE[2]))
        (root / 'meta' / f'c{c}.json').write_text(json.dumps(meta))


def _samples(root):
    """Slices in dataset order (case by case, z ascending)."""
    out = []
    for c, (pred, gt) in enumerate(_volumes()):
        for z in range(SHAPE[2]):
            out.append(dict(
                img_path=str(root / 'img_dir' / f'c{c}_{z:04d}.npy'),
                pred_sem_seg=dict(data=torch.as_tensor(pred[..., z])[None]),
                gt_sem_seg=dict(data=torch.as_tensor(gt[..., z])[None])))
    return out


def _metric():
    m = VolumeDiceMetric(num_classes=3, hd95=True)
    return m


def test_masks_are_dropped_when_a_volume_is_complete(tmp_path):
    _write_meta(tmp_path, with_slices=True)
    samples = _samples(tmp_path)
    metric = _metric()
    volume_mask_bytes = 2 * int(np.prod(SHAPE))  # pred + gt, uint8
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for s in samples:
            metric.process({}, [s])
            # never more than the one volume being filled
            assert len(metric.hd95_store.pending) <= 1
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # all volumes are done before evaluate: nothing pending, and what stays
    # (per-slice counts, per-volume HD95) is far below the masks of a
    # single volume -- keeping every mask would be NUM_CASES volumes
    assert metric.hd95_store.pending == {}
    assert len(metric.hd95_store.done) == NUM_CASES
    assert held < 0.5 * volume_mask_bytes, held
    # compressed, a pending volume costs less than its raw masks
    assert 0 < metric.hd95_store.peak_pending_bytes <= volume_mask_bytes
    res = metric.evaluate(len(samples))
    assert res['num_cases'] == NUM_CASES and np.isfinite(res['mHD95'])


def test_early_and_late_hd95_agree(tmp_path):
    early, late = tmp_path / 'early', tmp_path / 'late'
    _write_meta(early, with_slices=True)
    _write_meta(late, with_slices=False)  # no slice list: evaluate time
    results = []
    for root in (early, late):
        metric = _metric()
        samples = _samples(root)
        metric.process({}, samples)
        assert len(metric.hd95_store.done) == (NUM_CASES if root == early else 0)
        results.append(metric.evaluate(len(samples)))
    assert results[0] == results[1]
    assert results[0]['mHD95'] > 0


def test_missing_meta_names_the_file(tmp_path):
    metric = _metric()
    with pytest.raises(ValueError, match=r'needs the spacing of case c0 in '
                       rf'{tmp_path}/meta/c0.json: FileNotFoundError'):
        metric.process({}, _samples(tmp_path)[:1])


def _worker(rank, world, port, root, queue):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        samples = _samples(root)
        metric = _metric()
        # interleaved like DefaultSampler: every volume on both ranks, so no
        # rank can complete one alone
        metric.process({}, samples[rank::world])
        queue.put((rank, metric.evaluate(len(samples))))
    finally:
        dist.destroy_process_group()


def test_two_ranks_equal_one_process(tmp_path):
    from pathlib import Path
    _write_meta(tmp_path, with_slices=True)
    single = _metric()
    samples = _samples(tmp_path)
    single.process({}, samples)
    expected = single.evaluate(len(samples))
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker,
                         args=(r, 2, port, Path(tmp_path), queue))
             for r in range(2)]
    for p in procs:
        p.start()
    # a worker that dies must fail the test, not hang it
    got = dict(queue.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    for rank in (0, 1):
        assert got[rank] == expected
    assert expected['mHD95'] > 0
