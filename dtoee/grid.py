"""The grid of a sweep: ``--grid`` and ``--seeds`` parsed, every combination expanded into
validated runs (:class:`RunSpec`), before anything runs.

Keys and values follow ``--set`` exactly (``dtoee.config``: :func:`~dtoee.config.parse_value`,
:func:`~dtoee.config.set_value`): dotted keys, list indices, ``*`` for every item of a list,
``load`` for every UE rate.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from dtoee.config import Scenario, ScenarioError, parse_value, scenario_from_dict, set_value, split_assignment


def split_values(text: str) -> list[str]:
    """Split on commas outside brackets/braces/quotes: ``[1,2],[3,4]`` -> two values."""
    parts, depth, quote, current = [], 0, None, []
    for char in text:
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts]


def parse_grid(assignment: str) -> tuple[str, list[Any]]:
    """``"radio.bandwidth_rb=25,50"`` -> ("radio.bandwidth_rb", [25, 50]): the key and each
    value as ``--set`` reads them (``dtoee.config.split_assignment``, ``parse_value``), values
    split on commas outside brackets and quotes."""
    key, raw = split_assignment(assignment, "--grid", "radio.bandwidth_rb=25,50")
    values = [parse_value(part) for part in split_values(raw)]
    if not values or any(part == "" for part in split_values(raw)):
        raise ScenarioError(f"--grid {assignment!r}: empty value; allowed: comma-separated values")
    return key, values


def parse_seeds(text: str | int | Iterable[int]) -> list[int]:
    """``"1-5"`` -> [1, 2, 3, 4, 5]; ``"1,3,7"``; ``"2"``; or a list of ints."""
    if isinstance(text, int):
        return [text]
    if not isinstance(text, str):
        return [int(s) for s in text]
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if match:
            low, high = int(match.group(1)), int(match.group(2))
            if high < low:
                raise ScenarioError(f"--seeds {text!r}: range {part!r} runs backwards")
            seeds.extend(range(low, high + 1))
        elif part.isdigit():
            seeds.append(int(part))
        else:
            raise ScenarioError(f"--seeds {text!r}: {part!r}; allowed: N, N-M or a comma-separated list")
    if len(set(seeds)) != len(seeds):
        raise ScenarioError(f"--seeds {text!r}: a seed is repeated")
    return seeds


@dataclass(frozen=True)
class RunSpec:
    """One simulation of a sweep: its directory name, the values that define it, its scenario."""

    run_id: str
    params: dict[str, Any]
    seed: int
    scenario: Scenario

    def key(self) -> str:
        return self.scenario.content_hash()

    def info(self, *, scenario: bool = True) -> dict[str, Any]:
        """What ``run.json`` (``scenario=True``) and ``sweep.json`` record about this run."""
        info = {"run_id": self.run_id, "params": self.params, "seed": self.seed, "scenario_hash": self.key()}
        if scenario:
            info["scenario"] = self.scenario.model_dump(mode="json")
        return info


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value) if abs(value) < 1e6 else f"{value:g}"
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return str(text)


def run_id(params: dict[str, Any], seed: int) -> str:
    """A readable, filesystem-safe directory name: ``radio.bandwidth_rb=25_seed1``."""
    parts = [f"{key}={_fmt(value)}" for key, value in params.items()] + [f"seed{seed}"]
    name = re.sub(r"[^A-Za-z0-9._=+-]+", "-", "_".join(parts))
    if len(name) > 120:
        digest = hashlib.sha1(json.dumps([params, seed], sort_keys=True, default=str).encode()).hexdigest()[:10]
        name = f"{name[:100]}-{digest}"
    return name


def expand(base: dict, grid: dict[str, list[Any]] | list[tuple[str, list[Any]]], seeds: Iterable[int],
           *, extra: Callable[[dict, dict], None] | None = None) -> list[RunSpec]:
    """Every combination of grid values x seeds as validated :class:`RunSpec` (first key
    varies slowest, seeds fastest). A value that makes the scenario invalid stops here,
    before anything runs, with the run's values in the message."""
    items = list(grid.items()) if isinstance(grid, dict) else list(grid)
    keys = [key for key, _ in items]
    if len(set(keys)) != len(keys):
        raise ScenarioError(f"--grid: a key is given twice ({keys})")
    seeds = list(seeds)
    runs = []
    for combination in itertools.product(*[values for _, values in items]):
        params = dict(zip(keys, combination))
        for seed in seeds:
            data = copy.deepcopy(base)
            for key, value in params.items():
                set_value(data, key, value, context=f"--grid {key}")
            if extra is not None:
                extra(data, params)
            set_value(data, "simulation.seed", seed)
            set_value(data, "simulation.progress", False)
            try:
                scenario = scenario_from_dict(data)
            except ScenarioError as error:
                where = ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())
                raise ScenarioError(f"{error} (in the run with {where or 'no grid values'}, seed {seed})") from None
            runs.append(RunSpec(run_id(params, seed), params, seed, scenario))
    ids = [run.run_id for run in runs]
    if len(set(ids)) != len(ids):  # values that differ only in characters we replaced
        runs = [RunSpec(f"{r.run_id}-{r.key()[:8]}", r.params, r.seed, r.scenario) for r in runs]
    return runs
