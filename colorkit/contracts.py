"""What each kind of component must accept and return: the contracts the engine relies on.

The hook a plugin implements is specified in :mod:`colorkit.hookspecs`; what the
components it returns must do is specified here, as ``typing.Protocol`` classes, one
per kind. The engine creates every network with the arguments listed in
:data:`ENGINE_ARGUMENTS` and checks each one with :func:`contract_problem`, so a
component that breaks its contract fails when the model is built (with
:class:`colorkit.registry.ContractError` naming it) rather than deep inside a training
step.

Every network is an ``nn.Module`` (its parameters are trained, saved and moved with the
model). A generator or refiner may also offer a faster form of itself for inference
(:class:`InferenceForm`), which :func:`colorkit.fast.inference_form` asks for.
"""

from __future__ import annotations

import inspect
from typing import Protocol, runtime_checkable

import torch
from torch import nn

__all__ = [
    "ENGINE_ARGUMENTS",
    "AdversarialLoss",
    "Discriminator",
    "Generator",
    "InferenceForm",
    "Loss",
    "Refiner",
    "Stabilizer",
    "contract_problem",
]

#: Keyword arguments the engine passes each kind's factory itself; they are not user
#: options. Generators get ``in_channels`` (1) and ``out_channels`` (2 for ``ab``, 3 for
#: RGB); discriminators ``in_channels`` (condition plus colour channels); refiners
#: ``channels`` (2 or 3) and ``cond_channels`` (1).
ENGINE_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "generator": ("in_channels", "out_channels"),
    "discriminator": ("in_channels",),
    "refiner": ("channels", "cond_channels"),
    "loss": (),
    "stabilizer": (),
}


@runtime_checkable
class Generator(Protocol):
    """A generator: the gray condition in, the colour prediction out.

    Created as ``factory(in_channels=..., out_channels=..., **options)``.
    """

    def __call__(self, condition: torch.Tensor) -> torch.Tensor:
        """Predict colour.

        Args:
            condition: ``B×in_channels×H×W`` in ``[-1, 1]``, any ``H`` and ``W``.

        Returns:
            ``B×out_channels×H×W``, in ``[-1, 1]`` like the scaled target.
        """
        ...


@runtime_checkable
class Refiner(Protocol):
    """A refiner: post-processes the generator's prediction, given the condition.

    Created as ``factory(channels=..., cond_channels=..., **options)``.
    """

    def __call__(self, prediction: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Refine a prediction.

        Args:
            prediction: ``B×channels×H×W``, the generator's output.
            condition: ``B×cond_channels×H×W``.

        Returns:
            A tensor shaped like ``prediction``.
        """
        ...


@runtime_checkable
class Discriminator(Protocol):
    """A discriminator: judges (condition, colour) pairs as real or generated.

    Created as ``factory(in_channels=..., **options)``.
    """

    def __call__(self, pair: torch.Tensor) -> torch.Tensor:
        """Score pairs.

        Args:
            pair: ``B×in_channels×H×W``: the condition and the colour, concatenated.

        Returns:
            Logits, any shape.
        """
        ...


@runtime_checkable
class Loss(Protocol):
    """A reconstruction loss (``adversarial = False``), created as ``factory(**options)``."""

    adversarial: bool

    def __call__(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of a prediction.

        Args:
            prediction: the network's output.
            target: what it should be, the same shape.

        Returns:
            A scalar tensor.
        """
        ...


@runtime_checkable
class AdversarialLoss(Protocol):
    """An adversarial loss (``adversarial = True``) on discriminator logits."""

    adversarial: bool

    def __call__(
        self, logits: torch.Tensor, real: bool, for_discriminator: bool = True
    ) -> torch.Tensor:
        """The loss of logits that should read ``real`` (or fake).

        Args:
            logits: the discriminator's output.
            real: whether the target is "real".
            for_discriminator: whether the discriminator (or the generator) is trained.

        Returns:
            A scalar tensor.
        """
        ...


@runtime_checkable
class InferenceForm(Protocol):
    """Optional, for generators and refiners: a faster form of the network for inference."""

    def inference_form(self, dtype: torch.dtype) -> nn.Module | None:
        """A copy that computes what the network computes in eval mode, faster.

        Args:
            dtype: the weights' dtype (``torch.bfloat16`` or ``torch.float32``); the
                copy accepts and returns the input's dtype.

        Returns:
            The copy, or ``None`` where the network's configuration has no special
            form (the generic one is used then).
        """
        ...


@runtime_checkable
class Stabilizer(Protocol):
    """A stabilizer: makes the chroma of consecutive video frames stable in time.

    Created as ``factory(**options)``, once per video, by
    :func:`colorkit.video.colorize_video`, which calls it on batches of consecutive
    frames in display order. It is not a network and need not be an ``nn.Module``.
    """

    def reset(self) -> None:
        """Forget every frame seen: the next call starts a new video."""
        ...

    def __call__(self, gray: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """Stabilize the next frames' chroma.

        Args:
            gray: ``B×1×h×w`` gray of the next ``B`` frames in ``[0, 1]``, at the
                resolution the networks ran at.
            ab: ``B×2×h×w`` CIELAB chroma predicted for them, unscaled.

        Returns:
            ``B×2×h×w`` chroma to show, the same size.
        """
        ...


#: How the engine calls each kind.
_CALLS = {
    "generator": "generator(condition)",
    "discriminator": "discriminator(pair)",
    "refiner": "refiner(prediction, condition)",
}
_LOSS_CALLS = {False: "loss(prediction, target)", True: "loss(logits, real, for_discriminator)"}


def _takes(function: object, count: int) -> bool:
    try:
        inspect.signature(function).bind(*([None] * count))  # type: ignore[arg-type]
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): give it the benefit of the doubt
        return True
    return True


def contract_problem(kind: str, name: str, component: object) -> str | None:
    """What keeps a created component from its kind's contract, if anything.

    Checks what can be checked without running it: that a network is an ``nn.Module``,
    that its ``forward`` takes the arguments the engine passes, that a loss says whether
    it is adversarial, and that a stabilizer can be reset and called on gray and chroma.

    Args:
        kind: ``"generator"``, ``"discriminator"``, ``"refiner"``, ``"loss"`` or
            ``"stabilizer"``.
        name: its registered name, for the message.
        component: what the factory returned.

    Returns:
        ``None`` for a component that keeps the contract, else a message naming it and
        what is wrong.
    """
    where = f"{kind} {name!r}"
    if kind == "stabilizer":
        if not callable(getattr(component, "reset", None)):
            return f"{where} needs a reset() method that forgets the frames seen"
        if not callable(component) or not _takes(component, 2):
            return f"{where} cannot be called as stabilizer(gray, ab)"
        return None
    if not isinstance(component, nn.Module):
        return f"{where} is a {type(component).__name__}; its factory must return an nn.Module"
    if kind == "loss":
        adversarial = getattr(component, "adversarial", None)
        if not isinstance(adversarial, bool):
            return (
                f"{where} needs a boolean attribute 'adversarial' (True for a loss on "
                "discriminator logits, False for a reconstruction loss)"
            )
        call = _LOSS_CALLS[adversarial]
    else:
        call = _CALLS[kind]
    if not _takes(component.forward, call.count(",") + 1):
        return f"{where} cannot be called as {call}"
    return None
