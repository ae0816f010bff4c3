"""The method ablation's orchestration, shared by ``tools/analysis_tools/
ablation.py`` and its small preset ``tools/demo.py``.

Stages: phantoms -> conversion -> pretraining per (variant, seed) ->
collapse report -> linear probe -> fine-tuning arm -> reports. Each stage
maps one function over its runs in ``--jobs`` parallel single-thread
processes; runs whose outputs exist are skipped (resumable).
"""
from .cli import build_parser
from .paths import BTCV_PHANTOM_IDS, PROBE, btcv_phantom_ids
from .runner import AblationRun, run_ablation

__all__ = ['build_parser', 'BTCV_PHANTOM_IDS', 'PROBE', 'btcv_phantom_ids',
           'AblationRun', 'run_ablation']
