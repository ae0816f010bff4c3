"""Runner checkpoints save and load back under torch >= 2.6 (weights_only default)."""
import torch
from mmengine.runner import load_checkpoint
from toy_models import ToyModel


def test_runner_checkpoint_roundtrip(tmp_path, toy_runner):
    runner = toy_runner(ToyModel(), max_iters=3)
    runner.train()
    ckpt = tmp_path / 'iter_3.pth'
    assert ckpt.is_file()

    fresh = ToyModel()
    load_checkpoint(fresh, str(ckpt))
    for k, v in runner.model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[k], v, rtol=0, atol=0)
    assert fresh.steps.item() == 3
    # the optimizer state (momentum) travels too, for exact resume
    raw = torch.load(ckpt, map_location='cpu', weights_only=False)
    assert raw['meta']['iter'] == 3
    assert 'momentum_buffer' in raw['optimizer']['state'][0]
