"""CollapseMonitorHook: collapse indicators of the training batch.

Logs cheap dimensional-collapse indicators of the current training batch
every ``interval`` iterations, with **no extra forward pass**: forward hooks
on the model's ``neck`` (projector output) and ``backbone`` (last-stage
feature map, global-average pooled) capture the embeddings computed by the
normal training forward, only on the iterations that are logged.

Scalars (``runner.message_hub.update_scalar``; they reach the logger and the
visualizer backends, e.g. TensorBoard, through mmengine's LoggerHook):

* ``train/effective_rank`` / ``train/normalized_std`` - projector output
  (``neck`` output ``[0]``; for DenseCL the global vector);
* ``train/backbone_effective_rank`` / ``train/backbone_normalized_std`` -
  backbone pooled features (``train/decorrelation_*`` likewise for the
  output of a ``decorrelation`` module when ``sources`` names it).

Effective rank = exp(entropy) of the singular values of the covariance of
the L2-normalised batch embeddings (Jing et al. 2022, Roy & Vetterli 2007),
so it is bounded by the batch size. ``normalized_std`` = mean per-dimension
std of L2-normalised embeddings (SimSiam's collapse indicator, ~1/sqrt(D) when
not collapsed, 0 when collapsed). See :mod:`medssl.analysis.spectrum`.

Example config::

    custom_hooks = [dict(type='CollapseMonitorHook', interval=50)]

Only modules named ``neck`` / ``backbone`` of the (unwrapped) model are
hooked, not the momentum/target copies (those are deep copies made at model
construction, before this hook registers anything). Algorithms that run the
neck several times per step (SimCLR on 2N images, BYOL once per view) give
all captured rows.
"""
from typing import List, Optional, Sequence

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from medssl.analysis.pooling import pool_embedding
from medssl.analysis.spectrum import (effective_rank_from_values,
                                      embedding_spectrum, normalized_std)
from medssl.registry import HOOKS

__all__ = ['CollapseMonitorHook']


def projector_embedding(neck_output) -> Optional[torch.Tensor]:
    """(N, D) embedding from a neck output: its first tensor, spatially
    averaged if it is a feature map."""
    return pool_embedding(neck_output, 'first')


def backbone_embedding(backbone_output) -> Optional[torch.Tensor]:
    """(N, C) global average of the last backbone feature map."""
    return pool_embedding(backbone_output, 'last')


@HOOKS.register_module()
class CollapseMonitorHook(Hook):
    """Log effective rank and normalised std of batch embeddings.

    Args:
        interval (int): log every ``interval`` training iterations.
        sources (Sequence[str]): any of ``'neck'`` (projector output),
            ``'backbone'`` (pooled last-stage features) and
            ``'decorrelation'`` (pooled output of a MedMoCo ``decorrelation``
            module, when the model has one; ignored otherwise).
        prefix (str): scalar name prefix. Defaults to ``'train/'``.
    """

    priority = 'NORMAL'

    def __init__(self,
                 interval: int = 50,
                 sources: Sequence[str] = ('neck', 'backbone'),
                 prefix: str = 'train/') -> None:
        assert interval >= 1
        unknown = set(sources) - {'neck', 'backbone', 'decorrelation'}
        assert not unknown, f'unknown sources {unknown}'
        self.interval = interval
        self.sources = tuple(sources)
        self.prefix = prefix
        self._handles: List = []
        self._captured = {s: [] for s in self.sources}
        self._active = False

    # ------------------------------------------------------------------
    def _make_hook(self, source: str):

        def hook(module, inputs, output):
            if not self._active:
                return
            fn = projector_embedding if source == 'neck' \
                else backbone_embedding
            emb = fn(output)
            if emb is not None:
                self._captured[source].append(emb.detach().float().cpu())

        return hook

    def register(self, model) -> None:
        """Attach forward hooks to ``model.neck`` / ``model.backbone``."""
        self.remove()
        if is_model_wrapper(model):
            model = model.module
        for source in self.sources:
            module = getattr(model, source, None)
            if isinstance(module, torch.nn.Module):
                self._handles.append(
                    module.register_forward_hook(self._make_hook(source)))

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    # ------------------------------------------------------------------
    def before_train(self, runner) -> None:
        self.register(runner.model)

    def after_train(self, runner) -> None:
        self.remove()

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        # runner.iter is the index of the iteration about to run
        self._active = (runner.iter + 1) % self.interval == 0 \
            or runner.iter == 0
        for v in self._captured.values():
            v.clear()

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if not self._active:
            return
        self._active = False
        scalars = self.compute(self._captured)
        for k, v in scalars.items():
            runner.message_hub.update_scalar(self.prefix + k, v)
        for v in self._captured.values():
            v.clear()

    @staticmethod
    def compute(captured) -> dict:
        """Scalars from ``{source: [(n_i, D) tensors]}``."""
        out = {}
        for source, chunks in captured.items():
            if not chunks:
                continue
            z = torch.cat(chunks, dim=0)
            if z.shape[0] < 2 or not torch.isfinite(z).all():
                continue
            name = '' if source == 'neck' else f'{source}_'
            spec = embedding_spectrum(z)
            out[f'{name}effective_rank'] = effective_rank_from_values(spec)
            out[f'{name}normalized_std'] = normalized_std(z)
        return out
