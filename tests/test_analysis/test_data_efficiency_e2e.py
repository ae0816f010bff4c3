"""End-to-end data-efficiency run: tools/train.py + tools/test.py as
subprocesses on the tiny BTCV phantom config (1 fraction x 1 seed, random
init + one SSL checkpoint)."""
import csv
import json
import math
import os.path as osp

import pytest
import torch
from tool_scripts import ROOT, load_tool

CONFIG = osp.join(ROOT, 'configs', 'benchmarks', 'mmsegmentation', 'btcv',
                  'fcn_r18-d8_1xb2-20it_btcv-phantom.py')
SSL_CONFIG = osp.join(ROOT, 'configs', 'selfsup', 'simclr',
                      'simclr_r18_1xb4-6it_phantom.py')


@pytest.mark.slow
def test_data_efficiency_end_to_end(btcv_slices_root, tmp_path):
    from mmengine.config import Config

    from medssl.analysis.data_efficiency import read_tested_checkpoint
    from medssl.analysis.embeddings import build_ssl_model

    # an (untrained) SSL checkpoint with backbone.* keys, ResNet-18, 1 channel
    torch.manual_seed(0)
    model = build_ssl_model(Config.fromfile(SSL_CONFIG))
    ckpt = tmp_path / 'ssl.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), str(ckpt))

    root = btcv_slices_root
    work = tmp_path / 'runs'
    tool = load_tool('data_efficiency')
    tool.main([
        CONFIG, '--checkpoints', f'ssl={ckpt}', '--fractions', '0.5',
        '--seeds', '0', '--work-dir',
        str(work), '--cfg-options',
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}', 'train_cfg.max_iters=3',
        'train_cfg.val_interval=3', 'default_hooks.checkpoint.interval=3'
    ])
    results = {}
    # the phantom training split has 2 volumes (img0001, img0002): r = 0.5
    # trains on 1 of them, and that is what is recorded
    n_train = len(open(osp.join(root, 'splits', 'train_cases.txt')).read(
    ).split())
    assert n_train == 2
    for method in ('random', 'ssl'):
        res = json.loads(
            (work / f'{method}_1of2vol_seed0' / 'result.json').read_text())
        assert (res['fraction'], res['num_volumes'],
                res['total_volumes']) == (0.5, 1, 2)
        assert 'error' not in res, res.get('error')
        assert math.isfinite(res['dice']) and 0 <= res['dice'] <= 100
        results[method] = res['dice']
        # no save_best in the phantom config: the last checkpoint is
        # tested, and tools/test.py's log names the file it loaded
        assert res['tested'] == 'last'
        assert read_tested_checkpoint(
            str(work / f'{method}_1of2vol_seed0' / 'test')) == \
            res['finetuned']
        # the fraction really reached the dataset: the train log names it
        log = (work / f'{method}_1of2vol_seed0' / 'train.out').read_text()
        assert 'case_fraction=0.5' in log and '1/2 cases' in log
    with open(work / 'data_efficiency.csv') as f:
        rows = list(csv.DictReader(f))
    assert {(r['method'], float(r['fraction']), int(r['num_volumes']),
             int(r['seed']), r['tested']) for r in rows} == {
                 ('random', 0.5, 1, 0, 'last'), ('ssl', 0.5, 1, 0, 'last')}
    for r in rows:
        assert float(r['dice']) == pytest.approx(results[r['method']])
    summ = json.loads((work / 'data_efficiency_summary.json').read_text())
    assert set(summ) == {'random', 'ssl'}
    assert (work / 'data_efficiency.png').is_file()
    # the SSL run loaded the checkpoint into the backbone
    ssl_log = (work / 'ssl_1of2vol_seed0' / 'train.out').read_text()
    assert str(ckpt) in ssl_log
