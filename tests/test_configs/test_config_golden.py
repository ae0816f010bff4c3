"""Every runnable config resolves to what tests/data/configs_resolved.json
records (model, dataloaders, optimizer, schedules, hooks: the whole dict).

The golden is written by ``tools/misc/resolve_configs.py --update``; a config
refactor (inheriting upstream bases, moving keys between files) must leave it
unchanged, an intended change of a default regenerates it.
"""
import json
import os.path as osp

import pytest
from tool_scripts import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


TOOL = load_script('tools/misc/resolve_configs.py')
with open(TOOL.GOLDEN) as _f:
    GOLDEN = json.load(_f)


def test_golden_lists_every_config():
    now = TOOL.config_files()
    assert sorted(GOLDEN) == now, (
        'configs added or removed since the golden was written: '
        f'new {sorted(set(now) - set(GOLDEN))}, '
        f'gone {sorted(set(GOLDEN) - set(now))}; regenerate with '
        f'`{TOOL.UPDATE_CMD}`')


@pytest.mark.parametrize('path', sorted(GOLDEN))
def test_config_resolves_as_golden(path):
    diffs = TOOL.differences(GOLDEN[path], TOOL.resolve(path))
    assert not diffs, (
        f'{path} resolves differently from tests/data/configs_resolved.json '
        '(golden -> now):\n  ' + '\n  '.join(diffs) +
        f'\nIf the change is intended, regenerate with `{TOOL.UPDATE_CMD}`.')


def test_normalise_is_order_and_sequence_type_free():
    a = TOOL.normalise(dict(b=(1, 2), a=dict(_scope_='medssl', x=[3])),
                       'medssl')
    b = TOOL.normalise(dict(a=dict(x=(3, )), b=[1, 2]), 'medssl')
    assert a == b == {'a': {'x': [3]}, 'b': [1, 2]}
    # a scope other than the default one changes how types resolve: kept
    assert TOOL.normalise(dict(_scope_='mmseg'), 'medssl') == {
        '_scope_': 'mmseg'}


def test_differences_name_the_key_path():
    golden = {'model': {'head': {'num_classes': 14}, 'l': [1, 2]}}
    now = {'model': {'head': {'num_classes': 13}, 'l': [1, 5], 'new': 0}}
    assert TOOL.differences(golden, now) == [
        'model.head.num_classes: 14 -> 13',
        'model.l.1: 2 -> 5',
        'model.new: (missing) -> 0',
    ]
