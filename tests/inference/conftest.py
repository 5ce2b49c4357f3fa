import pytest

from inference import load_staged_model


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """One temporary model cache for the whole test session."""
    return tmp_path_factory.mktemp("dtoee-cache")


@pytest.fixture(scope="session")
def mlp(cache_dir):
    return load_staged_model("mlp", seed=0, cache_dir=cache_dir)
