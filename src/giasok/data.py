"""Client data (paper §4.2 and Appx B).

``load_dataset(name, split, root, download)`` returns a torch ``Dataset`` of float images in [0, 1]
(C×H×W) with integer labels and a ``.classes`` list. ``root`` is the data folder; ``None`` (the default)
means ``giasok.paths.data_dir()`` (``$GIASOK_DATA``, default ``data``).

Real data sets, for machines with a network or the files already in place:

* ``cifar10`` / ``cifar100`` — torchvision's loaders (the paper's §4.1, §4.2.1, §5, §6 data).
* ``imagenet`` — an ``ImageFolder`` under ``root/imagenet/{train,val}`` resized and centre-cropped to
  ``image_size`` (the paper's high-resolution points of Fig. 4a).

Offline built-ins, made deterministically from photographs that ship inside scikit-image and
scikit-learn and cached in ``<root>/cache`` (``giasok.paths.cache_dir``; the ``smoke`` and ``cpu`` profiles
use these):

* ``patches`` — ten classes, one per source photograph, of ``image_size``² colour crops. A photograph's
  left three quarters feed the train split and its right quarter the test split, so no crop (nor any
  pixel) is shared between splits.
* ``canaries`` — whole photographs with semantic details or textures (clock, text, page, brick, grass,
  gravel, a face), kept out of ``patches``; one image per class, at full resolution.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from . import paths
from ._io import atomic_write

__all__ = ["DATASETS", "DatasetUnavailable", "ImageDataset", "load_dataset", "image_size_option", "victim_batch",
           "PATCH_SOURCES",
           "CANARY_SOURCES"]


class DatasetUnavailable(RuntimeError):
    """A data set's files are not on this machine (and could not be downloaded)."""


class ImageDataset(Dataset):
    """Images held in memory as uint8 (N×H×W×C) with integer labels; items are float C×H×W in [0, 1]."""

    def __init__(self, images, labels, classes):
        self.images = images  # a uint8 array N×H×W×C, or a list of such arrays of different sizes
        self.labels = np.asarray(labels, dtype=np.int64)
        self.classes = list(classes)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        image = torch.from_numpy(np.ascontiguousarray(self.images[i])).permute(2, 0, 1).float() / 255.0
        return image, int(self.labels[i])


def _skimage(name):
    import skimage.data

    image = getattr(skimage.data, name)()
    return image[0] if isinstance(image, tuple) else image  # stereo_motorcycle → left view


def _sklearn(filename):
    from sklearn.datasets import load_sample_image

    return load_sample_image(filename)


# class name -> loader of a uint8 photograph (H×W×3 or H×W) shipped inside a package
PATCH_SOURCES = {
    "astronaut": lambda: _skimage("astronaut"),
    "cat": lambda: _skimage("chelsea"),
    "coffee": lambda: _skimage("coffee"),
    "rocket": lambda: _skimage("rocket"),
    "palace": lambda: _sklearn("china.jpg"),
    "flower": lambda: _sklearn("flower.jpg"),
    "galaxies": lambda: _skimage("hubble_deep_field"),
    "retina": lambda: _skimage("retina"),
    "tissue": lambda: _skimage("immunohistochemistry"),
    "motorcycle": lambda: _skimage("stereo_motorcycle"),
}
CANARY_SOURCES = {
    "clock": lambda: _skimage("clock"),
    "text": lambda: _skimage("text"),
    "page": lambda: _skimage("page"),
    "brick": lambda: _skimage("brick"),
    "grass": lambda: _skimage("grass"),
    "gravel": lambda: _skimage("gravel"),
    "face": lambda: _skimage("lfw_subset")[0],
}


def _rgb(image):
    image = np.asarray(image)
    if image.dtype != np.uint8:  # float images in [0, 1] (lfw_subset)
        image = np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return image[..., :3]


def _resize_shorter_side(image, size):
    from skimage.transform import resize

    h, w = image.shape[:2]
    scale = size / min(h, w)
    out = resize(image, (round(h * scale), round(w * scale)), anti_aliasing=True, preserve_range=True)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _save_npz(path: Path, **arrays):
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))


def _make_patches(split, image_size, per_class, seed):
    """Crops of ``image_size``² from each photograph resized so its shorter side is 4·image_size."""
    rng = np.random.default_rng(seed + (0 if split == "train" else 1))
    images, labels = [], []
    for label, load in enumerate(PATCH_SOURCES.values()):
        photo = _resize_shorter_side(_rgb(load()), 4 * image_size)
        h, w = photo.shape[:2]
        border = int(0.75 * w)  # train crops lie left of it, test crops right of it
        lo, hi = (0, border - image_size) if split == "train" else (border, w - image_size)
        ys = rng.integers(0, h - image_size + 1, per_class)
        xs = rng.integers(lo, hi + 1, per_class)
        images += [photo[y:y + image_size, x:x + image_size] for y, x in zip(ys, xs)]
        labels += [label] * per_class
    return np.stack(images), np.array(labels)


def _patches(root, split, image_size=32, seed=0):
    if image_size < 8:
        raise ValueError(f"patches: image_size must be ≥ 8, got {image_size}")
    per_class = 500 if split == "train" else 100
    path = paths.cache_dir(root) / f"patches-{split}-{image_size}px-{per_class}-seed{seed}.npz"
    if not path.exists():
        images, labels = _make_patches(split, image_size, per_class, seed)
        _save_npz(path, images=images, labels=labels)
    with np.load(path) as cached:
        return ImageDataset(cached["images"], cached["labels"], list(PATCH_SOURCES))


def _canaries(root, split):
    path = paths.cache_dir(root) / "canaries.npz"
    if not path.exists():
        _save_npz(path, **{name: _rgb(load()) for name, load in CANARY_SOURCES.items()})
    with np.load(path) as cached:
        images = [cached[name] for name in CANARY_SOURCES]
    return ImageDataset(images, range(len(images)), list(CANARY_SOURCES))


def _torchvision_cifar(cls, folder, root, split, download):
    from torchvision import transforms

    try:
        dataset = cls(root=str(root), train=(split == "train"), download=download, transform=transforms.ToTensor())
    except RuntimeError as error:  # torchvision: "Dataset not found or corrupted"
        raise DatasetUnavailable(
            f"{cls.__name__} is not under {Path(root).resolve()}/{folder}. On a machine with a network call "
            f"load_dataset(..., download=True), or copy the extracted '{folder}' folder there.") from error
    except OSError as error:  # the download itself failed (no network)
        raise DatasetUnavailable(
            f"could not download {cls.__name__} ({error}). Download it on a machine with a network "
            f"(load_dataset(..., download=True)) and copy '{folder}' to {Path(root).resolve()}.") from error
    return dataset


def _cifar10(root, split, download):
    from torchvision.datasets import CIFAR10

    return _torchvision_cifar(CIFAR10, "cifar-10-batches-py", root, split, download)


def _cifar100(root, split, download):
    from torchvision.datasets import CIFAR100

    return _torchvision_cifar(CIFAR100, "cifar-100-python", root, split, download)


def _imagenet(root, split, image_size=224):
    from torchvision import datasets, transforms

    folder = Path(root) / "imagenet" / ("train" if split == "train" else "val")
    if not folder.is_dir():
        raise DatasetUnavailable(
            f"ImageNet is not under {folder.resolve()}. ImageNet cannot be downloaded automatically: get "
            f"ILSVRC-2012 from image-net.org and arrange it as {folder}/<wnid>/<image>.JPEG.")
    transform = transforms.Compose([transforms.Resize(image_size), transforms.CenterCrop(image_size),
                                    transforms.ToTensor()])
    return datasets.ImageFolder(str(folder), transform=transform)


DATASETS = ("patches", "canaries", "cifar10", "cifar100", "imagenet")


def load_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None, download: bool = False,
                 **options) -> Dataset:
    """Load data set ``name`` (one of ``DATASETS``) from the data folder ``root`` (default
    ``giasok.paths.data_dir()``); ``options``: ``image_size`` for patches and imagenet.

    >>> ds = load_dataset("patches", "test")
    >>> image, label = ds[0]; image.shape, ds.classes[label]
    (torch.Size([3, 32, 32]), 'astronaut')
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    allowed = {"patches": {"image_size", "seed"}, "imagenet": {"image_size"}}.get(name, set())
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; available: {', '.join(DATASETS)}")
    if set(options) - allowed:
        raise ValueError(f"{name}: unknown option(s) {sorted(set(options) - allowed)}; available: {sorted(allowed)}")
    root = paths.data_dir() if root is None else Path(root)
    if name == "patches":
        return _patches(root, split, **options)
    if name == "canaries":
        return _canaries(root, split)
    if name == "cifar10":
        return _cifar10(root, split, download)
    if name == "cifar100":
        return _cifar100(root, split, download)
    return _imagenet(root, split, **options)


def image_size_option(name: str, image_size: int) -> dict:
    """``load_dataset`` options that ask for ``image_size``: only ``patches`` and ``imagenet`` take one (the
    CIFAR sets are 32² as shipped; callers resize them if they must)."""
    return {"image_size": image_size} if name in ("patches", "imagenet") else {}


def victim_batch(dataset: Dataset, size: int, *, seed: int, distinct_labels: bool = False):
    """Draw ``size`` samples (images N×C×H×W, labels N) from ``dataset`` with ``seed``.

    ``distinct_labels`` draws at most one sample per class, as GIA papers often do for small batches.
    """
    n_classes = len(dataset.classes)
    if size < 1 or size > len(dataset) or (distinct_labels and size > n_classes):
        limit = n_classes if distinct_labels else len(dataset)
        raise ValueError(f"cannot draw a batch of {size} from {len(dataset)} samples "
                         f"({'distinct labels, ' if distinct_labels else ''}at most {limit})")
    order = np.random.default_rng(seed).permutation(len(dataset))
    chosen, seen = [], set()
    for i in order:
        if distinct_labels:
            label = dataset[int(i)][1]
            if label in seen:
                continue
            seen.add(label)
        chosen.append(int(i))
        if len(chosen) == size:
            break
    images, labels = zip(*(dataset[i] for i in chosen))
    return torch.stack(images), torch.tensor(labels, dtype=torch.long)
