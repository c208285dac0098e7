"""Built-in components: shapes, pix2pix structure, gradients, odd sizes, losses, MLP Improver."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import colorkit
from colorkit import UnknownComponentError
from colorkit.components.discriminators import GlobalDiscriminator, PatchGAN
from colorkit.components.generators import TimmUNet, UNet
from colorkit.components.losses import CGANLoss
from colorkit.components.refiners import MLPImprover, grid_offsets, on_shifted_grid

ODD_SIZES = [(37, 53), (5, 7), (1, 1), (64, 24), (33, 32)]
TIMM_ENCODERS = ["resnet18", "mobilenetv3_small_100"]


def small_unet(**options: object) -> UNet:
    return colorkit.create("generator", "unet", depth=3, base_channels=8, **options)


def assert_gradients_reach_every_parameter(module: nn.Module, output: torch.Tensor) -> None:
    # a random weighting: a plain sum is blind to anything a normalisation layer cancels
    weights = torch.randn(output.shape, generator=torch.Generator().manual_seed(0))
    (output * weights).sum().backward()
    parameters = dict(module.named_parameters())
    assert parameters, "module has no parameters"
    for name, param in parameters.items():
        assert param.grad is not None, f"no gradient reaches {name}"
        assert torch.isfinite(param.grad).all(), f"non-finite gradient in {name}"
    assert any(p.grad.abs().sum() > 0 for p in parameters.values())


# -- the full pix2pix U-Net (the one full-size network of the suite) ---------------------
@pytest.fixture(scope="module")
def pix2pix_unet() -> UNet:
    torch.manual_seed(0)
    return colorkit.create("generator", "unet")


def test_pix2pix_unet_256(pix2pix_unet: UNet) -> None:
    unet = pix2pix_unet
    assert unet.depth == 8
    assert sum(p.numel() for p in unet.parameters()) == pytest.approx(54.4e6, abs=0.05e6)
    assert any(isinstance(m, nn.BatchNorm2d) for m in unet.modules())

    dropouts = [m for m in unet.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == 3 and all(d.p == 0.5 for d in dropouts)
    assert not any(isinstance(m, nn.Dropout) for m in unet.down.modules())

    encoder_relus = [m for m in unet.down.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]
    assert len(encoder_relus) == 7
    assert all(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2 for m in encoder_relus)
    decoder_relus = [m for m in unet.up.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]
    assert len(decoder_relus) == 8 and not any(isinstance(m, nn.LeakyReLU) for m in decoder_relus)
    assert isinstance(list(unet.modules())[-1], nn.Tanh)

    unet.eval()
    with torch.no_grad():
        out = unet(torch.rand(1, 1, 256, 256) * 2 - 1)
    assert out.shape == (1, 2, 256, 256)
    assert out.abs().max() <= 1.0 and out.std() > 0


# -- generators --------------------------------------------------------------------------
@pytest.mark.parametrize(("height", "width"), [(32, 32), *ODD_SIZES])
def test_unet_output_has_input_size(height: int, width: int) -> None:
    torch.manual_seed(0)
    unet = small_unet()
    out = unet(torch.rand(2, 1, height, width))
    assert out.shape == (2, 2, height, width)
    assert out.abs().max() <= 1.0


def test_unet_options_reach_the_network() -> None:
    unet = colorkit.create(
        "generator", "unet", depth=4, base_channels=4, max_channels=16, norm="instance", dropout=0
    )
    convs = [m for m in unet.down.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 16, 16]
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.Dropout)) for m in unet.modules())
    assert any(isinstance(m, nn.InstanceNorm2d) for m in unet.modules())
    assert unet(torch.rand(1, 1, 20, 20)).shape == (1, 2, 20, 20)


def test_unet_rgb_output_and_gradients() -> None:
    torch.manual_seed(0)
    unet = small_unet(out_channels=3)
    out = unet(torch.rand(2, 1, 24, 40))
    assert out.shape == (2, 3, 24, 40)
    assert_gradients_reach_every_parameter(unet, out)


def test_unet_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match=r"norm.*'foo'"):
        small_unet(norm="foo")
    with pytest.raises(ValueError, match=r"depth"):
        colorkit.create("generator", "unet", depth=1)


@pytest.fixture(scope="module", params=TIMM_ENCODERS)
def timm_unet(request: pytest.FixtureRequest) -> TimmUNet:
    torch.manual_seed(0)
    return colorkit.create("generator", "timm-unet", encoder=request.param, pretrained=False)


@pytest.mark.parametrize(("height", "width"), [(64, 64), (37, 53), (5, 7)])
def test_timm_unet_output_has_input_size(timm_unet: TimmUNet, height: int, width: int) -> None:
    out = timm_unet(torch.rand(2, 1, height, width))
    assert out.shape == (2, 2, height, width)
    assert out.abs().max() <= 1.0


def test_timm_unet_gradients(timm_unet: TimmUNet) -> None:
    timm_unet.zero_grad(set_to_none=True)
    out = timm_unet(torch.rand(2, 1, 32, 48))
    assert_gradients_reach_every_parameter(timm_unet, out)


def test_timm_unet_trains_on_one_small_image(timm_unet: TimmUNet) -> None:
    timm_unet.train()
    for height, width in [(5, 7), (32, 32)]:
        assert timm_unet(torch.rand(1, 1, height, width)).shape == (1, 2, height, width)


def test_timm_unet_unknown_encoder_and_norm() -> None:
    with pytest.raises(UnknownComponentError, match=r"'resnet18x'.*'resnet18'"):
        colorkit.create("generator", "timm-unet", encoder="resnet18x")
    with pytest.raises(ValueError, match=r"norm.*'foo'"):
        colorkit.create("generator", "timm-unet", encoder="resnet18", norm="foo")


# -- discriminators ----------------------------------------------------------------------
def test_patchgan_70x70_map_size_and_receptive_field() -> None:
    torch.manual_seed(0)
    patchgan = colorkit.create("discriminator", "patchgan", base_channels=8).eval()
    image = torch.rand(1, 3, 256, 256, requires_grad=True)
    logits = patchgan(image)
    assert logits.shape == (1, 1, 30, 30)
    # eval mode: no batch statistics, so one logit depends only on its own patch
    logits[0, 0, 15, 15].backward()
    rows = image.grad.abs().sum(dim=(0, 1, 3)).nonzero().flatten()
    cols = image.grad.abs().sum(dim=(0, 1, 2)).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == 70
    assert cols.max() - cols.min() + 1 == 70


def test_patchgan_default_matches_pix2pix() -> None:
    patchgan = colorkit.create("discriminator", "patchgan")
    # pix2pix's n_layers=3 PatchGAN on 3 input channels (L + ab)
    assert sum(p.numel() for p in patchgan.parameters()) == 2_765_633
    assert any(isinstance(m, nn.BatchNorm2d) for m in patchgan.modules())
    relus = [m for m in patchgan.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(relus) == 4 and all(m.negative_slope == 0.2 for m in relus)


@pytest.mark.parametrize("n_layers", [1, 2, 4])
def test_patchgan_depths(n_layers: int) -> None:
    patchgan = PatchGAN(in_channels=3, base_channels=4, n_layers=n_layers)
    size = 64
    logits = patchgan(torch.rand(2, 3, size, size))
    expected = size // 2**n_layers - 2
    assert logits.shape == (2, 1, expected, expected)


@pytest.mark.parametrize(("height", "width"), ODD_SIZES)
def test_discriminators_accept_odd_sizes(height: int, width: int) -> None:
    torch.manual_seed(0)
    patchgan = PatchGAN(in_channels=3, base_channels=8)
    global_d = GlobalDiscriminator(in_channels=3, base_channels=8)
    image = torch.rand(2, 3, height, width)
    logits = patchgan(image)
    assert logits.dim() == 4 and logits.shape[:2] == (2, 1) and min(logits.shape[2:]) >= 1
    assert torch.isfinite(logits).all()
    assert global_d(image).shape == (2, 1)


@pytest.mark.parametrize(("norm", "batch"), [("instance", 2), ("batch", 1)])
def test_global_discriminator_trains_on_small_inputs(norm: str, batch: int) -> None:
    global_d = GlobalDiscriminator(in_channels=3, base_channels=8, norm=norm).train()
    for height, width in [(5, 7), (32, 32)]:
        assert global_d(torch.rand(batch, 3, height, width)).shape == (batch, 1)


def test_global_discriminator_one_logit_per_image() -> None:
    torch.manual_seed(0)
    global_d = colorkit.create("discriminator", "global", base_channels=8, in_channels=4)
    logits = global_d(torch.rand(3, 4, 64, 48))
    assert logits.shape == (3, 1)
    assert_gradients_reach_every_parameter(global_d, logits)


def test_patchgan_gradients() -> None:
    torch.manual_seed(0)
    patchgan = PatchGAN(in_channels=3, base_channels=8, norm="instance")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in patchgan.modules())
    assert_gradients_reach_every_parameter(patchgan, patchgan(torch.rand(2, 3, 40, 40)))


@pytest.mark.parametrize("name", ["patchgan", "global"])
def test_discriminators_reject_bad_norm(name: str) -> None:
    with pytest.raises(ValueError, match=r"norm.*'foo'"):
        colorkit.create("discriminator", name, norm="foo")


# -- refiners ----------------------------------------------------------------------------
@pytest.mark.parametrize(("height", "width"), [(32, 32), *ODD_SIZES])
def test_refiners_keep_the_input_size(height: int, width: int) -> None:
    torch.manual_seed(0)
    mlp = colorkit.create("refiner", "mlp", patch=4, hidden=16)
    identity = colorkit.create("refiner", "identity")
    ab, cond = torch.rand(2, 2, height, width), torch.rand(2, 1, height, width)
    assert mlp(ab, cond).shape == ab.shape
    assert torch.equal(identity(ab, cond), ab)


def test_identity_refiner_has_no_parameters() -> None:
    assert list(colorkit.create("refiner", "identity").parameters()) == []


def test_mlp_improver_starts_as_identity_and_learns() -> None:
    torch.manual_seed(0)
    mlp = colorkit.create("refiner", "mlp", patch=4, hidden=16)
    ab, cond = torch.rand(2, 2, 12, 16) * 2 - 1, torch.rand(2, 1, 12, 16) * 2 - 1
    assert torch.equal(mlp(ab, cond), ab)

    optimizer = torch.optim.Adam(mlp.parameters(), lr=1e-3)
    loss = (mlp(ab, cond) - torch.zeros_like(ab)).abs().mean()
    loss.backward()
    for name, param in mlp.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    optimizer.step()
    with torch.no_grad():
        assert not torch.allclose(mlp(ab, cond), ab)
        assert (mlp(ab, cond) - torch.zeros_like(ab)).abs().mean() < loss


def test_mlp_improver_is_patch_local() -> None:
    torch.manual_seed(0)
    mlp = MLPImprover(channels=2, cond_channels=1, patch=4, hidden=16)
    nn.init.normal_(mlp.mlp[-1].weight, std=0.1)  # a trained, non-zero correction
    ab, cond = torch.rand(1, 2, 16, 20), torch.rand(1, 1, 16, 20)
    changed_ab, changed_cond = ab.clone(), cond.clone()
    changed_ab[:, :, 5, 9] += 0.5  # in the patch of rows 4..7, columns 8..11
    changed_cond[:, :, 6, 10] -= 0.5
    with torch.no_grad():
        before, after_ab = mlp(ab, cond), mlp(changed_ab, cond)
        after_cond = mlp(ab, changed_cond)
    inside = torch.zeros(16, 20, dtype=torch.bool)
    inside[4:8, 8:12] = True
    for after in (after_ab, after_cond):
        difference = (after - before).abs().sum(dim=(0, 1))
        assert difference[~inside].max() == 0
        assert difference[inside].min() > 0  # the whole patch is corrected together


def _stamping_improver(**options: object) -> MLPImprover:
    """An Improver whose correction is one fixed 8×8 stamp: the grid the paper's learns."""
    mlp = MLPImprover(channels=2, cond_channels=1, patch=8, hidden=4, **options)
    with torch.no_grad():
        mlp.mlp[-1].bias.copy_(torch.randn(2 * 8 * 8, generator=torch.Generator().manual_seed(1)))
    return mlp


def test_mlp_improver_cycle_spinning_averages_the_shifted_grids() -> None:
    torch.manual_seed(0)
    mlp = MLPImprover(channels=2, cond_channels=1, patch=4, hidden=16, spin=2).eval()
    nn.init.normal_(mlp.mlp[-1].weight, std=0.1)
    ab, cond = torch.rand(1, 2, 10, 13), torch.rand(1, 1, 10, 13)
    with torch.no_grad():
        spun = mlp(ab, cond)
        mlp.spin = 1
        plain = mlp(ab, cond)
        # the grid moved by half a patch down and right: pad top-left by 2, crop back
        padded = nn.functional.pad(torch.cat([ab, cond], 1), (2, 2, 2, 0), mode="replicate")
        shifted = mlp(padded[:, :2], padded[:, 2:])[..., 2:12, 2:15] - padded[:, :2, 2:12, 2:15]
    assert not torch.allclose(spun, plain)
    # four grids, at (0, 0), (0, 2), (2, 0), (2, 2): the mean of their corrections
    assert mlp.offsets() == [(0, 0)] and grid_offsets(4, 2) == [(0, 0), (0, 2), (2, 0), (2, 2)]
    corrections = [
        on_shifted_grid(mlp.correction, torch.cat([ab, cond], 1), 4, offset)
        for offset in grid_offsets(4, 2)
    ]
    assert torch.allclose(spun, ab + sum(corrections) / 4, atol=1e-6)
    assert torch.allclose(corrections[3], shifted, atol=1e-6)


def test_full_cycle_spinning_turns_a_stamped_grid_into_a_constant() -> None:
    ab, cond = torch.zeros(1, 2, 48, 48), torch.zeros(1, 1, 48, 48)
    with torch.no_grad():
        stamped = _stamping_improver(spin=1).eval()(ab, cond)
        spun = _stamping_improver(spin=8).eval()(ab, cond)
    # the paper's grid: the same stamp on every patch
    assert torch.equal(stamped[..., :8, :8], stamped[..., 8:16, 16:24])
    assert stamped[0, 0].std() > 0.5
    # averaged over all 64 grid positions, every pixel gets the stamp's mean
    assert spun[0, 0].std() < 1e-5
    assert torch.allclose(spun[0, 0, 0, 0], stamped[0, 0, :8, :8].mean(), atol=1e-5)


def test_random_grid_shift_moves_the_patches_in_training_only() -> None:
    torch.manual_seed(0)
    mlp = _stamping_improver(shift="random")
    ab, cond = torch.zeros(1, 2, 32, 32), torch.zeros(1, 1, 32, 32)
    with torch.no_grad():
        outputs = [mlp(ab, cond) for _ in range(8)]
        assert any(not torch.equal(outputs[0], other) for other in outputs[1:])
        mlp.eval()
        assert torch.equal(mlp(ab, cond), _stamping_improver().eval()(ab, cond))
    # every output is the stamp moved by some offset: a shifted copy of the fixed one
    fixed = _stamping_improver()(torch.zeros(1, 2, 40, 40), torch.zeros(1, 1, 40, 40))
    for output in outputs:
        assert any(
            torch.equal(output, fixed[..., dy : dy + 32, dx : dx + 32])
            for dy in range(8)
            for dx in range(8)
        )


def test_mlp_improver_rejects_bad_grid_options() -> None:
    with pytest.raises(ValueError, match=r"shift must be one of \('fixed', 'random'\)"):
        colorkit.create("refiner", "mlp", shift="sometimes")
    with pytest.raises(ValueError, match="spin must be at least 1"):
        colorkit.create("refiner", "mlp", spin=0)
    # more offsets than the patch has pixels: capped at one per pixel
    assert colorkit.create("refiner", "mlp", patch=2, spin=4).eval().offsets() == grid_offsets(2, 2)


def test_mlp_improver_options_and_gradients() -> None:
    mlp = colorkit.create("refiner", "mlp", patch=2, hidden=8, channels=3)
    assert mlp.mlp[0].in_features == (3 + 1) * 2 * 2 and mlp.mlp[0].out_features == 8
    assert mlp.mlp[-1].out_features == 3 * 2 * 2
    nn.init.normal_(mlp.mlp[-1].weight, std=0.1)
    x = torch.rand(2, 3, 7, 9)
    assert_gradients_reach_every_parameter(mlp, mlp(x, torch.rand(2, 1, 7, 9)))
    with pytest.raises(ValueError, match=r"patch"):
        colorkit.create("refiner", "mlp", patch=0)


# -- losses ------------------------------------------------------------------------------
LOGITS = torch.tensor([[2.0, -1.0], [0.0, 0.5]])


def _softplus(values: list[float]) -> float:
    return sum(math.log1p(math.exp(v)) for v in values) / len(values)


@pytest.mark.parametrize(
    ("gan_mode", "real", "for_discriminator", "expected"),
    [
        ("vanilla", True, True, _softplus([-2.0, 1.0, 0.0, -0.5])),
        ("vanilla", False, True, _softplus([2.0, -1.0, 0.0, 0.5])),
        ("vanilla", True, False, _softplus([-2.0, 1.0, 0.0, -0.5])),
        ("lsgan", True, True, (1.0 + 4.0 + 1.0 + 0.25) / 4),
        ("lsgan", False, True, (4.0 + 1.0 + 0.0 + 0.25) / 4),
        ("lsgan", True, False, (1.0 + 4.0 + 1.0 + 0.25) / 4),
        ("hinge", True, True, (0.0 + 2.0 + 1.0 + 0.5) / 4),
        ("hinge", False, True, (3.0 + 0.0 + 1.0 + 1.5) / 4),
        ("hinge", True, False, -(2.0 - 1.0 + 0.0 + 0.5) / 4),
    ],
)
def test_cgan_loss_values(
    gan_mode: str, real: bool, for_discriminator: bool, expected: float
) -> None:
    loss = colorkit.create("loss", "cgan", gan_mode=gan_mode)
    assert loss.adversarial is True
    value = loss(LOGITS, real, for_discriminator=for_discriminator)
    assert value.dim() == 0 and value.dtype == torch.float32
    assert value.item() == pytest.approx(expected, abs=1e-6)


def test_cgan_loss_of_bf16_logits_is_float32() -> None:
    loss = CGANLoss()
    value = loss(LOGITS.to(torch.bfloat16), True)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(_softplus([-2.0, 1.0, 0.0, -0.5]), abs=1e-2)


def test_cgan_loss_rejects_bad_mode() -> None:
    with pytest.raises(ValueError, match=r"gan_mode.*'bar'"):
        colorkit.create("loss", "cgan", gan_mode="bar")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("l1", (1.0 + 0.0 + 2.0 + 3.0) / 4), ("l2", (1.0 + 0.0 + 4.0 + 9.0) / 4)],
)
def test_reconstruction_loss_values(name: str, expected: float) -> None:
    loss = colorkit.create("loss", name)
    assert loss.adversarial is False
    prediction = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    target = torch.tensor([[0.0, 2.0], [5.0, 1.0]])
    value = loss(prediction, target)
    assert value.item() == pytest.approx(expected)
    value.backward()
    assert torch.isfinite(prediction.grad).all() and prediction.grad.abs().sum() > 0
    assert loss(prediction.to(torch.bfloat16), target).dtype == torch.float32


# -- gradients ---------------------------------------------------------------------------
def test_unet_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    unet = small_unet()
    assert_gradients_reach_every_parameter(unet, unet(torch.rand(2, 1, 21, 18)))
