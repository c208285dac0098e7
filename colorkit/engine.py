"""The engine: one model object that composes generator, refiner, discriminator and losses.

Data flow of one training iteration (the paper's order)::

    RGB batch ─► Lab ─► L (condition) ─► generator ─► prediction ─► refiner ─► refined
                   └──► ab (target)
    1. discriminator: real (L, ab) vs generated (L, prediction)
    2. generator:     adversarial loss through the discriminator + weighted L1/L2
    3. refiner:       its own losses on refined vs target (the generator's output is fixed)
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from colorkit import fast as fast_forms
from colorkit.color import color_space, gray_to_lightness, lab_to_rgb_in_gamut
from colorkit.contracts import contract_problem
from colorkit.fast import precision_dtype, resolve_precision
from colorkit.optim import LayoutAdam
from colorkit.recipe import Recipe
from colorkit.registry import ColorkitError, ContractError, Registry, default_registry

__all__ = ["Colorizer", "InferenceOnlyError"]

#: Device types where channels-last is the faster layout for convolutions (oneDNN, cuDNN).
_CHANNELS_LAST_DEVICES = frozenset({"cpu", "cuda"})


class InferenceOnlyError(ColorkitError, RuntimeError):
    """Training was asked of a copy made for inference."""


def _set_requires_grad(module: nn.Module | None, flag: bool) -> None:
    if module is not None:
        for param in module.parameters():
            param.requires_grad_(flag)


def _settings(module: nn.Module) -> tuple[tuple[str, str, Any], ...]:
    """A module's plain settings (e.g. the Improver's ``spin``), which its inference form
    copies: changing one must rebuild the inference copy as a weight change does."""
    return tuple(
        (name, key, value)
        for name, child in module.named_modules()
        for key, value in vars(child).items()
        if not key.startswith("_")
        and key != "training"
        and isinstance(value, (bool, int, float, str))
    )


class Colorizer(nn.Module):
    """A composed colorization model: what :func:`colorkit.build` returns.

    A model is fast by default (``fast=True``): arithmetic in the precision ``"auto"``
    picks for its device (see :meth:`set_precision`), weights channels-last on CPU and
    CUDA, and, in eval mode, :meth:`colorize` and :meth:`predict_chroma` run an
    inference copy of the networks (:meth:`inference_copy`), rebuilt whenever the
    weights change. ``fast=False`` keeps fp32, the default layout and the networks as
    they are. Either way the results agree to within the rounding of bf16.

    Args:
        recipe: the composition to build.
        registry: where components are looked up; the default registry if ``None``.
        name: the recipe's registered name, kept for checkpoints and listings.
        overrides: the overrides that produced ``recipe``, kept for checkpoints.
        fast: the fast defaults above; ``False`` for the plain model.
        parts: ready-made ``generator`` and ``refiner`` modules for an inference-only
            model (what :meth:`inference_copy` passes): nothing is looked up or created,
            and the model has no discriminator, losses or optimisers.

    Attributes:
        generator: the generator network.
        refiner: the refiner network (``identity`` has no parameters).
        discriminator: the discriminator, or ``None``.
        losses: the loss modules by name.
        optimizers: one Adam optimiser per trained part (``generator``,
            ``discriminator``, ``refiner``).
        space: the :class:`~colorkit.color.ColorSpace` the networks predict in.
        fast: whether colorizing in eval mode runs the inference copy.
        inference_only: whether this is an inference copy (``train_step`` raises).

    Raises:
        ValueError: for an invalid recipe, or a discriminator without an adversarial loss.
        UnknownComponentError: for a component that is not registered.
        ContractError: for a component that does not keep its kind's contract
            (:mod:`colorkit.contracts`), naming it and what is wrong.
    """

    def __init__(
        self,
        recipe: Recipe,
        registry: Registry | None = None,
        name: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        fast: bool = True,
        parts: Mapping[str, nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.recipe = recipe
        self.recipe_name = name
        self.overrides = dict(overrides or {})
        self.space = color_space(recipe.color_space)
        self.fast = fast
        self.inference_only = parts is not None
        self._precision = "auto" if fast else "fp32"
        self._replicas: dict[str, nn.Module] = {}
        # a cache, not a submodule: kept out of state_dict, .to() and parameters()
        self.__dict__["_inference"] = None
        if parts is not None:
            self.generator = parts["generator"]
            self.refiner = parts["refiner"]
            self.discriminator = None
            self.losses = nn.ModuleDict()
            self._adversarial: str | None = None
            self.optimizers: dict[str, torch.optim.Optimizer] = {}
            return
        registry = registry or default_registry()
        recipe.validate(registry)
        channels = self.space.channels

        def create(kind: str, name: str, **options: Any) -> nn.Module:
            component = registry.create(kind, name, **options)
            problem = contract_problem(kind, name, component)
            if problem is not None:
                raise ContractError(problem)
            return component

        self.generator = create(
            "generator",
            recipe.generator,
            in_channels=1,
            out_channels=channels,
            **recipe.generator_options,
        )
        self.refiner = create(
            "refiner", recipe.refiner, channels=channels, cond_channels=1, **recipe.refiner_options
        )
        self.discriminator = (
            create(
                "discriminator",
                recipe.discriminator,
                in_channels=1 + channels,
                **recipe.discriminator_options,
            )
            if recipe.discriminator is not None
            else None
        )
        self.losses = nn.ModuleDict(
            {
                name: create("loss", name, **recipe.loss_options.get(name, {}))
                for name in recipe.loss_names()
            }
        )
        adversarial = [name for name, loss in self.losses.items() if loss.adversarial]
        if self.discriminator is not None and not adversarial:
            raise ValueError(
                f"recipe has discriminator {recipe.discriminator!r} but no adversarial loss; "
                "add one (e.g. generator_losses={'cgan': 1, 'l1': 100}) or set discriminator=None"
            )
        self._adversarial = adversarial[0] if adversarial else None
        if fast and self.device.type in _CHANNELS_LAST_DEVICES:
            self.to(memory_format=torch.channels_last)
        # fused Adam updates each parameter in one pass over memory where the default
        # loop makes several; on CPU that is a tenth or more of a pix2pix step
        self.optimizers = {
            part: LayoutAdam(module.parameters(), lr=recipe.lr, betas=recipe.betas, fused=True)
            for part, module in self.trained_parts().items()
        }

    # -- parts and settings --------------------------------------------------------------
    def trained_parts(self) -> dict[str, nn.Module]:
        """The parts that have parameters to train, by name, in training order.

        Returns:
            Part name → module, for ``discriminator``, ``generator`` and ``refiner``.
        """
        parts = {
            "discriminator": self.discriminator,
            "generator": self.generator,
            "refiner": self.refiner,
        }
        return {
            name: module
            for name, module in parts.items()
            if module is not None and any(True for _ in module.parameters())
        }

    @property
    def device(self) -> torch.device:
        """The device of the model's parameters."""
        tensors = itertools.chain(self.generator.parameters(), self.generator.buffers())
        return next(tensors, torch.empty(0)).device

    @property
    def color_channels(self) -> int:
        """Channels the generator predicts: 2 (ab) in ``lab`` space, 3 in ``rgb``."""
        return self.space.channels

    @property
    def precision(self) -> str:
        """``"bf16"`` (autocast) or ``"fp32"``: the setting resolved for the current device."""
        return resolve_precision(self._precision, self.device)

    def set_precision(self, precision: str = "auto") -> Colorizer:
        """Choose the arithmetic of training and inference.

        Args:
            precision: ``"bf16"`` (autocast), ``"fp32"``, or ``"auto"``: bf16 where the
                device runs it fast (see :func:`colorkit.fast.bf16_is_fast`), else fp32;
                ``"auto"`` is resolved again when the model moves to another device.

        Returns:
            The model itself.

        Raises:
            ValueError: for another value.
        """
        resolve_precision(precision, self.device)  # validates
        self._precision = precision
        return self

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        return torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
        )

    def distribute(self, **ddp_options: Any) -> Colorizer:
        """Train through DistributedDataParallel replicas of the trained parts.

        Call after ``torch.distributed.init_process_group`` and after moving the
        model to its device. BatchNorm layers become SyncBatchNorm on CUDA.
        Weights, optimisers and checkpoints keep using the plain modules.

        Args:
            **ddp_options: passed to ``DistributedDataParallel`` (e.g. ``device_ids``).

        Returns:
            The model itself.
        """
        from torch.nn.parallel import DistributedDataParallel

        if self.device.type == "cuda":
            # convert_sync_batchnorm keeps the Parameter objects, so the optimisers stay valid
            for name in list(self.trained_parts()):
                setattr(self, name, nn.SyncBatchNorm.convert_sync_batchnorm(getattr(self, name)))
        self._replicas = {
            name: DistributedDataParallel(module, **ddp_options)
            for name, module in self.trained_parts().items()
        }
        return self

    def _replica(self, name: str) -> nn.Module:
        return self._replicas[name] if name in self._replicas else getattr(self, name)

    # -- colour encoding (see colorkit.color.ColorSpace) --------------------------------
    def encode(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Split an RGB batch into the network's condition and target.

        Args:
            rgb: ``B×3×H×W`` in ``[0, 1]``.

        Returns:
            ``(condition, target)``, both scaled to about ``[-1, 1]``: ``L`` and ``ab``
            in ``lab`` space, gray and RGB in ``rgb`` space.
        """
        return self.space.encode(rgb)

    def condition(self, gray: torch.Tensor) -> torch.Tensor:
        """The network's condition for a gray batch.

        Args:
            gray: ``B×1×H×W`` in ``[0, 1]``.

        Returns:
            ``L`` scaled to ``[-1, 1]`` in ``lab`` space, ``gray * 2 - 1`` in ``rgb``.
        """
        return self.space.condition(gray)

    def decode(self, condition: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        """RGB from a condition and the network's prediction.

        Args:
            condition: the condition, as :meth:`condition` makes it.
            prediction: the generator's (or refiner's) output.

        Returns:
            ``B×3×H×W`` RGB in ``[0, 1]``.
        """
        return self.space.decode(condition, prediction)

    def chroma(self, condition: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        """CIELAB chroma of a prediction, in either colour space.

        Args:
            condition: the condition, as :meth:`condition` makes it.
            prediction: the generator's (or refiner's) output.

        Returns:
            ``B×2×H×W`` unscaled ``ab``.
        """
        return self.space.chroma(condition, prediction)

    # -- inference -----------------------------------------------------------------------
    def forward(self, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Generator then refiner on a condition batch.

        Returns:
            ``(generated, refined)`` predictions in the network's scale.
        """
        generated = self.generator(condition)
        return generated, self.refiner(generated, condition)

    def inference_copy(self, precision: str | None = None) -> Colorizer:
        """A copy of the model for fast colorization.

        Each network is asked for its inference form (:func:`colorkit.fast.inference_form`:
        its own ``inference_form(dtype)`` where it has one, such as the U-Net's and the
        MLP Improver's, else BatchNorm folding and prepacked convolutions for the
        generator and a plain copy for the refiner). ``colorize`` and ``predict_chroma``
        work as on the original, to within the rounding of the chosen precision; the copy
        has no discriminator, losses or optimisers, and ``train_step`` raises
        :class:`InferenceOnlyError`. Copy again after further training (a fast model in
        eval mode does so itself).

        Args:
            precision: ``"auto"``, ``"bf16"`` or ``"fp32"``; the model's own setting if
                ``None``.

        Returns:
            The inference copy, in eval mode.

        Raises:
            ValueError: for an unknown precision.
        """
        resolved = resolve_precision(precision or self._precision, self.device)
        dtype = precision_dtype(resolved)
        parts = {
            "generator": fast_forms.inference_form(self.generator, dtype),
            "refiner": fast_forms.inference_form(self.refiner, dtype, generic=False),
        }
        copy = Colorizer(
            self.recipe, name=self.recipe_name, overrides=self.overrides, fast=False, parts=parts
        )
        return copy.set_precision(resolved).eval()

    def _fast_copy(self) -> Colorizer | None:
        """The inference copy that eval-mode colorizing runs, rebuilt when weights change."""
        if not self.fast or self.training or self.inference_only:
            return None
        # every in-place change (an optimiser step, load_state_dict, a move) bumps a
        # tensor's version or replaces its storage
        tensors = itertools.chain(
            self.generator.parameters(),
            self.generator.buffers(),
            self.refiner.parameters(),
            self.refiner.buffers(),
        )
        key = (
            self.precision,
            tuple((t.data_ptr(), t._version) for t in tensors),
            _settings(self.generator),
            _settings(self.refiner),
        )
        cached = self.__dict__["_inference"]
        if cached is None or cached[0] != key:
            cached = (key, self.inference_copy())
            self.__dict__["_inference"] = cached
        return cached[1]

    @torch.no_grad()
    def predict_chroma(
        self, gray: torch.Tensor, working_size: int | None = None, refine: bool = True
    ) -> torch.Tensor:
        """The CIELAB chroma the model predicts for a gray batch.

        Args:
            gray: ``B×1×H×W`` in ``[0, 1]``, any height and width.
            working_size: if given, the networks run on the image resized (area
                averaging) so its longer side is this many pixels.
            refine: apply the refiner (``False`` gives the generator's output alone).

        Returns:
            ``B×2×h×w`` unscaled ``ab`` at the size the networks ran at.

        Raises:
            ValueError: if ``gray`` is not a floating ``B×1×H×W`` tensor.
        """
        if gray.dim() != 4 or gray.shape[1] != 1 or not gray.is_floating_point():
            raise ValueError(
                f"gray must be a float tensor shaped B×1×H×W, got {gray.dtype} {tuple(gray.shape)}"
            )
        fast = self._fast_copy()
        if fast is not None:
            return fast.predict_chroma(gray, working_size, refine)
        was_training = self.training
        self.eval()
        try:
            gray = gray.to(self.device, torch.float32)
            if working_size is not None:
                if working_size < 1:
                    raise ValueError(f"working_size must be a positive size, got {working_size}")
                scale = working_size / max(gray.shape[-2:])
                size = [max(1, round(side * scale)) for side in gray.shape[-2:]]
                gray = F.interpolate(gray, size=size, mode="area")
            condition = self.condition(gray)
            with self._autocast():
                prediction = self.generator(condition)
                if refine:
                    prediction = self.refiner(prediction, condition)
            return self.chroma(condition, prediction.float())
        finally:
            self.train(was_training)

    @torch.no_grad()
    def colorize(
        self, gray: torch.Tensor, working_size: int | None = None, refine: bool = True
    ) -> torch.Tensor:
        """Colorize a gray batch: generator, then refiner, no gradients.

        The output keeps the input's own lightness: the predicted chroma (upsampled
        bilinearly when ``working_size`` is set) is combined with ``gray``'s CIELAB ``L``,
        and colours outside sRGB are desaturated until they fit
        (:func:`colorkit.color.lab_to_rgb_in_gamut`), as ``colorkit colorize`` does.
        A fast model in eval mode runs its inference copy (see the class description).

        Args:
            gray: ``B×1×H×W`` in ``[0, 1]``, any height and width.
            working_size: run the networks at this longer side; ``None`` runs them at
                the input's size.
            refine: apply the refiner.

        Returns:
            ``B×3×H×W`` RGB in ``[0, 1]``.

        Raises:
            ValueError: if ``gray`` is not a floating ``B×1×H×W`` tensor.
        """
        ab = self.predict_chroma(gray, working_size, refine)
        gray = gray.to(ab.device, torch.float32)
        if ab.shape[-2:] != gray.shape[-2:]:
            ab = F.interpolate(ab, size=gray.shape[-2:], mode="bilinear", align_corners=False)
        return lab_to_rgb_in_gamut(torch.cat([gray_to_lightness(gray), ab], dim=1))

    # -- training ------------------------------------------------------------------------
    def _adversarial_logits(self, condition: torch.Tensor, color: torch.Tensor) -> torch.Tensor:
        # the plain module: the generator and refiner steps do not update the discriminator
        return self.discriminator(torch.cat([condition, color], dim=1))

    def _objective(
        self,
        weights: Mapping[str, float],
        prediction: torch.Tensor,
        condition: torch.Tensor,
        target: torch.Tensor,
        prefix: str,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms: dict[str, torch.Tensor] = {}
        total = prediction.new_zeros((), dtype=torch.float32)
        for name, weight in weights.items():
            loss = self.losses[name]
            if loss.adversarial:
                with self._autocast():
                    logits = self._adversarial_logits(condition, prediction)
                value = loss(logits, True, for_discriminator=False)
            else:
                value = loss(prediction, target)
            terms[f"{prefix}_{name}"] = value.detach()
            total = total + weight * value
        terms[prefix] = total.detach()
        return total, terms

    @staticmethod
    def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def train_step(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        """One training iteration: discriminator, generator, then refiner.

        Args:
            rgb: ``B×3×H×W`` float batch in ``[0, 1]``; the gray input is made from it.

        Returns:
            The losses as detached scalar tensors (no host synchronisation is forced):
            ``d``, ``d_real``, ``d_fake`` for the discriminator; ``g`` and ``g_<loss>``
            for the generator; ``r`` and ``r_<loss>`` for a trainable refiner.

        Raises:
            ValueError: if ``rgb`` is not a float ``B×3×H×W`` batch.
            InferenceOnlyError: for an inference copy (:meth:`inference_copy`).
        """
        if self.inference_only:
            raise InferenceOnlyError(
                "this model is an inference copy made by Colorizer.inference_copy; "
                "train the original model instead"
            )
        if rgb.dim() != 4 or rgb.shape[1] != 3 or not rgb.is_floating_point():
            raise ValueError(
                f"rgb must be a float tensor shaped B×3×H×W, got {rgb.dtype} {tuple(rgb.shape)}"
            )
        self.train()
        with torch.no_grad():
            condition, target = self.encode(rgb.to(self.device, torch.float32))
        parts = self.trained_parts()
        metrics: dict[str, torch.Tensor] = {}
        with self._autocast():
            generated = self._replica("generator")(condition)

        if "discriminator" in parts:
            discriminator = self._replica("discriminator")
            adversarial = self.losses[self._adversarial]
            fakes = [generated.detach()]
            if "refiner" in parts and self.recipe.discriminator_fakes == "generator+refiner":
                with torch.no_grad(), self._autocast():
                    fakes.append(self._replica("refiner")(fakes[0], condition))
            with self._autocast():
                real = discriminator(torch.cat([condition, target], dim=1))
                fake = [discriminator(torch.cat([condition, color], dim=1)) for color in fakes]
            d_real = adversarial(real, True)
            d_fake = sum(adversarial(logits, False) for logits in fake) / len(fake)
            loss_d = self.recipe.discriminator_loss_weight * (d_real + d_fake)
            self._step(self.optimizers["discriminator"], loss_d)
            metrics.update(d=loss_d.detach(), d_real=d_real.detach(), d_fake=d_fake.detach())

        _set_requires_grad(self.discriminator, False)
        try:
            loss_g, terms = self._objective(
                self.recipe.generator_losses, generated, condition, target, "g"
            )
            self._step(self.optimizers["generator"], loss_g)
            metrics.update(terms)
            if "refiner" in parts:
                with self._autocast():
                    refined = self._replica("refiner")(generated.detach(), condition)
                loss_r, terms = self._objective(
                    self.recipe.refiner_loss_weights(), refined, condition, target, "r"
                )
                self._step(self.optimizers["refiner"], loss_r)
                metrics.update(terms)
        finally:
            _set_requires_grad(self.discriminator, True)
        return metrics

    # -- state ---------------------------------------------------------------------------
    def optimizer_state(self) -> dict[str, dict[str, Any]]:
        """The optimisers' state dicts by part name.

        Returns:
            Part name → ``optimizer.state_dict()``.
        """
        return {name: opt.state_dict() for name, opt in self.optimizers.items()}

    def load_optimizer_state(self, state: Mapping[str, Mapping[str, Any]]) -> None:
        """Restore optimiser state saved by :meth:`optimizer_state`.

        Args:
            state: part name → optimiser state dict.

        Raises:
            KeyError: if a trained part has no saved state.
        """
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state[name])

    def parameter_count(self) -> dict[str, int]:
        """Parameters per part, for listings.

        Returns:
            Part name → number of parameters.
        """
        return {
            name: sum(p.numel() for p in module.parameters())
            for name, module in self.named_children()
            if name != "losses"
        }
