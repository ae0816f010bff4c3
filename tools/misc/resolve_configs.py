"""Resolve every config under configs/ and write (or check) a golden JSON.

Each config is loaded with mmengine's ``Config.fromfile`` (so ``_base_``
inheritance, ``mmselfsup::``/``mmseg::`` bases and ``{{_base_.x}}``
references are all applied) and stored in a normalised form: tuples become
lists and a ``_scope_`` equal to the config's ``default_scope`` is dropped
(building in the default scope is what an absent ``_scope_`` does).
``tests/test_configs/test_config_golden.py`` compares every config with
this golden, so a refactor of the configs that changes what they resolve to
fails there. After an *intended* change of a default, regenerate it with::

    python tools/misc/resolve_configs.py --update

and commit the JSON with the change (its diff shows what changed).
"""
import argparse
import json
import os.path as osp
import sys

from medssl.cli import HelpFormatter

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
GOLDEN = osp.join(ROOT, 'tests', 'data', 'configs_resolved.json')
UPDATE_CMD = 'python tools/misc/resolve_configs.py --update'


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=HelpFormatter,
        epilog='examples:\n'
        '  python tools/misc/resolve_configs.py --update\n'
        '  python tools/misc/resolve_configs.py --check\n'
        '  python tools/misc/resolve_configs.py --print '
        'configs/selfsup/mocov2/mocov2_r18_1xb4-6it_phantom.py')
    p.add_argument('--golden', default=GOLDEN, help='golden JSON path')
    p.add_argument('--root', default=ROOT,
                   help='tree whose configs/ are resolved (e.g. a copy of '
                   'an older revision, to write a golden to compare with)')
    mode = p.add_mutually_exclusive_group()
    mode.add_argument('--update', action='store_true',
                      help='rewrite the golden from the configs as they are')
    mode.add_argument('--check', action='store_true',
                      help='exit 1 and list differences if any config '
                      'resolves differently from the golden')
    mode.add_argument('--print', metavar='CONFIG',
                      help='print one resolved config as JSON')
    return p.parse_args(argv)


def normalise(obj, default_scope=None):
    """JSON-ready, order-free form of a resolved config value."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if key == '_scope_' and value == default_scope:
                continue
            out[str(key)] = normalise(value, default_scope)
        return out
    if isinstance(obj, (list, tuple)):
        return [normalise(v, default_scope) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return repr(obj)  # e.g. a class given as type=; compared by its repr


def config_files(root=ROOT):
    """Every runnable config, repo-relative. ``_base_`` fragments are left
    out: they are not run on their own (and have no ``default_scope``), and
    every one of them is resolved inside the configs that inherit it."""
    import glob
    found = glob.glob(osp.join(root, 'configs', '**', '*.py'), recursive=True)
    return sorted(
        osp.relpath(f, root) for f in found
        if '_base_' not in osp.relpath(f, root).split(osp.sep))


def resolve(path, root=ROOT):
    """The normalised resolved dict of one config file."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(root, path)).to_dict()
    return normalise(cfg, cfg.get('default_scope'))


def resolve_all(root=ROOT):
    return {path: resolve(path, root) for path in config_files(root)}


def differences(golden, now, prefix='', limit=20):
    """``key.path: golden -> now`` lines where two normalised values differ."""
    out = []
    if isinstance(golden, dict) and isinstance(now, dict):
        for key in sorted(set(golden) | set(now)):
            path = f'{prefix}.{key}' if prefix else key
            if key not in now:
                out.append(f'{path}: {golden[key]!r} -> (missing)')
            elif key not in golden:
                out.append(f'{path}: (missing) -> {now[key]!r}')
            else:
                out += differences(golden[key], now[key], path, limit)
    elif (isinstance(golden, list) and isinstance(now, list)
          and len(golden) == len(now)):
        for i, (g, n) in enumerate(zip(golden, now)):
            out += differences(g, n, f'{prefix}.{i}', limit)
    elif golden != now:
        out.append(f'{prefix}: {golden!r} -> {now!r}')
    return out[:limit]


def check(golden_path=GOLDEN, root=ROOT):
    """Report lines for every config that differs from the golden."""
    with open(golden_path) as f:
        golden = json.load(f)
    now = resolve_all(root)
    report = []
    for path in sorted(set(golden) | set(now)):
        if path not in now:
            report.append(f'{path}: in the golden but no longer a config')
        elif path not in golden:
            report.append(f'{path}: new config, not in the golden')
        else:
            report += [f'{path}: {d}' for d in differences(golden[path],
                                                           now[path])]
    return report


def main(argv=None):
    args = parse_args(argv)
    if args.print:
        print(json.dumps(resolve(args.print, args.root), indent=2))
        return 0
    if args.update:
        data = resolve_all(args.root)
        with open(args.golden, 'w') as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.write('\n')
        print(f'wrote {len(data)} resolved configs to {args.golden}')
        return 0
    report = check(args.golden, args.root)
    print('\n'.join(report) if report else 'all configs match the golden')
    return 1 if report else 0


if __name__ == '__main__':
    sys.exit(main())
