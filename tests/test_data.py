import numpy as np
import pytest
import torch

from giasok.data import CANARY_SOURCES, DatasetUnavailable, load_dataset, victim_batch


def test_patches_are_ten_classes_of_32px_images_in_unit_range(patches_test):
    train = load_dataset("patches", "train")
    assert len(train.classes) == 10 and len(train) == 5000 and len(patches_test) == 1000
    image, label = train[123]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1 and isinstance(label, int)
    assert np.bincount(train.labels).tolist() == [500] * 10


def test_patches_are_deterministic_and_splits_share_no_crop(tmp_path, patches_test):
    again = load_dataset("patches", "test", root=tmp_path)  # rebuilt from scratch in another folder
    assert np.array_equal(again.images, patches_test.images)
    train = load_dataset("patches", "train")
    train_keys = {img.tobytes() for img in train.images}
    assert not any(img.tobytes() in train_keys for img in patches_test.images)


def test_patches_at_other_resolutions(tmp_path):
    ds = load_dataset("patches", "test", root=tmp_path, image_size=64)
    assert ds[0][0].shape == (3, 64, 64)


def test_canaries_are_whole_photographs_by_name():
    ds = load_dataset("canaries")
    assert ds.classes == list(CANARY_SOURCES)
    clock = ds[ds.classes.index("clock")][0]
    assert clock.shape == (3, 300, 400)


def test_missing_cifar_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetUnavailable, match="download=True"):
        load_dataset("cifar10", root=tmp_path)
    with pytest.raises(DatasetUnavailable, match="cifar-100-python"):
        load_dataset("cifar100", root=tmp_path)
    with pytest.raises(DatasetUnavailable, match="image-net.org"):
        load_dataset("imagenet", root=tmp_path)


def test_bad_names_and_sizes_are_clear_errors(patches_test):
    with pytest.raises(ValueError, match="unknown data set 'mnist'.*patches"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="split"):
        load_dataset("patches", "validation")
    with pytest.raises(ValueError, match="unknown option"):
        load_dataset("cifar10", image_size=64)
    with pytest.raises(ValueError, match="at most 10"):
        victim_batch(patches_test, 11, seed=0, distinct_labels=True)
    with pytest.raises(ValueError, match="batch of 0"):
        victim_batch(patches_test, 0, seed=0)


def test_victim_batch_is_seeded_and_distinct(patches_test):
    x1, y1 = victim_batch(patches_test, 8, seed=5, distinct_labels=True)
    x2, y2 = victim_batch(patches_test, 8, seed=5, distinct_labels=True)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and len(set(y1.tolist())) == 8
