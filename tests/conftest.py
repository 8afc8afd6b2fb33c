import pytest
import torch

from giasok.data import load_dataset, victim_batch


@pytest.fixture(scope="session")
def patches_test():
    return load_dataset("patches", "test")


@pytest.fixture(scope="session")
def one_patch(patches_test):
    return victim_batch(patches_test, 1, seed=0)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)
