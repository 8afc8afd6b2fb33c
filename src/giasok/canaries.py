"""Semantic canaries: images whose private detail can be read back by a program (paper §4.2.2).

The paper's §4.2.2 observes that gradient inversion attacks recover an image's global appearance — its
colours, background and contours — but not the semantic details that carry the private information: the time
on a clock, the digits of a number, the letters of a text. The paper judges this by eye. This module makes it
measurable: it renders *canaries*, synthetic images whose one private detail is known exactly, and *readers*
that read that detail back from an image, so that "the attack recovered the clock face but not the time"
becomes "the reconstruction's time is off by 170 minutes, where a guess is off by 180".

Clocks (``clock_face``, ``read_clock``, ``clock_error``). An analogue face — a background, a round dial with a
rim, 12 tick marks, a short wide hour hand and a long thin minute hand — showing ``minutes`` past 12:00 on a
12-hour dial (0 ≤ minutes < 720). It is drawn with PIL at 8 times the size with hard edges and averaged over
8×8 blocks (a box filter), so every pixel is the exact area coverage of background, dial and ink: hands stay
visible at 16². The reader compares an image with the faces of all 720 times at its size and returns the best
one. A face of any colours is, channel by channel, an affine combination of two coverage maps — the dial disc
and the ink (rim, ticks, centre cap and the hands at time t) — so the reader fits that model by least squares
for every t (free colours per channel) and returns the t it explains best: the colours of a reconstruction do
not matter, only where its hands are. It is an ideal observer, not a person: it uses every bit of contrast, so
a heavily blurred face, illegible to the eye, may still give away its hour (``read_clock``). ``clock_error`` is
the circular distance on the 12-hour dial, in [0, 360] minutes; a guess is off by 180 on average (``CHANCE``).

Supported sizes: 16 to 128 pixels. At 16² the minute hand's tip is 5.2 pixels from the centre and one minute
turns it by 6°, about 0.54 pixel: one pixel of the tip is 1.9 minutes (0.9 minute at 32²).

Text (``text_image``, ``glyph_cells``, ``read_text``, ``text_accuracy``). One to ``MAX_CHARS`` = 4 characters
of ``ALPHABET`` (digits and upper-case letters) in one row of equal cells, a quarter of the image wide and half
of it tall, centred; each glyph of DejaVu Sans Bold — the copy matplotlib bundles, so the rendering is the
same wherever giasok is installed with the same matplotlib and Pillow — condensed to fit its cell and
anti-aliased by area averaging. The layout of a given (length, size) is fixed, so a reader knows where glyph i
is (``glyph_cells``). The reader is a small CNN that classifies each cell (with a margin of two pixels around
it). It is trained once per size, on rendered strings with random colours (either contrast), random shifts of
up to two pixels, mild blur and noise, so that a faithful reconstruction reads back and a blurred one does not;
then cached in ``giasok.paths.generators_dir()`` beside the DCGANs and restorers, as
``glyph-reader-<size>px-<hash>.pt`` with ``giasok.paths.trained_network_hash`` of its configuration (which
includes a digest of the font file). Training takes 15 to 20 seconds at 32² on one CPU thread (about 50 at
64²). Like ``giasok.restoration``'s restorer, it trains on one torch thread on the CPU, every random draw comes
from one generator seeded with the configuration's seed (retraining gives the same weights, bit for bit, on one
machine), and the caller's global RNG is left as it was.

Supported sizes: 32, 40, 48, 56 and 64 pixels. Below 32² a cell would be under 8 pixels wide and
the glyphs are no longer legible, to a person or to the reader.

Canaries (``canaries``): ``count`` images of one ``KINDS`` with random contents and random pleasant colours,
deterministic in ``seed`` — clocks with their minutes, four-digit numbers, or three-letter words from
``WORDS`` — and ``CHANCE``, what a guess scores on each.
"""
from __future__ import annotations

import colorsys
import dataclasses
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from . import paths
from ._io import atomic_write, load_cached_state

__all__ = ["ALPHABET", "DIGITS", "KINDS", "WORDS", "MAX_CHARS", "CHANCE", "clock_face", "read_clock", "clock_error",
           "text_image", "glyph_cells", "read_text", "text_accuracy", "canaries"]

DIGITS = "0123456789"
ALPHABET = DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LETTERS = ALPHABET[len(DIGITS):]
KINDS = ("clock", "digits", "words")
MAX_CHARS = 4
_DIGITS_LENGTH = 4  # a "digits" canary is a four-digit number, like a PIN
# Three-letter words, spread over the alphabet so that no letter is frequent at any position (a reader that
# always answers the same letter scores close to chance, 1/26).
WORDS = ("CAT", "SUN", "MAP", "KEY", "BOX", "JAR", "FIG", "OWL", "PEN", "DOG", "ICE", "RUG", "VAN", "WEB", "ZIP",
         "HUT", "LIP", "OAK", "EGG", "NUT", "YAK", "TOY", "ARM", "GYM", "FOX", "MUD", "SKY", "JET", "BUD", "COW",
         "ELF", "IVY")
CHANCE = {"clock": 180.0, "digits": 1 / len(DIGITS), "words": 1 / len(_LETTERS)}

_MINUTES = 720  # a 12-hour dial
_CLOCK_SIZES = range(16, 129)
_TEXT_SIZES = (32, 40, 48, 56, 64)
_SCALE = 8  # clocks are drawn at 8× and box-filtered down

# background, dial, ink (hands, ticks, rim): a pale blue-grey wall, a white dial, near-black hands
_CLOCK_COLOURS = ((0.78, 0.83, 0.88), (1.0, 1.0, 1.0), (0.08, 0.08, 0.15))
_TEXT_COLOURS = ((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))  # background, ink


# --------------------------------------------------------------------------------------------- checks

def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f"≥ {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


def _check_size(size, supported, what: str) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or int(size) not in supported:
        shown = f"{supported[0]} to {supported[-1]}" if isinstance(supported, range) else ", ".join(map(str, supported))
        raise ValueError(f"size: {what} supports sizes {shown}, got {size!r}")
    return int(size)


def _check_colours(colours, count: int, names: str, default):
    if colours is None:
        return default
    try:
        triples = tuple(tuple(float(c) for c in triple) for triple in colours)
    except (TypeError, ValueError):
        triples = ()
    if len(triples) != count or any(len(t) != 3 or not all(0.0 <= c <= 1.0 for c in t) for t in triples):
        raise ValueError(f"colours must be {count} RGB triples ({names}) with components in [0, 1], got {colours!r}")
    return triples


def _check_images(images, name: str = "images") -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{name} must be an N×3×H×W tensor, got {shape}")
    if images.shape[2] != images.shape[3]:
        raise ValueError(f"{name} must be square, got {images.shape[2]}×{images.shape[3]}")
    return images.detach().to("cpu", torch.float64)


def _rgb255(colour) -> tuple:
    return tuple(int(round(255 * c)) for c in colour)


# --------------------------------------------------------------------------------------------- clocks

def _clock_canvas(minutes: int | None, size: int, colours) -> np.ndarray:
    """The face drawn at ``_SCALE``× with hard edges (uint8, H×W×3); ``minutes=None`` draws it without hands."""
    from PIL import Image, ImageDraw

    background, dial, ink = (_rgb255(c) for c in colours)
    n = size * _SCALE
    image = Image.new("RGB", (n, n), background)
    draw = ImageDraw.Draw(image)
    c = n / 2
    radius = 0.46 * n
    rim = 0.06 * radius
    draw.ellipse((c - radius, c - radius, c + radius, c + radius), fill=ink)
    draw.ellipse((c - radius + rim, c - radius + rim, c + radius - rim, c + radius - rim), fill=dial)

    def bar(angle: float, inner: float, outer: float, width: float):
        """A rectangle along the direction ``angle`` (radians clockwise from 12) from ``inner`` to ``outer``."""
        dx, dy = np.sin(angle), -np.cos(angle)  # image rows grow downwards
        px, py = -dy * width / 2, dx * width / 2
        points = [(c + dx * r + sx * px, c + dy * r + sx * py) for r, sx in
                  ((inner, 1), (outer, 1), (outer, -1), (inner, -1))]
        draw.polygon(points, fill=ink)

    for hour in range(12):
        bar(hour * np.pi / 6, 0.74 * radius, radius - rim, 0.09 * radius)
    if minutes is not None:
        bar(minutes / _MINUTES * 2 * np.pi, -0.12 * radius, 0.52 * radius, 0.17 * radius)  # hour hand
        bar((minutes % 60) / 60 * 2 * np.pi, -0.12 * radius, 0.70 * radius, 0.08 * radius)  # minute hand
    cap = 0.1 * radius
    draw.ellipse((c - cap, c - cap, c + cap, c + cap), fill=ink)
    return np.asarray(image)


def _box_down(canvas: np.ndarray, scale: int) -> torch.Tensor:
    """H×W×3 uint8 at ``scale``× → 3×h×w float in [0, 1], each pixel the mean of its scale×scale block."""
    x = torch.from_numpy(np.array(canvas)).permute(2, 0, 1).to(torch.float64) / 255.0
    return nn.functional.avg_pool2d(x[None], scale)[0].to(torch.get_default_dtype())


def clock_face(minutes: int, size: int, *, colours=None) -> torch.Tensor:
    """A 3×size×size image in [0, 1] of an analogue clock showing ``minutes`` past 12:00 (0 ≤ minutes < 720).

    ``colours`` is (background, dial, hands) as RGB triples in [0, 1]; ``None`` means a white dial with dark
    hands on a pale blue-grey background. The same arguments give the same image, bit for bit. Sizes
    16 to 128."""
    minutes = _check_int("minutes", minutes, 0, _MINUTES - 1)
    size = _check_size(size, _CLOCK_SIZES, "clock_face")
    colours = _check_colours(colours, 3, "background, dial, hands", _CLOCK_COLOURS)
    return _box_down(_clock_canvas(minutes, size, colours), _SCALE)


# Primary colours as (background, dial, ink): a face drawn in them holds the coverage maps in its channels.
_PRIMARIES = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


@functools.lru_cache(maxsize=4)
def _clock_templates(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(Q, K): an orthonormal basis Q (P×2) of what every face of this size shares — the constant and the dial
    disc — and K (720×P), the ink of each time (rim, ticks, cap and hands) with that shared part projected out,
    each row scaled to unit norm (float64). P = size²."""
    static = _box_down(_clock_canvas(None, size, _PRIMARIES), _SCALE).double().reshape(3, -1)
    shared = torch.stack([torch.ones_like(static[0]), 1 - static[0]], dim=1)  # the constant, the dial disc
    q, _ = torch.linalg.qr(shared)
    ink = torch.stack([_box_down(_clock_canvas(t, size, _PRIMARIES), _SCALE).double().reshape(3, -1)[2]
                       for t in range(_MINUTES)])
    ink = ink - (ink @ q) @ q.T
    return q, ink / ink.norm(dim=1, keepdim=True)


def read_clock(images: torch.Tensor) -> torch.Tensor:
    """The time (integer minutes, 0 ≤ t < 720) each of the N×3×H×W ``images`` shows, as an N tensor of int64.

    Each image is compared with the faces of all 720 times at its size (``clock_face``), and the time whose face
    explains it best is returned. "Explains" is a least-squares fit in which the colours are free: a face in any
    colours is, channel by channel, a + b·disc + d·ink(t), with disc the coverage of the dial disc and ink(t)
    that of the rim, ticks and hands at time t (the blue channel of the face drawn in primary colours). So the
    image's channels are projected off the shared maps (1, disc), and the time maximising the energy ink(t)
    explains, Σ_c ⟨x̃_c, k̃_t⟩²/‖k̃_t‖², is returned: the least-squares (Gaussian maximum-likelihood) reading.

    That is a Pearson correlation per channel, squared and weighted by the channel's contrast, rather than the
    correlation of grey levels a plain template match would use: a reconstruction's colours may invert the
    contrast of ink and dial (light hands on a dark dial), which a signed correlation reads as the *worst*
    match, and two colours may share a grey level while differing in hue. The hands share one coefficient with
    the ticks and the rim, as on the face itself: that pins the sign of the hands to that of the ticks; given a
    coefficient of their own, a faint blob of hands can be read as bright hands at the opposite time, and a
    degraded face then scores *worse* than a guess.

    The reader is an ideal observer rather than a person: it uses every bit of contrast. A face blurred with
    σ = size/4, no longer legible by eye, still holds the hour hand's direction in faint gradients, and the
    reader finds it (a mean error of about 60 minutes, measured at 16² and 32²: the hour, not the time); noise
    of σ = 0.05 on top brings it to 90–120 minutes. An attacker could read as well.
    """
    x = _check_images(images)
    size = _check_size(x.shape[-1], _CLOCK_SIZES, "read_clock")
    q, ink = _clock_templates(size)
    x = x.reshape(x.shape[0], 3, -1)
    x = x - (x @ q) @ q.T
    scores = ((x @ ink.T) ** 2).sum(dim=1)  # N×720
    return scores.argmax(dim=1)


def clock_error(read, truth) -> torch.Tensor:
    """The circular difference between ``read`` and ``truth`` minutes on a 12-hour dial: values in [0, 360].

    Returned as floats (whole minutes for whole-minute inputs), so that ``.mean()`` works; compare with
    ``CHANCE["clock"]`` = 180, the mean error of a guess."""
    read = torch.as_tensor(read, dtype=torch.float64).reshape(-1)
    truth = torch.as_tensor(truth, dtype=torch.float64).reshape(-1)
    if read.shape != truth.shape:
        raise ValueError(f"read and truth must hold as many times, got {read.numel()} and {truth.numel()}")
    difference = torch.remainder(read - truth, _MINUTES)
    return torch.minimum(difference, _MINUTES - difference).to(torch.get_default_dtype())


# --------------------------------------------------------------------------------------------- text

def _font_path() -> Path:
    # matplotlib's own copy of DejaVu Sans Bold, not findfont's answer: findfont may prefer a copy installed on
    # the system, of another version, and the rendering would then differ between machines.
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"


@functools.lru_cache(maxsize=1)
def _font_digest() -> str:
    return hashlib.sha256(_font_path().read_bytes()).hexdigest()[:16]


def _cell_shape(size: int) -> tuple[int, int]:
    """(height, width) of a glyph cell: half the image tall, a quarter wide."""
    return size // 2, size // MAX_CHARS


def glyph_cells(length: int, size: int) -> list[tuple[int, int, int, int]]:
    """(top, left, height, width) in pixels of each glyph of a ``length``-character text at ``size``²: equal
    cells side by side, the row centred vertically and horizontally. Sizes 32 to 64 in steps of 8."""
    length = _check_int("length", length, 1, MAX_CHARS)
    size = _check_size(size, _TEXT_SIZES, "text")
    height, width = _cell_shape(size)
    top, left = (size - height) // 2, (size - length * width) // 2
    return [(top, left + i * width, height, width) for i in range(length)]


_FONT_PIXELS = 400  # the em size glyphs are rasterised at before they are area-averaged down to a cell


@functools.lru_cache(maxsize=8)
def _glyph_masks(size: int) -> torch.Tensor:
    """len(ALPHABET)×h×w ink coverage of each glyph in its cell (float64 in [0, 1]).

    Every glyph is rasterised at a 400-pixel em, then its box — its own ink width, and the height from the top
    of the tallest to the bottom of the lowest glyph, so glyphs share a baseline — is area-averaged into the cell
    with a margin of one pixel above and below and half a pixel on each side. All glyphs are scaled alike: by
    the height, and horizontally by at most that, so that the widest glyph fits (the font is condensed)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(_font_path()), _FONT_PIXELS)
    canvas = 2 * _FONT_PIXELS
    rendered, boxes = [], []
    for glyph in ALPHABET:
        image = Image.new("L", (canvas, canvas), 0)
        ImageDraw.Draw(image).text((_FONT_PIXELS // 2, _FONT_PIXELS * 3 // 2), glyph, fill=255, font=font,
                                   anchor="ls")
        rendered.append(image)
        boxes.append(image.getbbox())
    top = min(box[1] for box in boxes)
    bottom = max(box[3] for box in boxes)
    widest = max(box[2] - box[0] for box in boxes)
    height, width = _cell_shape(size)
    scale_y = (height - 2) / (bottom - top)  # cell pixels per source pixel
    scale_x = min(scale_y, (width - 1) / widest)
    masks = []
    for image, box in zip(rendered, boxes):
        centre = (box[0] + box[2]) / 2
        half = width / 2 / scale_x
        source = (centre - half, top - 1 / scale_y, centre + half, top + (height - 1) / scale_y)
        cell = image.resize((width, height), Image.Resampling.BOX, box=source)
        masks.append(torch.from_numpy(np.asarray(cell, dtype=np.float64) / 255.0))
    return torch.stack(masks)


def _check_text(text) -> str:
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_CHARS:
        raise ValueError(f"text must be a string of 1 to {MAX_CHARS} characters, got {text!r}")
    unknown = sorted(set(text) - set(ALPHABET))
    if unknown:
        raise ValueError(f"text {text!r} has characters outside ALPHABET (digits and upper-case letters): "
                         f"{''.join(unknown)!r}")
    return text


def _ink_map(indices: torch.Tensor, size: int) -> torch.Tensor:
    """N×size×size ink coverage of texts given as N×L glyph indices (all of one length L)."""
    masks = _glyph_masks(size)
    n, length = indices.shape
    cells = glyph_cells(length, size)
    out = torch.zeros(n, size, size, dtype=masks.dtype)
    for i, (top, left, height, width) in enumerate(cells):
        out[:, top:top + height, left:left + width] = masks[indices[:, i]]
    return out


def _colourise(ink: torch.Tensor, background: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """N×H×W coverage, N×3 colours → N×3×H×W images: background + (ink colour − background)·coverage."""
    return background[:, :, None, None] + (colour - background)[:, :, None, None] * ink[:, None]


def text_image(text: str, size: int, *, colours=None) -> torch.Tensor:
    """A 3×size×size image in [0, 1] of ``text`` (1 to ``MAX_CHARS`` characters of ``ALPHABET``) in the cells
    of ``glyph_cells(len(text), size)``. ``colours`` is (background, ink) as RGB triples in [0, 1]; ``None``
    means black on white. Deterministic; sizes 32 to 64 in steps of 8."""
    text = _check_text(text)
    size = _check_size(size, _TEXT_SIZES, "text_image")
    background, ink = _check_colours(colours, 2, "background, ink", _TEXT_COLOURS)
    indices = torch.tensor([[ALPHABET.index(ch) for ch in text]])
    image = _colourise(_ink_map(indices, size), torch.tensor([background], dtype=torch.float64),
                       torch.tensor([ink], dtype=torch.float64))[0]
    return image.clamp(0, 1).to(torch.get_default_dtype())


# --------------------------------------------------------------------------------------------- the reader

@dataclass(frozen=True)
class _ReaderConfig:
    """Everything that determines a trained glyph reader (and so its cache name)."""

    size: int
    font: str  # digest of the font file
    margin: int = 2  # pixels around a cell that the reader sees
    width: int = 32
    iterations: int = 1000
    batch_size: int = 32  # texts per batch: every cell of each is a sample
    lr: float = 4e-3  # the peak of a one-cycle schedule
    shift: int = 2  # random shifts of up to ±shift pixels
    blur: float = 0.8  # Gaussian blur σ drawn uniformly in [0, blur] pixels (times size/32)
    noise: float = 0.08  # Gaussian noise σ drawn uniformly in [0, noise]
    contrast: float = 0.25  # least distance between ink and background colours (RMS over channels)
    seed: int = 0


_RECIPE = 1  # bumped whenever _fit_reader would train different weights from the same configuration


class _GlyphReader(nn.Module):
    """A window of 3×(h+2m)×(w+2m) pixels → logits over ``ALPHABET``: three 3×3 convolutions (``width``/2,
    ``width`` and 2·``width`` channels, each with batch normalisation and a ReLU, max pooling after the first
    two), then two linear layers. The window is
    standardised first (per-channel mean removed, divided by its RMS), so the colours and the contrast of a text
    do not matter."""

    def __init__(self, height: int, width: int, channels: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, channels // 2, 3, padding=1), nn.BatchNorm2d(channels // 2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels // 2, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.BatchNorm2d(2 * channels), nn.ReLU())
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * channels * (height // 4) * (width // 4), 128),
                                  nn.ReLU(), nn.Linear(128, len(ALPHABET)))

    def forward(self, x):
        x = x - x.mean(dim=(2, 3), keepdim=True)
        x = x / x.pow(2).mean(dim=(1, 2, 3), keepdim=True).add(1e-6).sqrt()
        return self.head(self.features(x))


def _windows(images: torch.Tensor, length: int, margin: int) -> torch.Tensor:
    """N×3×S×S images → (N·length)×3×(h+2m)×(w+2m) windows around each glyph cell (image edges replicated)."""
    size = images.shape[-1]
    padded = nn.functional.pad(images, (margin,) * 4, mode="replicate")
    windows = [padded[:, :, top:top + height + 2 * margin, left:left + width + 2 * margin]
               for top, left, height, width in glyph_cells(length, size)]
    return torch.stack(windows, dim=1).flatten(0, 1)


def _reader_path(config: _ReaderConfig, root=None) -> Path:
    return paths.generators_dir(root) / (f"glyph-reader-{config.size}px-"
                                         f"{paths.trained_network_hash(config, _RECIPE)}.pt")


_READERS: dict = {}  # path → loaded reader, so that reading twice does not load twice


def _reader(size: int, progress: bool = True) -> _GlyphReader:
    """The glyph reader for ``size``: from memory, else from the cache, else trained and cached."""
    config = _ReaderConfig(size=size, font=_font_digest())
    path = _reader_path(config)
    if path in _READERS:
        return _READERS[path]
    height, width = _cell_shape(size)
    shape = (height + 2 * config.margin, width + 2 * config.margin)
    with torch.random.fork_rng(devices=[]):  # the modules' default initialisation draws from the global RNG
        reader = load_cached_state(path, lambda: _GlyphReader(*shape, config.width), "glyph reader",
                                   key="state_dict")
        if reader is None:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # the thread count changes the weights
            try:
                reader = _fit_reader(config, progress)
            finally:
                torch.set_num_threads(threads)
            state = {"config": dataclasses.asdict(config), "state_dict": reader.state_dict()}
            atomic_write(path, lambda f: torch.save(state, f))
    reader.margin = config.margin
    reader.eval()
    _READERS[path] = reader
    return reader


def _random_colours(n: int, contrast: float, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """N background and N ink colours, uniform in the RGB cube, redrawn until they are ``contrast`` apart."""
    background, ink = torch.rand(n, 3, generator=rng, dtype=torch.float64), torch.rand(n, 3, generator=rng,
                                                                                       dtype=torch.float64)
    for _ in range(100):
        close = (background - ink).pow(2).mean(dim=1).sqrt() < contrast
        if not close.any():
            break
        ink[close] = torch.rand(int(close.sum()), 3, generator=rng, dtype=torch.float64)
    return background, ink


def _gaussian_blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each of the N images by its own σ (pixels; 0 leaves it as it is), separably, edges replicated."""
    n, c, h, w = images.shape
    radius = max(1, int(np.ceil(3 * float(sigma.max()))))
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernel = torch.exp(-offsets[None] ** 2 / (2 * sigma.clamp_min(1e-3)[:, None].to(images.dtype) ** 2))
    kernel = kernel / kernel.sum(dim=1, keepdim=True)  # N×k
    weights = kernel.repeat_interleave(c, dim=0)  # (N·C)×k
    x = nn.functional.pad(images.reshape(1, n * c, h, w), (radius,) * 4, mode="replicate")
    x = nn.functional.conv2d(x, weights[:, None, None, :], groups=n * c)
    x = nn.functional.conv2d(x, weights[:, None, :, None], groups=n * c)
    return x.reshape(n, c, h, w)


def _training_batch(config: _ReaderConfig, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows and labels from ``batch_size`` random texts of one random length: random colours, shifts, blur and
    noise. Neighbouring glyphs are random too, so the reader learns to read a cell whatever surrounds it."""
    n, size = config.batch_size, config.size
    length = int(torch.randint(1, MAX_CHARS + 1, (1,), generator=rng))
    indices = torch.randint(len(ALPHABET), (n, length), generator=rng)
    background, ink = _random_colours(n, config.contrast, rng)
    images = _colourise(_ink_map(indices, size), background, ink)
    # shift each image by up to ±shift pixels (edges replicated): the reader's window does not move with it
    s = config.shift
    padded = nn.functional.pad(images, (s,) * 4, mode="replicate")
    dy, dx = torch.randint(0, 2 * s + 1, (2, n), generator=rng)
    images = torch.stack([padded[i, :, dy[i]:dy[i] + size, dx[i]:dx[i] + size] for i in range(n)])
    images = _gaussian_blur(images, config.blur * size / 32 * torch.rand(n, generator=rng, dtype=torch.float64))
    sigma = config.noise * torch.rand(n, 1, 1, 1, generator=rng, dtype=torch.float64)
    images = (images + sigma * torch.randn(images.shape, generator=rng, dtype=torch.float64)).clamp(0, 1)
    return _windows(images, length, config.margin).float(), indices.reshape(-1)


def _fit_reader(config: _ReaderConfig, progress: bool = True) -> _GlyphReader:
    """Adam on the cross-entropy of the reader's answer for every cell of random rendered texts (``_training_batch``).

    Every random draw comes from ``rng``, seeded with ``config.seed``, in a fixed order: the initial weights (the
    modules' default initialisation, from the global RNG seeded with ``config.seed`` inside the caller's fork),
    then per iteration the batch."""
    rng = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    height, width = _cell_shape(config.size)
    reader = _GlyphReader(height + 2 * config.margin, width + 2 * config.margin, config.width)
    optimizer = torch.optim.Adam(reader.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=config.iterations)
    bar = tqdm(range(config.iterations), desc=f"training the glyph reader ({config.size}px)", disable=not progress,
               mininterval=2.0)
    for it in bar:
        windows, labels = _training_batch(config, rng)
        loss = nn.functional.cross_entropy(reader(windows), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if it % 100 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    return reader


def read_text(images: torch.Tensor, length: int, *, alphabet: str = ALPHABET) -> list[str]:
    """The ``length``-character text each of the N×3×S×S ``images`` shows, read cell by cell (``glyph_cells``)
    by the glyph reader for size S, choosing among the characters of ``alphabet`` only (pass ``DIGITS`` for
    numbers). The reader is trained on first use (well under a minute on one thread at 32²) and cached in
    ``giasok.paths.generators_dir()``. Sizes 32 to 64 in steps of 8."""
    x = _check_images(images)
    size = _check_size(x.shape[-1], _TEXT_SIZES, "read_text")
    length = _check_int("length", length, 1, MAX_CHARS)
    if not isinstance(alphabet, str) or not alphabet or set(alphabet) - set(ALPHABET) or len(set(alphabet)) < len(
            alphabet):
        raise ValueError(f"alphabet must be a non-empty string of distinct characters of ALPHABET, got {alphabet!r}")
    reader = _reader(size)
    allowed = torch.tensor([ALPHABET.index(ch) for ch in alphabet])
    with torch.no_grad():
        logits = reader(_windows(x, length, reader.margin).float())
    chosen = allowed[logits[:, allowed].argmax(dim=1)].reshape(-1, length)
    return ["".join(ALPHABET[i] for i in row) for row in chosen.tolist()]


def text_accuracy(read: list[str], truth: list[str]) -> np.ndarray:
    """Per image, the share of ``truth``'s characters that ``read`` has at the same place (a missing one is
    wrong): 1 for a perfect read, ``CHANCE["digits"]`` or ``CHANCE["words"]`` on average for a guess."""
    read, truth = list(read), list(truth)
    if len(read) != len(truth):
        raise ValueError(f"read and truth must hold as many texts, got {len(read)} and {len(truth)}")
    for name, texts in (("read", read), ("truth", truth)):
        if not all(isinstance(t, str) for t in texts):
            raise ValueError(f"{name} must be a list of strings")
    if any(not t for t in truth):
        raise ValueError("truth has an empty text")
    return np.array([sum(a == b for a, b in zip(r, t)) / len(t) for r, t in zip(read, truth)], dtype=np.float64)


# --------------------------------------------------------------------------------------------- canaries

def _hsv(rng: np.random.Generator, saturation, value) -> tuple:
    return colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(*saturation), rng.uniform(*value))


def canaries(kind: str, count: int, size: int, *, seed: int) -> tuple[torch.Tensor, list]:
    """``count`` canaries of ``kind`` at ``size``², deterministic in ``seed``: (count×3×size×size images in [0, 1],
    their private contents).

    * ``"clock"`` — faces showing uniform random times (the contents are the minutes, ints in [0, 720)), with a
      pale dial, dark hands and a mid-tone background of random hues.
    * ``"digits"`` — four-digit numbers (strings, leading zeros kept), uniform over 0000–9999.
    * ``"words"`` — words drawn uniformly from ``WORDS``.

    Texts are dark ink on a pale background, or (one in four) pale on dark, of random hues. Each canary draws
    its contents, then its colours, from one generator in order, so the first k of ``count`` canaries do not
    depend on ``count``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    count = _check_int("count", count, 1)
    seed = _check_int("seed", seed, 0)
    size = _check_size(size, _CLOCK_SIZES if kind == "clock" else _TEXT_SIZES, f"a {kind} canary")
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    images, contents = [], []
    for _ in range(count):
        if kind == "clock":
            minutes = int(rng.integers(_MINUTES))
            colours = (_hsv(rng, (0.2, 0.6), (0.45, 0.85)), _hsv(rng, (0.0, 0.15), (0.92, 1.0)),
                       _hsv(rng, (0.3, 0.9), (0.05, 0.3)))
            images.append(clock_face(minutes, size, colours=colours))
            contents.append(minutes)
        else:
            if kind == "digits":
                text = "".join(DIGITS[i] for i in rng.integers(len(DIGITS), size=_DIGITS_LENGTH))
            else:
                text = WORDS[int(rng.integers(len(WORDS)))]
            pale, dark = _hsv(rng, (0.0, 0.35), (0.85, 1.0)), _hsv(rng, (0.3, 0.9), (0.05, 0.4))
            colours = (dark, pale) if rng.uniform() < 0.25 else (pale, dark)
            images.append(text_image(text, size, colours=colours))
            contents.append(text)
    return torch.stack(images), contents
