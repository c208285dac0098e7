"""Options of the benchmark harness: ``pytest benchmarks/ --benchmark [...]``.

Without ``--benchmark`` everything here is skipped, so a plain ``pytest`` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

BUDGETS = {
    # smoke: under 3 minutes on 2 CPU cores, embedded photos, small crops
    "smoke": {"size": 64, "steps": 40, "batch": 4, "eval_batch": 8},
    # full: meant for a GPU and a real data set
    "full": {"size": 256, "steps": 3000, "batch": 16, "eval_batch": 16},
}
BENCH_DIR = Path(__file__).parent


@dataclass(frozen=True)
class BenchSettings:
    """The harness's settings, from the command line."""

    ablation: str
    data: str | None
    eval_data: str | None
    device: torch.device
    budget: str
    size: int
    steps: int
    batch: int
    eval_batch: int
    seed: int
    results: Path


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("colorkit benchmarks")
    group.addoption("--benchmark", action="store_true", help="run the benchmarks in benchmarks/")
    group.addoption(
        "--ablation",
        default="recipes",
        choices=("recipes", "improver"),
        help="which variants test_ablations.py compares",
    )
    group.addoption("--data", default=None, help="folder of color photos (default: embedded)")
    group.addoption(
        "--eval-data",
        default=None,
        help="separate folder of test photos; then all of --data is trained on",
    )
    group.addoption("--device", default="auto", choices=("auto", "cpu", "cuda"))
    group.addoption("--budget", default="smoke", choices=tuple(BUDGETS))
    group.addoption("--steps", type=int, default=None, help="training steps per variant")
    group.addoption("--size", type=int, default=None, help="crop size")
    group.addoption("--bench-batch", type=int, default=None, help="training batch size")
    group.addoption("--bench-seed", type=int, default=0)
    group.addoption("--results", default="results/benchmarks", help="where results are written")
    group.addoption(
        "--videos", default=None, help="test_video_quality.py: folder of colour video clips"
    )
    group.addoption(
        "--photos",
        action="append",
        default=None,
        help="test_video_quality.py: photos for a synthetic clip (repeat; default: embedded)",
    )
    group.addoption(
        "--video-weights", default=None, help="test_video_quality.py: the weights to colorize with"
    )
    group.addoption(
        "--video-frames",
        type=int,
        default=None,
        help="test_video_quality.py: most frames per real clip",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--benchmark"):
        return
    skip = pytest.mark.skip(reason="benchmarks run only with --benchmark")
    for item in items:
        if BENCH_DIR in Path(item.fspath).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def bench(pytestconfig: pytest.Config) -> BenchSettings:
    """The harness settings: budget defaults overridden by explicit options."""
    from colorkit.trainer import resolve_device

    option = pytestconfig.getoption
    budget = BUDGETS[option("--budget")]
    results = Path(option("--results"))
    results.mkdir(parents=True, exist_ok=True)
    return BenchSettings(
        ablation=option("--ablation"),
        data=option("--data"),
        eval_data=option("--eval-data"),
        device=resolve_device(option("--device")),
        budget=option("--budget"),
        size=option("--size") or budget["size"],
        steps=option("--steps") or budget["steps"],
        batch=option("--bench-batch") or budget["batch"],
        eval_batch=budget["eval_batch"],
        seed=option("--bench-seed"),
        results=results,
    )
