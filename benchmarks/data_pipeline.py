"""CT data-path benchmark: converter throughput, the configs' own training
data pipeline against a measured training step, slice storage formats.

1. **Converter** throughput relative to raw I/O on the same phantom volumes:
   baseline = ``nib.load`` + ``get_fdata`` + ``np.save`` of the uint16-encoded
   volume (image and label); converter = the real ``convert_cases``
   (validation, reorientation, per-slice image files, label PNGs, meta JSON,
   atomic writes), one process, 1 and 2 slice-writing threads, for each image
   format (``npy`` default, ``png``). Ratio = baseline / converter time
   (goal >= 0.8 on 1 thread).
2. **Training data pipeline from a config** (default: the tiny phantom and
   the full-scale MedMoCo pretraining configs), on converted phantom slices
   (``train_dataloader.dataset.data_root`` overridden): the config's dataset,
   pipeline (LoadCTSlice, HUWindow, MultiViewWithParams of
   RandomResizedCropWithParams ..., PackSelfSupInputs), sampler and collate
   via ``Runner.build_dataloader`` with ``num_workers=0`` (so the data time is
   one worker's), and the config's model + optimizer wrapper for a timed
   ``train_step`` on the same batches. Reported: data s/batch, step
   s/batch, data fraction = data / (data + step) with no worker overlap, and
   the workers needed to hide the data time (ceil(data / step)).
3. **Slice storage**: 16-bit PNG (the converters' level 1 + RLE, cv2's
   default level 3) vs ``.npy`` (uint16): bytes, read and write slices/s.

The phantom inputs of the three parts are made by ``_phantom_data.py``.

Usage::

    python benchmarks/data_pipeline.py [--cases 3] [--shape 512 512 24]
        [--full-batch-size 8] [--steps 3]
        [--out benchmarks/results/data_pipeline.json]
"""
import argparse
import json
import math
import os
import os.path as osp
import platform
import shutil
import sys
import tempfile
import time

from _phantom_data import abdomen1k_slices, btcv_case_specs, encoded_slices

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = {
    'tiny (phantom)': 'configs/selfsup/medmoco/'
    'mocov2-local-decor_r18_1xb4-6it_phantom.py',
    'full-scale (R50, 224^2)': 'configs/selfsup/medmoco/'
    'mocov2-local-decor_r50_8xb32-200e_abdomen1k.py',
}


def parse_args(argv=None):
    from medssl.cli import HelpFormatter
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], formatter_class=HelpFormatter,
        epilog='example:\n  python benchmarks/data_pipeline.py --cases 3 '
        '--steps 3 --full-batch-size 8')
    for flag, default, text in (
            ('--cases', 3, 'phantom volumes'),
            ('--repeat', 2, 'converter runs, the best kept'),
            ('--steps', 3, 'timed batches per config after one warm-up'),
            ('--full-batch-size', 8, 'batch of the full-scale config (its '
             'own is 32 per GPU; smaller keeps a CPU run short)'),
            ('--storage-slices', 32, 'slices written per storage format')):
        p.add_argument(flag, type=int, default=default, help=text)
    p.add_argument('--shape', type=int, nargs=3, default=[512, 512, 24],
                   help='phantom volume shape of the converter benchmark')
    p.add_argument('--skip', nargs='*', default=[],
                   choices=['converter', 'pipeline', 'storage'],
                   help='parts to skip')
    p.add_argument('--out', default='benchmarks/results/data_pipeline.json',
                   help='JSON result')
    return p.parse_args(argv)


#: image formats, the default first
FORMATS = ('npy', 'png')


def bench_converter(tmp, cases, shape, repeat):
    import nibabel as nib
    import numpy as np

    from medssl.datasets.converters import ConvertOptions, convert_cases
    from medssl.datasets.converters.ct_io import encode_hu
    from medssl.utils.benchmark import time_calls
    specs = btcv_case_specs(tmp, cases, shape)
    base_dir = osp.join(tmp, 'baseline')

    def baseline():
        shutil.rmtree(base_dir, ignore_errors=True)
        os.makedirs(base_dir)
        for s in specs:
            for path in (s.image, s.label):
                vol = nib.load(path).get_fdata(dtype=np.float32)
                np.save(osp.join(base_dir, osp.basename(path) + '.npy'),
                        encode_hu(vol))

    n_slices = [0]

    def convert(threads, img_format):
        out = osp.join(tmp, 'conv')
        shutil.rmtree(out, ignore_errors=True)
        opts = ConvertOptions(label_ids=range(14), require_label=True,
                              threads=threads, img_format=img_format)
        done, _ = convert_cases(specs, out, opts, progress=False)
        n_slices[0] = sum(r['slices'] for r in done)

    threads = 2
    t_base = min(time_calls(baseline, repeat))
    res = dict(cases=cases, shape=list(shape), baseline_s=t_base,
               threads=threads, formats={})
    for fmt in FORMATS:
        t_conv = min(time_calls(lambda: convert(1, fmt), repeat))
        t_conv_mt = min(time_calls(lambda: convert(threads, fmt), repeat))
        res['formats'][fmt] = dict(
            converter_s=t_conv,
            converter_slices_per_s=n_slices[0] / t_conv,
            throughput_ratio=t_base / t_conv,
            converter_threads_s=t_conv_mt,
            throughput_ratio_threads=t_base / t_conv_mt)
    res['slices'] = n_slices[0]
    return res


def bench_config(cfg_path, data_root, batch_size, steps):
    """Data time vs training-step time of one pretraining config."""
    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner

    from medssl.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, cfg_path))
    loader_cfg = cfg.train_dataloader
    loader_cfg.dataset.data_root = data_root
    loader_cfg.num_workers = 0
    loader_cfg.persistent_workers = False
    if batch_size:
        loader_cfg.batch_size = batch_size
    torch.manual_seed(0)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    model = MODELS.build(cfg.model)  # default init: timing only
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    batches = iter(loader)
    data_s, step_s = [], []
    for i in range(steps + 1):  # the first batch/step warms up
        t0 = time.perf_counter()
        batch = next(batches)
        t1 = time.perf_counter()
        model.train_step(batch, optim)
        t2 = time.perf_counter()
        if i:
            data_s.append(t1 - t0)
            step_s.append(t2 - t1)
    views = batch['inputs']
    data, step = sum(data_s) / steps, sum(step_s) / steps
    return dict(
        config=cfg_path,
        batch_size=loader_cfg.batch_size,
        view_shape=list(views[0].shape),
        pipeline=[t['type'] for t in loader_cfg.dataset.pipeline],
        collate=loader_cfg.get('collate_fn', {}).get('type', 'pseudo_collate'),
        sampler=loader_cfg.sampler.type,
        steps=steps,
        data_s_per_batch=data,
        step_s_per_batch=step,
        data_fraction=data / (data + step),
        workers_to_hide_data=max(1, math.ceil(data / step)))


def bench_storage(tmp, n):
    import cv2
    import numpy as np

    from medssl.datasets.converters import PNG_PARAMS
    slices = encoded_slices(n)
    res = {}
    params = dict(png1=PNG_PARAMS, png3=[cv2.IMWRITE_PNG_COMPRESSION, 3])
    for fmt in ('png1', 'png3', 'npy'):
        d = osp.join(tmp, f'store_{fmt}')
        os.makedirs(d)
        names = [osp.join(d, f's{z:04d}.' + fmt[:3]) for z in range(n)]
        t0 = time.perf_counter()
        for arr, p in zip(slices, names):
            if fmt == 'npy':
                np.save(p, arr)
            else:
                cv2.imwrite(p, arr, params[fmt])
        t_write = time.perf_counter() - t0
        size = sum(os.path.getsize(p) for p in names) / n
        reader = np.load if fmt == 'npy' else \
            (lambda p: cv2.imread(p, cv2.IMREAD_UNCHANGED))
        for p, arr in zip(names[:2], slices):
            assert np.array_equal(reader(p), arr)
        t0 = time.perf_counter()
        for _ in range(3):
            for p in names:
                reader(p)
        t_read = (time.perf_counter() - t0) / 3
        res[fmt] = dict(
            bytes_per_slice=size,
            read_slices_per_s=n / t_read,
            write_slices_per_s=n / t_write)
    return res


def main(argv=None):
    args = parse_args(argv)
    import cv2
    import nibabel as nib
    import numpy as np

    from medssl.utils import register_all_modules
    from medssl.utils.benchmark import format_table
    register_all_modules()
    cv2.setNumThreads(1)
    tmp = tempfile.mkdtemp(prefix='medssl_bench_')
    t_start = time.perf_counter()
    result = dict(env=dict(
        python=sys.version.split()[0], platform=platform.platform(),
        cpus=os.cpu_count(), cv2=cv2.__version__, nibabel=nib.__version__,
        numpy=np.__version__))
    tables = []
    try:
        if 'converter' not in args.skip:
            conv = bench_converter(tmp, args.cases, args.shape, args.repeat)
            result['converter'] = conv
            rows = [('raw nib load + np.save (1 thread)',
                     f"{conv['baseline_s']:.2f} s", '1.00')]
            for fmt in FORMATS:
                c = conv['formats'][fmt]
                rows += [(f'converter {fmt}, 1 thread',
                          f"{c['converter_s']:.2f} s",
                          f"{c['throughput_ratio']:.2f}"),
                         (f"converter {fmt}, {conv['threads']} threads",
                          f"{c['converter_threads_s']:.2f} s",
                          f"{c['throughput_ratio_threads']:.2f}")]
            tables.append(
                f"Converter: {conv['cases']} cases {tuple(conv['shape'])}, "
                f"{conv['slices']} slices (goal: ratio >= 0.8 on 1 thread)\n"
                + format_table(rows, ('run', 'time', 'raw / run')))
        if 'pipeline' not in args.skip:
            root = abdomen1k_slices(tmp, args.cases)
            pipe = {}
            for name, path in CONFIGS.items():
                bs = None if name.startswith('tiny') else args.full_batch_size
                pipe[name] = bench_config(path, root, bs, args.steps)
            result['pipeline'] = pipe
            rows = [(name, r['batch_size'], 'x'.join(map(str, r['view_shape'])),
                     f"{r['data_s_per_batch'] * 1e3:.0f} ms",
                     f"{r['step_s_per_batch'] * 1e3:.0f} ms",
                     f"{100 * r['data_fraction']:.1f} %",
                     r['workers_to_hide_data']) for name, r in pipe.items()]
            tables.append(
                'Training data pipeline of the config (1 worker) vs a '
                'training step\n' + format_table(
                    rows, ('config', 'batch', 'view', 'data/batch',
                           'step/batch', 'data fraction', 'workers to hide')))
        if 'storage' not in args.skip:
            store = bench_storage(tmp, args.storage_slices)
            result['storage'] = store
            rows = [(name, f"{store[k]['bytes_per_slice'] / 1024:.0f} KiB",
                     f"{store[k]['read_slices_per_s']:.0f}/s",
                     f"{store[k]['write_slices_per_s']:.0f}/s")
                    for k, name in (('png1', '16-bit PNG lvl 1 RLE (png)'),
                                    ('png3', '16-bit PNG lvl 3 (cv2 default)'),
                                    ('npy', '.npy uint16 (default)'))]
            tables.append('Slice storage (512x512)\n' + format_table(
                rows, ('format', 'size', 'read', 'write')))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result['total_s'] = time.perf_counter() - t_start
    print('\n\n'.join(tables))
    print(f"total {result['total_s']:.1f} s")
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2, sort_keys=True)
    print(f'wrote {args.out}')
    return result


if __name__ == '__main__':
    main()
