"""Quality ablations: variants trained and scored under one protocol.

    pytest benchmarks/test_ablations.py --benchmark [--ablation recipes|improver]
        [--budget smoke|full] [--data DIR] [--eval-data DIR] [--size N] [--steps N]
        [--bench-batch N] [--bench-seed N] [--results DIR]

``--ablation recipes`` (the default) compares every built-in recipe; ``--ablation
improver`` compares the MLP Improver's forms (the paper's, cycle spinning at inference,
random grid offsets in training, the discriminator shown the Improver's output) with
the generator alone. Variants that differ only in how the trained model is run share
one training run.

Each variant is trained by :func:`colorkit.trainer.train` with the same data, seed,
step budget, batch and crop size, and scored by :func:`colorkit.metrics.evaluate` on
the same test photos: ``load_photos``' seeded split of ``--data``, or all of
``--eval-data`` when given (all of ``--data`` is then trained on). The ``gray`` row
scores the gray input itself, the do-nothing baseline. Written to ``--results``:
``results.json``, ``results.md``, ``chart.png`` and one sample grid per variant
(``<variant>.png``: gray | truth | generator | refined); training runs go to
``runs/<variant>`` there.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from report import (
    bar_chart,
    device_description,
    format_value,
    markdown_table,
    text_table,
    write_json,
    write_text,
)

import colorkit
from colorkit.data import load_photos
from colorkit.metrics import METRICS, evaluate
from colorkit.trainer import TrainConfig, train


@dataclass(frozen=True)
class Variant:
    """One row of an ablation: a recipe, its overrides, and refiner settings for scoring.

    Attributes:
        recipe: a registered recipe name.
        overrides: build overrides on top of the recipe (and of the budget's).
        refiner_settings: attributes set on the trained refiner before scoring (e.g. the
            Improver's ``spin``): inference-time choices that need no training of their own.
    """

    recipe: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    refiner_settings: Mapping[str, Any] = field(default_factory=dict)

    def training_key(self) -> str:
        """Variants with the same key are trained once."""
        return json.dumps([self.recipe, dict(self.overrides)], sort_keys=True)


_PAPER = "pix2pix+mlp-paper"
#: The ablations, in table order.
ABLATIONS: dict[str, dict[str, Variant]] = {
    "recipes": {
        name: Variant(name)
        for name in (
            "unet-l1",
            "unet-l2",
            "pix2pix",
            _PAPER,
            "pix2pix+mlp",
            "pix2pix-global",
            "pix2pix+mlp-l1",
        )
    },
    "improver": {
        "mlp-paper": Variant(_PAPER),
        "mlp-spin2": Variant(_PAPER, refiner_settings={"spin": 2}),
        "mlp-spin4": Variant(_PAPER, refiner_settings={"spin": 4}),
        "mlp-spin8": Variant(_PAPER, refiner_settings={"spin": 8}),
        "mlp-shift": Variant(_PAPER, {"refiner_shift": "random"}),
        "mlp-shift-spin8": Variant(_PAPER, {"refiner_shift": "random"}, {"spin": 8}),
        "mlp-dfakes": Variant(_PAPER, {"discriminator_fakes": "generator+refiner"}),
        "mlp-l1": Variant("pix2pix+mlp-l1", {"refiner_spin": 1}),
    },
}
GRAY = "gray"
TEST_FRACTION = 0.2

#: Smaller networks for the smoke budget, so six variants train in about a minute on two
#: CPU cores; the full budget trains the recipes exactly as registered.
SMOKE_OVERRIDES: dict[str, Any] = {"generator_depth": 6, "base_channels": 16}
SMOKE_REFINER_OVERRIDES: dict[str, Any] = {"refiner_hidden": 64}

#: Files a training run writes into its folder; a stale run folder holding anything
#: else is not the harness's and is left alone.
RUN_FILES = ("config.json", "metrics.jsonl", "metrics.png", "samples", ".safetensors", ".tmp-")

CHART_METRICS = {"psnr_ab": 2, "ssim": 4, "colorfulness": 2, "grid": 2}
CHART_TITLES = {
    "psnr_ab": "psnr_ab (dB): chroma closeness to the truth, higher is better",
    "ssim": "ssim (RGB): structural similarity, higher is better",
    "colorfulness": "colorfulness (Hasler-Suesstrunk): colour added, the truth's is dashed",
    "grid": "grid (ab): chroma pattern repeating every 8 px, lower is better, truth's dashed",
}


def overrides_for(variant: Variant, budget: str) -> dict[str, Any]:
    """The build overrides of one variant under a budget.

    Args:
        variant: the variant.
        budget: ``"smoke"`` or ``"full"``.

    Returns:
        The overrides for :func:`colorkit.build`: the variant's own, after the smoke
        budget's smaller networks.
    """
    if budget != "smoke":
        return dict(variant.overrides)
    recipe = colorkit.create("recipe", variant.recipe)
    extra = SMOKE_REFINER_OVERRIDES if recipe.refiner == "mlp" else {}
    return {**SMOKE_OVERRIDES, **extra, **variant.overrides}


def fresh_run_dir(run_dir: Path) -> Path:
    """Empty a previous run of the harness, so that training starts from step 0.

    Args:
        run_dir: the variant's run folder.

    Returns:
        ``run_dir`` (absent now).

    Raises:
        FileExistsError: if the folder holds files a training run does not write, so it
            is not a stale run of this harness and nothing is deleted.
    """
    if run_dir.is_symlink() or (run_dir.exists() and not run_dir.is_dir()):
        raise FileExistsError(
            f"{run_dir} exists and is not a run folder; remove it or use --results"
        )
    if run_dir.is_dir():
        foreign = [
            entry.name
            for entry in run_dir.iterdir()
            if not any(marker in entry.name for marker in RUN_FILES)
        ]
        if foreign:
            raise FileExistsError(
                f"{run_dir} holds files a training run does not write ({', '.join(foreign[:5])}); "
                "it was left untouched: remove it or choose another --results"
            )
        shutil.rmtree(run_dir)
    return run_dir


def _means(report: Any, prefix: str = "") -> dict[str, float]:
    mean = report.means()
    return {name: mean[f"{prefix}{name}"] for name in METRICS}


class Ablation:
    """Trains and scores variants on demand, once each, and collects the rows."""

    def __init__(self, bench: Any) -> None:
        self.bench = bench
        self.variants = ABLATIONS[bench.ablation]
        self.workers = 2 if bench.device.type == "cpu" else min(8, os.cpu_count() or 2)
        self.rows: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, BaseException] = {}
        self.trained: dict[str, tuple[Any, float, str]] = {}
        self.gray: dict[str, float] | None = None
        self.protocol: dict[str, Any] | None = None
        self.truth_colorfulness: float | None = None
        self.truth_grid: float | None = None
        train_set, self.test_set, _ = load_photos(
            bench.data,
            size=bench.size,
            test_fraction=TEST_FRACTION,
            seed=bench.seed,
            eval_data=bench.eval_data,
        )
        self.train_images = len(train_set)

    def row(self, name: str) -> dict[str, Any]:
        """The variant's result row, training it the first time it is asked for.

        Raises:
            Exception: whatever training or scoring raised (again on later calls).
        """
        if name in self.errors:
            raise self.errors[name]
        if name not in self.rows:
            try:
                self.rows[name] = self._run(name)
            except Exception as exc:
                self.errors[name] = exc
                raise
        return self.rows[name]

    def _train(self, name: str, variant: Variant) -> tuple[Any, float, str]:
        """The trained run of ``variant``: (result, seconds, run name), shared by variants
        that train the same way."""
        key = variant.training_key()
        if key not in self.trained:
            bench = self.bench
            run_dir = fresh_run_dir(bench.results / "runs" / name)
            config = TrainConfig(
                recipe=variant.recipe,
                overrides=overrides_for(variant, bench.budget),
                data=bench.data,
                eval_data=bench.eval_data,
                out=str(run_dir),
                size=bench.size,
                steps=bench.steps,
                batch=bench.batch,
                seed=bench.seed,
                device=bench.device.type,
                workers=self.workers,
                sample_every=bench.steps,
                checkpoint_every=bench.steps,
                keep=1,
                test_fraction=TEST_FRACTION,
                progress=False,
            )
            start = time.perf_counter()
            result = train(config)
            self.trained[key] = (result, time.perf_counter() - start, name)
        return self.trained[key]

    def _run(self, name: str) -> dict[str, Any]:
        bench = self.bench
        variant = self.variants[name]
        result, seconds, run_name = self._train(name, variant)
        model = result.model
        saved = {key: getattr(model.refiner, key) for key in variant.refiner_settings}
        try:
            for key, value in variant.refiner_settings.items():
                setattr(model.refiner, key, value)
            start = time.perf_counter()
            report = evaluate(
                model,
                self.test_set,
                batch_size=bench.eval_batch,
                progress=False,
                protocol_extra=self._protocol_extra(),
            )
            eval_seconds = time.perf_counter() - start
            grid = bench.results / "runs" / run_name / "samples" / f"step-{result.step:08d}.png"
            if grid.is_file() and run_name == name:
                shutil.copyfile(grid, bench.results / f"{name}.png")
        finally:
            for key, value in saved.items():
                setattr(model.refiner, key, value)
        row: dict[str, Any] = {
            "variant": name,
            "recipe": variant.recipe,
            "description": model.recipe.description,
            **_means(report),
            "train_seconds": seconds,
            "images_per_second": result.images_per_second,
            "eval_images_per_second": len(self.test_set) / eval_seconds,
            "steps": result.step,
            "overrides": overrides_for(variant, bench.budget),
            "refiner_settings": dict(variant.refiner_settings),
            "trained_with": run_name,
            "precision": model.precision,
            "parameters": sum(p.numel() for p in model.parameters()),
        }
        if model.recipe.refiner != "identity":
            # the same networks without the refiner: the Improver's own effect
            unrefined = evaluate(
                model, self.test_set, batch_size=bench.eval_batch, progress=False, refine=False
            )
            row["generator_only"] = _means(unrefined)
        if (bench.results / f"{run_name}.png").is_file():
            row["samples"] = f"{run_name}.png"
        gray = _means(report, "gray_")
        if self.gray is None:
            self.gray = gray
            self.truth_colorfulness = report.means()["truth_colorfulness"]
            self.truth_grid = report.means()["truth_grid"]
            self.protocol = {k: v for k, v in report.protocol.items() if k != "model"}
            self.protocol["precision"] = model.precision
        row["gray_baseline"] = gray
        return row

    def _protocol_extra(self) -> dict[str, Any]:
        bench = self.bench
        return {
            "data": bench.data or "colorkit's embedded photos",
            "split": (
                f"all of --data for training, all of {bench.eval_data} for testing"
                if bench.eval_data
                else f"held-out test split of colorkit.data.load_photos("
                f"test_fraction={TEST_FRACTION}, seed={bench.seed})"
            ),
            "train_images": self.train_images,
            "test_images": len(self.test_set),
            "test_image_names": [Path(p).name for p in self.test_set.paths],
            "crop": "resize shorter side to size, center crop size×size",
            "size": bench.size,
        }

    def gray_row(self) -> dict[str, Any]:
        """The gray-input baseline row (needs one variant scored first)."""
        if self.gray is None:
            raise RuntimeError("no variant was scored, so there is no gray baseline")
        return {
            "variant": GRAY,
            "recipe": None,
            "description": "the gray input itself (no colorization)",
            **self.gray,
            "train_seconds": None,
            "images_per_second": None,
            "steps": 0,
        }

    def results(self) -> dict[str, Any]:
        """The content of ``results.json``."""
        bench = self.bench
        rows = [self.rows[v] for v in self.variants if v in self.rows]
        protocol = dict(self.protocol or {})
        protocol.update(
            {
                "ablation": bench.ablation,
                "budget": bench.budget,
                "steps": bench.steps,
                "batch": bench.batch,
                "eval_batch": bench.eval_batch,
                "seed": bench.seed,
                "workers": self.workers,
                "truth_colorfulness": self.truth_colorfulness,
                "truth_grid": self.truth_grid,
                "overrides": {
                    "all variants": SMOKE_OVERRIDES if bench.budget == "smoke" else {},
                    "variants with the mlp refiner": (
                        SMOKE_REFINER_OVERRIDES if bench.budget == "smoke" else {}
                    ),
                    "why": (
                        "smoke budget: smaller networks so the run fits minutes on a CPU"
                        if bench.budget == "smoke"
                        else "none: the recipes as registered"
                    ),
                },
                "train_seconds": "wall time of colorkit.trainer.train(), data loading, "
                "sample grid and checkpoint included",
                "images_per_second": "TrainResult.images_per_second: mean over the training steps",
                "eval_images_per_second": "test images over the wall time of evaluate() with "
                "the variant's refiner settings (colorize and scoring)",
            }
        )
        return {
            "variants": [self.gray_row(), *rows] if rows else [],
            "protocol": protocol,
            "device": device_description(bench.device),
            "colorkit_version": colorkit.__version__,
            "torch_version": torch.__version__,
        }


HEADERS = (
    "variant",
    "ssim",
    "psnr dB",
    "psnr_ab dB",
    "colorfulness",
    "grid",
    "train s",
    "train img/s",
    "eval img/s",
    "steps",
)


def table_rows(results: dict[str, Any]) -> list[list[str]]:
    """The cells of the results table, one row per variant (gray first)."""
    return [
        [
            row["variant"],
            format_value(row["ssim"], 4),
            format_value(row["psnr"], 2),
            format_value(row["psnr_ab"], 2),
            format_value(row["colorfulness"], 2),
            format_value(row["grid"], 2),
            format_value(row["train_seconds"], 1),
            format_value(row["images_per_second"], 2),
            format_value(row.get("eval_images_per_second"), 1),
            format_value(row["steps"]),
        ]
        for row in results["variants"]
    ]


def improver_rows(results: dict[str, Any]) -> list[list[str]]:
    """Refined minus generator-only scores, for the variants with a refiner."""
    cells = []
    for row in results["variants"]:
        before = row.get("generator_only")
        if before:
            deltas = [row[name] - before[name] for name in METRICS]
            cells.append(
                [row["variant"]]
                + [f"{d:+.{n}f}" for d, n in zip(deltas, (4, 2, 2, 2, 2), strict=True)]
            )
    return cells


def markdown_report(results: dict[str, Any]) -> str:
    """``results.md``: the table, the Improver's effect, the protocol in short."""
    protocol = results["protocol"]
    lines = [
        "# colorkit quality ablations",
        "",
        f"Device: {results['device']}; colorkit {results['colorkit_version']}, "
        f"torch {results['torch_version']}, piq {protocol.get('piq_version')}.",
        f"Data: {protocol.get('data')}; {protocol.get('train_images')} training / "
        f"{protocol.get('test_images')} test images ({protocol.get('split')}).",
        f"Budget {protocol['budget']}: {protocol['steps']} steps × batch {protocol['batch']}, "
        f"crops of {protocol.get('size')} px, seed {protocol['seed']}, "
        f"{protocol.get('precision')} precision; "
        f"overrides: {_overrides_text(protocol['overrides'])}.",
        "Scores are means over the test images (higher is better, but for grid; "
        f"colorfulness of the ground truth: {format_value(protocol.get('truth_colorfulness'), 2)}"
        f", its grid: {format_value(protocol.get('truth_grid'), 2)}).",
        "",
        markdown_table(HEADERS, table_rows(results)),
    ]
    improver = improver_rows(results)
    if improver:
        lines += [
            "",
            "Effect of the refiner (refined minus the same model's generator output):",
            "",
            markdown_table(
                ("variant", "Δ ssim", "Δ psnr", "Δ psnr_ab", "Δ colorfulness", "Δ grid"),
                improver,
            ),
        ]
    lines += ["", "![scores per variant](chart.png)", ""]
    return "\n".join(lines)


def _overrides_text(overrides: dict[str, Any]) -> str:
    parts = [
        f"{', '.join(f'{k}={v}' for k, v in values.items())} ({scope})"
        for scope, values in overrides.items()
        if isinstance(values, dict) and values
    ]
    return "; ".join(parts) or "none"


@pytest.fixture(scope="module")
def ablation(bench: Any) -> Ablation:
    return Ablation(bench)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "variant" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--ablation")
        metafunc.parametrize("variant", list(ABLATIONS[chosen]))


def test_variant(ablation: Ablation, variant: str) -> None:
    row = ablation.row(variant)
    assert row["steps"] == ablation.bench.steps
    for name in METRICS:
        assert math.isfinite(row[name]), f"{variant}: {name} is {row[name]}"
    assert 0.0 <= row["ssim"] <= 1.0
    assert row["psnr"] > 0.0 and row["psnr_ab"] > 0.0
    # a trained model adds colour: its output is neither gray nor scored like the gray input
    assert row["colorfulness"] > 0.0
    assert row["psnr_ab"] != pytest.approx(row["gray_baseline"]["psnr_ab"], abs=1e-6)
    assert row["train_seconds"] > 0.0 and row["images_per_second"] > 0.0
    assert row["eval_images_per_second"] > 0.0
    assert (ablation.bench.results / row["samples"]).is_file(), "no sample grid was copied"


def write_chart(path: Path, results: dict[str, Any]) -> Path:
    """``chart.png``: psnr_ab, ssim, colorfulness and grid per variant, gray baseline in gray."""
    protocol = results["protocol"]
    rows = results["variants"]
    titles = CHART_TITLES
    references = {}
    for name in ("colorfulness", "grid"):
        truth = protocol.get(f"truth_{name}")
        if truth is not None and math.isfinite(truth):
            references[titles[name]] = ("truth", truth)
    return bar_chart(
        path,
        [row["variant"] for row in rows],
        {titles[name]: [row[name] for row in rows] for name in CHART_METRICS},
        title=f"colorkit ablations: {protocol['steps']} steps x batch {protocol['batch']}, "
        f"{protocol.get('size')} px, {results['device']}",
        digits={titles[name]: digits for name, digits in CHART_METRICS.items()},
        baseline=GRAY,
        references=references,
    )


def _check_image(path: Path, check: Callable[[Any], None]) -> None:
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        check(image)


def test_report(ablation: Ablation, capsys: pytest.CaptureFixture[str]) -> None:
    failed = []
    variants = list(ablation.variants)
    for variant in variants:
        try:
            ablation.row(variant)  # trained already unless deselected
        except Exception as exc:
            failed.append(f"{variant}: {type(exc).__name__}: {exc}")
    results = ablation.results()
    out = ablation.bench.results
    json_path = write_json(out / "results.json", results)
    md_path = write_text(out / "results.md", markdown_report(results))
    chart = write_chart(out / "chart.png", results) if results["variants"] else None
    assert not failed, "variants that failed: " + "; ".join(failed)

    loaded = json.loads(json_path.read_text())
    names = [row["variant"] for row in loaded["variants"]]
    assert names == [GRAY, *variants]
    for key in ("protocol", "device", "colorkit_version", "torch_version"):
        assert loaded[key], f"results.json lacks {key}"
    for row in loaded["variants"]:
        for name in METRICS:
            assert isinstance(row[name], float) and math.isfinite(row[name]), (row["variant"], name)
        assert 0.0 <= row["ssim"] <= 1.0 and row["psnr"] > 0 and row["psnr_ab"] > 0
    gray = loaded["variants"][0]
    assert gray["colorfulness"] == pytest.approx(0.0, abs=1e-3)
    # one test split for all: every variant scored the same gray baseline
    for variant in variants:
        for name in METRICS:
            assert ablation.rows[variant]["gray_baseline"][name] == pytest.approx(gray[name])
    assert all(row["colorfulness"] > gray["colorfulness"] for row in loaded["variants"][1:])
    text = md_path.read_text()
    assert all(f"| {variant} |" in text for variant in names)

    def is_chart(image: Any) -> None:
        assert image.format == "PNG" and image.width >= 600 and image.height >= 300
        assert len(image.getcolors(maxcolors=1 << 16) or range(3)) > 2

    assert chart is not None
    _check_image(chart, is_chart)
    with capsys.disabled():
        print(f"\n\ncolorkit quality ablations: {ablation.bench.ablation} ({results['device']})")
        print(text_table(HEADERS, table_rows(results)))
        print(f"written: {json_path}, {md_path}, {chart}")
