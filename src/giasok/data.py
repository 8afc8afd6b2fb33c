"""Client data (paper §4.2 and Appx B).

``load_dataset(name, split, root, download)`` returns a torch ``Dataset`` of float images in [0, 1]
(C×H×W) with integer labels and a ``.classes`` list. ``root`` is the data folder; ``None`` (the default)
means ``giasok.paths.data_dir()`` (``$GIASOK_DATA``, default ``data``).

Real data sets, for machines with a network or the files already in place:

* ``cifar10`` / ``cifar100`` — torchvision's loaders (the paper's §4.1, §4.2.1, §5, §6 data).
* ``imagenet`` — an ``ImageFolder`` under ``root/imagenet/{train,val}`` resized and centre-cropped to
  ``image_size`` (the paper's high-resolution points of Fig. 4a).

Out-of-distribution sets for the generative-prior attack (§4.2.2), all resized (shorter side) and centre-cropped
to ``image_size`` (default 224, as ``imagenet``):

* ``dtd`` — the Describable Textures Dataset ("Textures"), torchvision's loader under ``root/dtd``; splits
  ``train``/``test`` of partition 1 (its ``val`` split is not used).
* ``places365`` — Places365-Standard ("Places"), torchvision's loader on the small (256²) images under
  ``root/places365``; ``train`` is ``train-standard`` (1.8 M images, a 24 GB archive), ``test`` is ``val``
  (36 500 images, 0.5 GB).
* ``lfw`` — Labeled Faces in the Wild (people, deep-funneled), torchvision's ``LFWPeople`` under ``root/lfw-py``;
  ``train``/``test`` are its ``DevTrain``/``DevTest`` lists. It cannot be downloaded automatically any more.
* ``pacs`` — PACS ("Styles"): one ``domain`` (``art_painting``, ``cartoon``, ``photo`` or ``sketch``) of an
  ``ImageFolder`` ``root/pacs/<domain>/<class>/<image>``, split 80/20 by a fixed hash of ``<class>/<image>``.

The paper's "Objects" set (ImageNet-21K minus ImageNet-1K) is not provided.

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

import hashlib
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from . import paths
from ._io import atomic_write

__all__ = ["DATASETS", "DatasetUnavailable", "ImageDataset", "load_dataset", "image_size_option", "victim_batch",
           "PATCH_SOURCES",
           "CANARY_SOURCES", "PACS_DOMAINS"]


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


@contextmanager
def _torchvision_errors(missing, failed):
    """Turn a torchvision loader's "not found" ``RuntimeError`` into ``DatasetUnavailable(missing)`` and an
    ``OSError`` (a failed download, or a file missing from an incomplete copy) into
    ``DatasetUnavailable(failed(error))``."""
    try:
        yield
    except DatasetUnavailable:
        raise
    except RuntimeError as error:  # torchvision: "Dataset not found or corrupted"
        raise DatasetUnavailable(missing) from error
    except OSError as error:  # the download itself failed (no network)
        raise DatasetUnavailable(failed(error)) from error


def _resize_crop(image_size):
    """PIL image → float C×``image_size``×``image_size`` tensor: shorter side resized, then centre-cropped."""
    from torchvision import transforms

    return transforms.Compose([transforms.Resize(image_size), transforms.CenterCrop(image_size),
                               transforms.ToTensor()])


def _torchvision_cifar(cls, folder, root, split, download):
    from torchvision import transforms

    with _torchvision_errors(
            f"{cls.__name__} is not under {Path(root).resolve()}/{folder}. On a machine with a network call "
            f"load_dataset(..., download=True), or copy the extracted '{folder}' folder there.",
            lambda error: f"could not download {cls.__name__} ({error}). Download it on a machine with a network "
                          f"(load_dataset(..., download=True)) and copy '{folder}' to {Path(root).resolve()}."):
        return cls(root=str(root), train=(split == "train"), download=download, transform=transforms.ToTensor())


def _cifar10(root, split, download):
    from torchvision.datasets import CIFAR10

    return _torchvision_cifar(CIFAR10, "cifar-10-batches-py", root, split, download)


def _cifar100(root, split, download):
    from torchvision.datasets import CIFAR100

    return _torchvision_cifar(CIFAR100, "cifar-100-python", root, split, download)


def _imagenet(root, split, image_size=224):
    from torchvision import datasets

    folder = Path(root) / "imagenet" / ("train" if split == "train" else "val")
    if not folder.is_dir():
        raise DatasetUnavailable(
            f"ImageNet is not under {folder.resolve()}. ImageNet cannot be downloaded automatically: get "
            f"ILSVRC-2012 from image-net.org and arrange it as {folder}/<wnid>/<image>.JPEG.")
    return datasets.ImageFolder(str(folder), transform=_resize_crop(image_size))


def _download_failed(name, how):
    return lambda error: (f"could not download {name} ({error}). Download it on a machine with a network "
                          f"(load_dataset(..., download=True)) or {how}")


def _dtd(root, split, download, image_size=224):
    """Describable Textures (Cimpoi et al., 2014), partition 1; torchvision reads ``root/dtd/dtd``."""
    from torchvision.datasets import DTD

    folder = (Path(root) / "dtd").resolve()
    how = (f"get dtd-r1.0.1.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/dtd/ and extract it into {folder}, "
           f"so that {folder}/dtd/images/<class>/<image>.jpg and {folder}/dtd/labels/{{train,val,test}}1.txt exist.")
    missing = (f"DTD is not under {folder}/dtd. On a machine with a network call load_dataset('dtd', ..., "
               f"download=True) (0.6 GB), or {how}")
    with _torchvision_errors(missing, _download_failed("DTD", how) if download else lambda error: missing):
        return DTD(str(root), split=split, partition=1, download=download, transform=_resize_crop(image_size))


_PLACES_URL = "http://data.csail.mit.edu/places/places365/"


def _places365(root, split, download, image_size=224):
    """Places365-Standard (Zhou et al., 2017), small (256²) images; torchvision reads ``root/places365``.

    ``train`` is ``train-standard``: 1.8 M images, a 24 GB archive (download=True fetches all of it); ``test`` is
    ``val``: 36 500 images, 0.5 GB."""
    from torchvision.datasets import Places365

    folder = (Path(root) / "places365").resolve()
    places_split, archive, images = (("train-standard", "train_256_places365standard.tar", "data_256_standard")
                                     if split == "train" else ("val", "val_256.tar", "val_256"))
    how = (f"get filelist_places365-standard.tar and {archive} from {_PLACES_URL} and extract both into {folder}"
           + (" (then rename the extracted data_256 folder to data_256_standard)." if split == "train" else "."))
    missing = (f"Places365 ({places_split}, 256²) is not under {folder}: torchvision needs "
               f"categories_places365.txt, places365_{places_split.replace('-', '_')}.txt and the folder {images} "
               f"there. On a machine with a network call load_dataset('places365', ..., download=True) "
               f"({'24 GB' if split == 'train' else '0.5 GB'}), or {how}")
    with _torchvision_errors(missing, _download_failed("Places365", how) if download else lambda error: missing):
        dataset = Places365(str(folder), split=places_split, small=True, download=download,
                            transform=_resize_crop(image_size))
    if not Path(dataset.images_dir).is_dir():
        raise DatasetUnavailable(missing)
    return dataset


def _lfw(root, split, download, image_size=224):
    """Labeled Faces in the Wild (Huang et al., 2007), people, deep-funneled; torchvision reads ``root/lfw-py``.

    torchvision no longer downloads LFW, so ``download`` is ignored."""
    from torchvision.datasets import LFWPeople

    folder = (Path(root) / "lfw-py").resolve()
    lists = "peopleDevTrain.txt" if split == "train" else "peopleDevTest.txt"
    missing = (f"LFW (deep-funneled) is not under {folder}, and it cannot be downloaded automatically any more. "
               f"torchvision needs there the original lfw-deepfunneled.tgz and its extracted folder "
               f"lfw-deepfunneled/<person>/<person>_<nnnn>.jpg, {lists} and lfw-names.txt (the archive and the lists "
               f"are checked against their md5 sums), all from http://vis-www.cs.umass.edu/lfw/ or a copy of it; "
               f"torchvision points to the mirror https://www.kaggle.com/datasets/jessicali9530/lfw-dataset.")
    with _torchvision_errors(missing, lambda error: missing):
        dataset = LFWPeople(str(root), split=split, image_set="deepfunneled", transform=_resize_crop(image_size))
    if not Path(dataset.images_dir).is_dir():
        raise DatasetUnavailable(missing)
    dataset.classes = list(dataset.class_to_idx)  # identities, in lfw-names.txt order (= label order)
    return dataset


PACS_DOMAINS = ("art_painting", "cartoon", "photo", "sketch")


def _pacs_split(path, folder):
    """``"test"`` for one image in five, chosen by a fixed hash of ``<class>/<image>``, else ``"train"``."""
    name = Path(path).relative_to(folder).as_posix()
    return "test" if int(hashlib.sha256(f"giasok-pacs:{name}".encode()).hexdigest(), 16) % 5 == 0 else "train"


def _pacs(root, split, download, image_size=224, domain="art_painting"):
    """PACS (Li et al., 2017, "Deeper, broader and artier domain generalization"), one ``domain``.

    PACS ships no train/test split of one domain, so the images are split deterministically: an image is in
    ``test`` when a fixed hash of ``<class>/<image>`` is 0 modulo 5 (about 20 %), else in ``train``; the split of
    an image does not depend on which other images are present. Both splits list every class folder.
    ``download`` is ignored (PACS cannot be downloaded automatically)."""
    from torchvision import datasets
    from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

    if domain not in PACS_DOMAINS:
        raise ValueError(f"pacs: unknown domain {domain!r}; available: {', '.join(PACS_DOMAINS)}")
    folder = (Path(root) / "pacs" / domain).resolve()
    missing = (f"PACS ({domain}) is not under {folder}. PACS cannot be downloaded automatically: get PACS (Li et "
               f"al., 2017, \"Deeper, broader and artier domain generalization\") from its authors' page "
               f"https://domaingeneralization.github.io/#data or a mirror (e.g. Hugging Face flwrlabs/pacs, Kaggle) "
               f"and arrange it as {folder.parent}/<domain>/<class>/<image> with <domain> one of "
               f"{', '.join(PACS_DOMAINS)} and <class> one of dog, elephant, giraffe, guitar, horse, house, person "
               f"(e.g. {folder.parent}/sketch/dog/<image>.png).")
    if not folder.is_dir():
        raise DatasetUnavailable(missing)

    def in_split(path):
        return has_file_allowed_extension(path, IMG_EXTENSIONS) and _pacs_split(path, folder) == split

    with _torchvision_errors(missing, lambda error: missing):  # FileNotFoundError: no class folder
        return datasets.ImageFolder(str(folder), transform=_resize_crop(image_size), is_valid_file=in_split,
                                    allow_empty=True)


DATASETS = ("patches", "canaries", "cifar10", "cifar100", "imagenet", "dtd", "places365", "lfw", "pacs")
_OOD_LOADERS = {"dtd": _dtd, "places365": _places365, "lfw": _lfw, "pacs": _pacs}
_IMAGE_SIZE_SETS = ("patches", "imagenet", *_OOD_LOADERS)


def load_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None, download: bool = False,
                 **options) -> Dataset:
    """Load data set ``name`` (one of ``DATASETS``) from the data folder ``root`` (default
    ``giasok.paths.data_dir()``); ``options``: ``image_size`` for patches, imagenet, dtd, places365, lfw and pacs
    (see ``image_size_option``), ``seed`` for patches, ``domain`` for pacs (one of ``PACS_DOMAINS``).
    ``download`` passes through to torchvision for cifar10, cifar100, dtd and places365; the other sets cannot be
    downloaded automatically. A set whose files are absent raises ``DatasetUnavailable`` naming the folder looked
    in and how to get the files.

    >>> ds = load_dataset("patches", "test")
    >>> image, label = ds[0]; image.shape, ds.classes[label]
    (torch.Size([3, 32, 32]), 'astronaut')
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    allowed = {"patches": {"image_size", "seed"}, "imagenet": {"image_size"}, "dtd": {"image_size"},
               "places365": {"image_size"}, "lfw": {"image_size"}, "pacs": {"image_size", "domain"}}.get(name, set())
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
    if name in _OOD_LOADERS:
        return _OOD_LOADERS[name](root, split, download, **options)
    return _imagenet(root, split, **options)


def image_size_option(name: str, image_size: int) -> dict:
    """``load_dataset`` options that ask for ``image_size``: ``patches``, ``imagenet`` and the out-of-distribution
    sets (``dtd``, ``places365``, ``lfw``, ``pacs``) take one (the CIFAR sets are 32² as shipped; callers resize
    them if they must)."""
    return {"image_size": image_size} if name in _IMAGE_SIZE_SETS else {}


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
