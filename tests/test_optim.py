"""The optimiser: LayoutAdam updates channels-last weights as plain Adam does."""

from __future__ import annotations

import inspect

import torch
from support import build_tiny
from torch import nn

from colorkit.optim import LayoutAdam, _dense_views


def test_torch_adam_still_has_the_init_group_layout_adam_overrides() -> None:
    """LayoutAdam overrides torch's private Adam._init_group: fail here if torch changes it."""
    signature = inspect.signature(torch.optim.Adam._init_group)
    assert list(signature.parameters)[:6] == [
        "self",
        "group",
        "params_with_grad",
        "grads",
        "exp_avgs",
        "exp_avg_sqs",
    ], f"torch.optim.Adam._init_group changed to {signature}; update colorkit.optim.LayoutAdam"


def test_fused_step_goes_through_the_override(monkeypatch) -> None:
    """If torch's step stopped calling _init_group, the override would silently do nothing."""
    calls: list[bool] = []
    original = LayoutAdam._init_group

    def spy(self: LayoutAdam, group: dict, *args: object) -> object:
        calls.append(bool(group.get("fused")))
        return original(self, group, *args)

    monkeypatch.setattr(LayoutAdam, "_init_group", spy)
    conv = nn.Conv2d(2, 4, 3).to(memory_format=torch.channels_last)
    optimizer = LayoutAdam(conv.parameters(), lr=0.1, fused=True)
    conv(torch.rand(1, 2, 5, 5)).sum().backward()
    optimizer.step()
    assert calls == [True]


def test_channels_last_weights_get_the_plain_adam_update() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3)
    reference = nn.Conv2d(8, 16, 3)
    reference.load_state_dict(conv.state_dict())
    conv.to(memory_format=torch.channels_last)
    fast = LayoutAdam(conv.parameters(), lr=0.1, betas=(0.5, 0.999), fused=True)
    plain = torch.optim.Adam(reference.parameters(), lr=0.1, betas=(0.5, 0.999), foreach=False)
    for _ in range(3):
        grads = [torch.randn_like(p) for p in reference.parameters()]
        for param, grad in zip(reference.parameters(), grads, strict=True):
            param.grad = grad
        for param, grad in zip(conv.parameters(), grads, strict=True):
            param.grad = torch.empty_like(param).copy_(grad)  # the parameter's layout
        fast.step()
        plain.step()
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    for name, param in conv.named_parameters():
        assert torch.allclose(param, getattr(reference, name), atol=1e-6), name


def test_dense_views_share_memory_only_when_layouts_agree() -> None:
    weight = torch.randn(16, 8, 3, 3).contiguous(memory_format=torch.channels_last)
    state = torch.zeros_like(weight)  # keeps the channels-last layout
    views = _dense_views((weight, state))
    assert all(v.is_contiguous() for v in views)
    assert [v.data_ptr() for v in views] == [weight.data_ptr(), state.data_ptr()]
    mixed = (weight, torch.zeros(16, 8, 3, 3))  # a contiguous gradient beside it
    assert all(a is b for a, b in zip(_dense_views(mixed), mixed, strict=True))
    plain = (torch.randn(4, 4), torch.randn(4, 4))
    assert all(a is b for a, b in zip(_dense_views(plain), plain, strict=True))


def test_fused_adam_survives_a_layout_change() -> None:
    """Optimiser state left in NCHW after a switch to channels-last still steps correctly."""
    rgb = torch.rand(2, 3, 32, 32)
    a, b = build_tiny("pix2pix", generator_depth=4), build_tiny("pix2pix", generator_depth=4)
    for model in (a, b):
        torch.manual_seed(1)  # dropout draws the same masks in both
        model.train_step(rgb)
        model.to(memory_format=torch.channels_last)  # moves parameters, not optimiser state
    for optimizer in a.optimizers.values():  # a: state converted by hand, the known-good way
        for param, state in optimizer.state.items():
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.shape == param.shape:
                    state[key] = torch.empty_like(param).copy_(value)
    for model in (a, b):
        torch.manual_seed(2)
        model.train_step(rgb)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
