"""The out-of-distribution data sets of §4.2.2 (dtd, places365, lfw, pacs): options, offline errors, and loading
tiny fake copies laid out as the real ones are. No test touches the network."""
import hashlib
import socket
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

from giasok.data import DATASETS, PACS_DOMAINS, DatasetUnavailable, image_size_option, load_dataset

OOD = ("dtd", "places365", "lfw", "pacs")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a URL or a socket fails the test loudly."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def offline(monkeypatch):
    """A machine without a network: opening a URL fails as urllib does there."""
    def unreachable(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    monkeypatch.setattr(socket.socket, "connect", unreachable)


def _write_images(folder, names, size=(40, 30), seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(folder / name)


def _check_images(dataset, size):
    for i in range(len(dataset)):
        image, label = dataset[i]
        assert image.shape == (3, size, size) and image.dtype == torch.float32
        assert 0 <= image.min() and image.max() <= 1
        assert 0 <= label < len(dataset.classes)


@pytest.mark.parametrize("name", OOD)
def test_ood_sets_are_listed_and_take_an_image_size(name):
    assert name in DATASETS
    assert image_size_option(name, 64) == {"image_size": 64}


def test_image_size_option_is_unchanged_for_the_other_sets():
    assert image_size_option("patches", 16) == {"image_size": 16}
    assert image_size_option("imagenet", 64) == {"image_size": 64}
    assert image_size_option("cifar10", 64) == {} and image_size_option("canaries", 64) == {}


@pytest.mark.parametrize("name, folder, how", [
    ("dtd", "dtd/dtd", "robots.ox.ac.uk/~vgg/data/dtd"),
    ("places365", "places365", "data.csail.mit.edu/places/places365"),
    ("lfw", "lfw-py", "kaggle.com/datasets/jessicali9530/lfw-dataset"),
    ("pacs", "pacs/art_painting", "domaingeneralization.github.io"),
])
@pytest.mark.parametrize("split", ["train", "test"])
def test_missing_ood_set_names_the_folder_and_how_to_get_it(tmp_path, no_network, name, folder, how, split):
    with pytest.raises(DatasetUnavailable) as caught:
        load_dataset(name, split, root=tmp_path)
    message = str(caught.value)
    assert str(tmp_path.resolve() / folder) in message and how in message
    if name == "pacs":
        assert "<domain>/<class>/<image>" in message and all(d in message for d in PACS_DOMAINS)
        assert "Deeper, broader and artier" in message
    assert list(tmp_path.iterdir()) == []  # nothing was created


@pytest.mark.parametrize("name", ["lfw", "pacs"])
def test_sets_that_cannot_be_downloaded_ignore_download(tmp_path, no_network, name):
    with pytest.raises(DatasetUnavailable, match="cannot be downloaded automatically"):
        load_dataset(name, "test", root=tmp_path, download=True)


@pytest.mark.parametrize("name, how", [("dtd", "dtd-r1.0.1.tar.gz"), ("places365", "val_256.tar")])
def test_failed_download_says_how_to_get_the_files(tmp_path, offline, name, how):
    with pytest.raises(DatasetUnavailable, match="could not download") as caught:
        load_dataset(name, "test", root=tmp_path, download=True)
    assert how in str(caught.value) and "name resolution" in str(caught.value)


def _fake_pacs(root):
    for domain, seed in (("sketch", 0), ("photo", 1)):
        for label, cls in enumerate(("dog", "house")):
            _write_images(root / "pacs" / domain / cls, [f"{cls}_{i:02d}.png" for i in range(10)],
                          size=(47 + 10 * label, 33), seed=seed + 2 * label)


def test_pacs_loads_a_domain_folder_split_80_20(tmp_path, no_network):
    _fake_pacs(tmp_path)
    train = load_dataset("pacs", "train", root=tmp_path, domain="sketch", image_size=24)
    test = load_dataset("pacs", "test", root=tmp_path, domain="sketch", image_size=24)
    assert train.classes == test.classes == ["dog", "house"]
    assert len(train) + len(test) == 20 and 0 < len(test) < len(train)
    train_files, test_files = {p for p, _ in train.samples}, {p for p, _ in test.samples}
    assert not train_files & test_files and all("/sketch/" in p for p in train_files | test_files)
    _check_images(test, 24)
    again = load_dataset("pacs", "test", root=tmp_path, domain="sketch", image_size=24)
    assert again.samples == test.samples  # deterministic
    assert torch.equal(again[0][0], test[0][0])


def test_pacs_domain_selects_the_folder(tmp_path, no_network):
    _fake_pacs(tmp_path)
    sketch = load_dataset("pacs", "test", root=tmp_path, domain="sketch", image_size=16)
    photo = load_dataset("pacs", "test", root=tmp_path, domain="photo", image_size=16)
    assert all("/photo/" in p for p, _ in photo.samples)
    assert [p.replace("/photo/", "/sketch/") for p, _ in photo.samples] == [p for p, _ in sketch.samples]
    assert not torch.equal(sketch[0][0], photo[0][0])  # other pixels, same split by name
    with pytest.raises(DatasetUnavailable, match="art_painting"):  # the default domain is absent here
        load_dataset("pacs", "test", root=tmp_path)


def test_pacs_unknown_domain_lists_the_four(tmp_path):
    with pytest.raises(ValueError) as caught:
        load_dataset("pacs", "test", root=tmp_path, domain="painting")
    assert all(domain in str(caught.value) for domain in PACS_DOMAINS)


def test_pacs_rejects_unknown_options(tmp_path):
    with pytest.raises(ValueError, match="unknown option"):
        load_dataset("pacs", "test", root=tmp_path, seed=1)


def test_dtd_loads_torchvision_layout_resized_and_cropped(tmp_path, no_network):
    # torchvision's DTD checks only that dtd/dtd exists (no md5 sums), then reads labels/<split>1.txt
    data = tmp_path / "dtd" / "dtd"
    names = {"banded": ["banded_0001.jpg", "banded_0002.jpg"], "woven": ["woven_0001.jpg", "woven_0002.jpg"]}
    for cls, files in names.items():
        _write_images(data / "images" / cls, files, size=(90, 60))
    (data / "labels").mkdir()
    (data / "labels" / "test1.txt").write_text("banded/banded_0001.jpg\nwoven/woven_0001.jpg\nwoven/woven_0002.jpg\n")
    (data / "labels" / "train1.txt").write_text("banded/banded_0002.jpg\n")
    test = load_dataset("dtd", "test", root=tmp_path, image_size=48)
    assert test.classes == ["banded", "woven"] and len(test) == 3
    _check_images(test, 48)
    assert [test[i][1] for i in range(3)] == [0, 1, 1]
    # shorter side 60 → 48, so the 90×60 image becomes 72×48, centre-cropped to 48×48
    raw = np.asarray(Image.open(data / "images" / "woven" / "woven_0001.jpg").resize((72, 48), Image.BILINEAR))
    expected = torch.from_numpy(raw[:, 12:60].copy()).permute(2, 0, 1).float() / 255
    assert (test[1][0] - expected).abs().mean() < 0.02
    assert len(load_dataset("dtd", "train", root=tmp_path, image_size=48)) == 1


def test_incomplete_dtd_is_unavailable_not_a_download_error(tmp_path, no_network):
    (tmp_path / "dtd" / "dtd" / "images").mkdir(parents=True)  # no labels/
    with pytest.raises(DatasetUnavailable, match="is not under"):
        load_dataset("dtd", "test", root=tmp_path)


def test_imagenet_folder_still_resized_and_cropped(tmp_path):
    _write_images(tmp_path / "imagenet" / "val" / "n01440764", ["a.JPEG", "b.JPEG"], size=(50, 80))
    ds = load_dataset("imagenet", "test", root=tmp_path, image_size=32)
    assert ds.classes == ["n01440764"] and len(ds) == 2
    _check_images(ds, 32)


def test_offline_sets_are_unchanged(tmp_path):
    # checksums computed before the out-of-distribution sets were added
    patches = load_dataset("patches", "test", root=tmp_path, image_size=16)
    digest = hashlib.sha256(patches.images.tobytes() + patches.labels.tobytes()).hexdigest()
    assert patches.images.shape == (1000, 16, 16, 3)
    assert digest == "6f260b6ff541999237f0caeae4ff2043b043d49e4c4eef15bf3820e5c8acb8cb"
    canaries = load_dataset("canaries", root=tmp_path)
    digest = hashlib.sha256()
    for image in canaries.images:
        digest.update(str(image.shape).encode())
        digest.update(image.tobytes())
    assert canaries.classes == ["clock", "text", "page", "brick", "grass", "gravel", "face"]
    assert digest.hexdigest() == "ea7c9f2f6946ea877c9f7ce2771c1fa2a5f4764a525a48b56e8060b6371324df"
