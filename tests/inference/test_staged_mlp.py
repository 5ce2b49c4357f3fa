"""Phase-1 contract of inference.load_staged_model on the "mlp" family."""
import multiprocessing as mp
import os

import numpy as np
import pytest
import torch

from inference import (
    ExitCurve, MLPConfig, ReplayTable, StagedModel, TrainConfig, StageProfile, StageResult, activation_size_bytes, deserialize_activation,
    load_staged_model, serialize_activation,
)


def test_api_shape(mlp: StagedModel):
    assert mlp.name == "mlp-digits"
    assert mlp.num_stages >= 3
    n = len(mlp.test_labels)
    assert mlp.test_inputs.dtype == torch.float32 and mlp.test_inputs.shape[0] == n
    assert mlp.test_labels.dtype == np.int64
    assert mlp.input_bytes == mlp.test_inputs[0].numel() * 4 == 256
    assert mlp.result_bytes == 16
    assert isinstance(mlp.replay, ReplayTable) and mlp.replay.confidence.shape == (n, mlp.num_stages)
    assert mlp.replay.confidence.dtype == np.float64 and mlp.replay.predicted.dtype == np.int64
    assert len(mlp.profile) == mlp.num_stages
    for k, p in enumerate(mlp.profile, start=1):
        assert isinstance(p, StageProfile) and p.stage == k
        assert 0 < p.latency_s <= p.latency_p95_s < 0.1
        assert p.param_bytes > 0 and p.flops > 0 and p.device.startswith("cpu")
        assert not p.estimated


def test_run_stage_chain_and_bytes(mlp):
    x, _ = mlp.sample(0)
    for k in range(1, mlp.num_stages + 1):
        r = mlp.run_stage(k, x)
        assert isinstance(r, StageResult)
        assert 0.0 <= r.confidence <= 1.0 and isinstance(r.predicted, int)
        numel = r.activation.numel()
        assert r.activation_bytes == len(serialize_activation(r.activation)) == numel * 4
        assert len(serialize_activation(r.activation, "fp16")) == numel * 2 == activation_size_bytes(numel, "fp16")
        assert len(serialize_activation(r.activation, "int8")) == numel + 4 == activation_size_bytes(numel, "int8")
        assert mlp.profile[k - 1].activation_bytes == r.activation_bytes
        x = r.activation


def test_run_stage_rejects_bad_input(mlp):
    with pytest.raises(ValueError, match="k=0"):
        mlp.run_stage(0, mlp.test_inputs[:1])
    with pytest.raises(ValueError, match="batch of 1"):
        mlp.run_stage(1, mlp.test_inputs[:2])


def test_serialize_roundtrip():
    t = torch.linspace(-3, 5, 24).reshape(2, 3, 4)
    assert torch.equal(deserialize_activation(serialize_activation(t), (2, 3, 4)), t)
    assert torch.allclose(deserialize_activation(serialize_activation(t, "fp16"), (2, 3, 4), "fp16"), t, atol=1e-2)
    assert torch.allclose(deserialize_activation(serialize_activation(t, "int8"), (2, 3, 4), "int8"), t, atol=5 / 127)
    assert serialize_activation(torch.zeros(5), "int8")[4:] == bytes(5)
    with pytest.raises(ValueError, match="dtype='bf16'"):
        serialize_activation(t, "bf16")


def test_replay_equals_run_stage(mlp):
    for n in (0, 1, 17, len(mlp.test_labels) - 1):
        x, _ = mlp.sample(n)
        for k in range(1, mlp.num_stages + 1):
            r = mlp.run_stage(k, x)
            assert r.confidence == mlp.replay.confidence[n, k - 1]
            assert r.predicted == mlp.replay.predicted[n, k - 1]
            x = r.activation


def test_exit_curves_sanity(mlp):
    top = float(mlp.replay.confidence.max())
    curves = mlp.exit_curves(np.array([0.0, 0.5, np.nextafter(top, 2.0)]))
    assert len(curves) == mlp.num_stages
    for c in curves:
        assert isinstance(c, ExitCurve)
        assert c.exit_share[0] == 1.0 and c.exit_share[-1] == 0.0
        assert np.isnan(c.accuracy_of_exited[-1])
        assert c.accuracy_of_exited[0] == pytest.approx(c.overall_accuracy) and c.split == "validation"
    default = mlp.exit_curves()
    assert all(np.all(np.diff(c.exit_share) <= 0) for c in default)


def test_last_exit_at_least_first(mlp):
    acc = mlp.exit_test_accuracy()
    assert acc[-1] >= acc[0]
    assert acc[-1] > 0.9
    assert acc == pytest.approx([c.overall_accuracy for c in mlp.exit_curves(split="test")])
    assert mlp.exit_accuracy("validation") == pytest.approx([c.overall_accuracy for c in mlp.exit_curves()])


def test_cache_reuse(mlp, cache_dir):
    assert mlp.cache_path is not None and mlp.cache_path.parent == cache_dir
    mtime = os.stat(mlp.cache_path).st_mtime_ns
    again = load_staged_model("mlp", seed=0, cache_dir=cache_dir)
    assert again.loaded_from_cache
    assert os.stat(mlp.cache_path).st_mtime_ns == mtime
    assert np.array_equal(again.replay.confidence, mlp.replay.confidence)
    assert again.profile == mlp.profile
    x, _ = mlp.sample(3)
    assert again.run_stage(1, x).confidence == mlp.run_stage(1, x).confidence


def test_training_deterministic(mlp, tmp_path):
    same = load_staged_model("mlp", seed=0, cache_dir=tmp_path)
    assert not same.loaded_from_cache
    for (n1, p1), (n2, p2) in zip(mlp.net.state_dict().items(), same.net.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2), n1
    assert np.array_equal(same.replay.confidence, mlp.replay.confidence)
    assert torch.equal(same.test_inputs, mlp.test_inputs)
    other = load_staged_model("mlp", seed=1, cache_dir=tmp_path)
    assert not torch.equal(other.net.stages[0][0][0].weight, mlp.net.stages[0][0][0].weight)
    assert not np.array_equal(other.test_labels, mlp.test_labels) or not np.array_equal(
        other.replay.confidence, mlp.replay.confidence)


def test_thread_count_and_global_rng_restored(cache_dir):
    old_threads = torch.get_num_threads()
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    load_staged_model("mlp", seed=0, cache_dir=cache_dir)
    assert torch.get_num_threads() == old_threads
    assert torch.equal(torch.rand(3), expected)


def _child(model, q):
    r = model.run_stage(1, model.test_inputs[0:1])
    q.put(r.confidence)


def test_fork_after_load_does_not_hang(tmp_path):
    """A process that loads (here: trains) a model may fork children that run torch."""
    model = load_staged_model("mlp", seed=0, cache_dir=tmp_path, config=MLPConfig(hidden_widths=(8, 8, 8), exit_after=(1, 2, 3)),
                              train_config=TrainConfig(epochs=3))  # trains with 1 thread
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(model, q))
    p.start()
    p.join(timeout=30)
    if p.is_alive():
        p.kill()
        pytest.fail("forked child hung after load_staged_model")
    assert q.get(timeout=5) == model.replay.confidence[0, 0]


def test_bad_arguments(cache_dir):
    with pytest.raises(ValueError, match="family='gpt'"):
        load_staged_model("gpt", cache_dir=cache_dir)
    with pytest.raises(ValueError, match="seed=-1"):
        load_staged_model("mlp", seed=-1, cache_dir=cache_dir)


def test_correct_exit_tradeoff(mlp):
    from inference import correct_exit_tradeoff
    conf = mlp.replay.confidence[:, 0]
    correct = mlp.replay.predicted[:, 0] == mlp.test_labels
    share, cshare, th = correct_exit_tradeoff(conf, correct)
    assert share[0] == 0 and share[-1] == 1 and cshare[-1] == pytest.approx(correct.mean())
    assert np.all(np.diff(cshare) >= 0) and np.all(np.diff(th[1:]) <= 0)
    n = len(conf) // 2
    assert cshare[n] == pytest.approx(((conf >= th[n]) & correct).sum() / len(conf), abs=2 / len(conf))


def test_measure_profile_again(mlp):
    prof = mlp.measure_profile(repeats=20)
    assert [p.stage for p in prof] == [p.stage for p in mlp.profile]
    assert [(p.activation_bytes, p.param_bytes, p.flops) for p in prof] == [
        (p.activation_bytes, p.param_bytes, p.flops) for p in mlp.profile]
    assert "1 thread" in prof[0].device


def test_two_processes_race_for_one_cache(tmp_path):
    """Two processes loading the same model at once: one trains, the other waits and loads."""
    import subprocess
    import sys
    code = ("import sys; from inference import load_staged_model, MLPConfig, TrainConfig; "
            "m = load_staged_model('mlp', seed=4, cache_dir=sys.argv[1], config=MLPConfig(hidden_widths=(8, 8, 8), "
            "exit_after=(1, 2, 3)), train_config=TrainConfig(epochs=3)); print(m.loaded_from_cache)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    outs = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert [p.returncode for p in procs] == [0, 0]
    assert outs == ["False", "True"]
    assert len(list(tmp_path.glob("*.pt"))) == 1 and not list(tmp_path.glob("*.tmp"))
