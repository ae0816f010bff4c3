"""Import a script under tools/ as a module (tools/ is not a package), so a
test can call its ``main(argv)`` or helpers in-process."""
import importlib.util
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_script(rel: str):
    """The module of ``ROOT/rel`` (e.g. ``'tools/train.py'``)."""
    name = 'medssl_script_' + rel.replace('/', '_')[:-3]
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, rel))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load_tool(name: str):
    """The module of ``tools/analysis_tools/<name>.py``."""
    return load_script(f'tools/analysis_tools/{name}.py')
