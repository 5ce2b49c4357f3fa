"""Stage executors: how the co-simulation gets a stage's exit confidence and output size.

* ``ReplayExecutor``: per-sample confidences and predictions precomputed once on the TEST
  split (``model.replay``), output sizes from the profile. Fast and deterministic.
* ``LiveExecutor``: runs the real forward pass of stage k on the tensor the task carries,
  inside the simulation callback; the output tensor travels on with the task (its wire
  size is the same as replay's: the profile's, in the scenario's activation format).

Both pick the same samples for the same seed and give the same decisions (the replay table
is computed with ``run_stage`` itself). Both draw from the TEST split only
(``EVALUATION_SPLIT``); the exit curves every policy calibrates its thresholds on come from the
VALIDATION split (``StagedModel.exit_curves``), so no threshold is scored on its own data.
"""

from __future__ import annotations

import numpy as np

from inference.exits import EVALUATION_SPLIT


class ReplayExecutor:
    """``figures`` (``dtoee.run.StageFigures``) sets what travels: input and activation bytes
    (measured, compressed, or those of a named large model)."""

    def __init__(self, model, figures) -> None:
        self.model = model
        self.num_stages = model.num_stages
        self.input_bytes = figures.input_bytes
        self.result_bytes = model.result_bytes
        self._confidence = model.replay.confidence
        self._predicted = model.replay.predicted
        self._activation_bytes = list(figures.activation_bytes)
        self.forward_time_s = 0.0
        self.split = EVALUATION_SPLIT

    def pick_sample(self, rng: np.random.Generator) -> tuple[int, int]:
        """A uniformly drawn TEST sample: (index into the test split, its true label)."""
        sample = int(rng.integers(len(self.model.test_labels)))
        return sample, int(self.model.test_labels[sample])

    def run(self, task, stage: int) -> tuple[float, int, int]:
        column = stage - 1
        return (float(self._confidence[task.sample, column]), int(self._predicted[task.sample, column]),
                self._activation_bytes[column])


class LiveExecutor(ReplayExecutor):
    def run(self, task, stage: int) -> tuple[float, int, int]:
        import time

        x = self.model.test_inputs[task.sample : task.sample + 1] if stage == 1 else task.activation
        started = time.perf_counter()
        result = self.model.run_stage(stage, x)
        self.forward_time_s += time.perf_counter() - started
        task.activation = result.activation
        return result.confidence, result.predicted, self._activation_bytes[stage - 1]
