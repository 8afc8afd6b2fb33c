"""Semantic canaries (giasok.canaries, paper §4.2.2): the renderers are exact and deterministic, the readers read
a faithful image back and lose a degraded one, and the glyph reader is trained once and then loaded.

Bounds are derived, not tuned: where a test allows an error it says what the error stands for (a pixel of the
minute hand's tip, a guess, the standard error of a mean)."""
import math

import pytest
import torch
from scipy.ndimage import gaussian_filter

from giasok import canaries, paths
from giasok.canaries import (ALPHABET, CHANCE, DIGITS, KINDS, MAX_CHARS, WORDS, clock_error, clock_face,
                             glyph_cells, read_clock, read_text, text_accuracy, text_image)

LETTERS = ALPHABET[len(DIGITS):]


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """A Gaussian blur of σ pixels (edges reflected), image by image."""
    return torch.from_numpy(gaussian_filter(images.double().numpy(), sigma=(0, 0, sigma, sigma),
                                            mode="reflect")).float()


def noisy(images: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (images + sigma * torch.randn(images.shape, generator=g)).clamp(0, 1)


def uniform_noise(shape, seed: int) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def minutes_per_pixel(size: int) -> float:
    """How many minutes move the minute hand's tip by one pixel: the tip is at 0.70 of the dial's radius, 0.46 of
    the size (canaries._clock_canvas), and turns 6° a minute."""
    tip = 0.70 * 0.46 * size
    return 1 / (tip * 2 * math.pi / 60)


@pytest.fixture(scope="module")
def fresh_data(tmp_path_factory):
    """A data folder of its own (``$GIASOK_DATA``), so the glyph reader is trained here, once for the module."""
    root = tmp_path_factory.mktemp("canaries-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GIASOK_DATA", str(root))
        canaries._READERS.clear()
        yield root
    canaries._READERS.clear()


@pytest.fixture(scope="module")
def text_canaries(fresh_data):
    """40 digit and 40 word canaries at 32² with random colours, and what the reader reads on them."""
    out = {}
    for kind, alphabet in (("digits", DIGITS), ("words", LETTERS)):
        images, texts = canaries.canaries(kind, 40, 32, seed=11)
        out[kind] = images, texts, alphabet, read_text(images, len(texts[0]), alphabet=alphabet)
    return out


# --------------------------------------------------------------------------------------------- renderers

@pytest.mark.parametrize("size", [16, 32])
def test_clock_faces_are_deterministic_images_that_differ_with_the_time(size):
    face = clock_face(123, size)
    assert face.shape == (3, size, size) and face.dtype == torch.float32
    assert torch.equal(face, clock_face(123, size))  # bit for bit
    assert 0 <= face.min() and face.max() <= 1
    colours = ((0.2, 0.5, 0.3), (0.9, 0.9, 0.8), (0.4, 0.0, 0.1))
    assert torch.equal(clock_face(123, size, colours=colours), clock_face(123, size, colours=colours))
    assert not torch.equal(face, clock_face(123, size, colours=colours))
    # a minute later the minute hand has moved ~0.6 px (16²) or ~1.1 px (32²) at its tip: the pixels change
    for other in (124, 183, 600):
        assert (face - clock_face(other, size)).abs().max() > 0.1


def test_text_images_are_deterministic_and_only_ink_their_cells():
    image = text_image("AB12", 32)
    assert image.shape == (3, 32, 32) and torch.equal(image, text_image("AB12", 32))
    assert 0 <= image.min() and image.max() <= 1
    assert not torch.equal(image, text_image("AB13", 32))
    colours = ((0.9, 0.8, 0.6), (0.1, 0.2, 0.5))
    coloured = text_image("7Q", 48, colours=colours)
    for length, size in ((1, 32), (3, 32), (4, 32), (2, 48), (4, 64)):
        cells = glyph_cells(length, size)
        assert len(cells) == length and len({(h, w) for _, _, h, w in cells}) == 1  # equal cells
        top, left, height, width = cells[0]
        assert all(c[1] == left + i * width and c[0] == top for i, c in enumerate(cells))  # side by side
        assert top >= 0 and left >= 0 and top + height <= size and left + length * width <= size
        assert abs(top - (size - top - height)) <= 1 and abs(left - (size - left - length * width)) <= 1  # centred
    # outside the cells the image is the background exactly: a reader knows where glyph i is
    inside = torch.zeros(48, 48, dtype=torch.bool)
    for top, left, height, width in glyph_cells(2, 48):
        inside[top:top + height, left:left + width] = True
    background = torch.tensor(colours[0]).view(3, 1)
    assert torch.allclose(coloured[:, ~inside], background.expand(3, int((~inside).sum())), atol=1e-6)
    assert (coloured[:, inside] - background).abs().max() > 0.5  # and there is ink in them


def test_canaries_are_deterministic_and_follow_the_kind():
    for kind in KINDS:
        images, contents = canaries.canaries(kind, 6, 32, seed=3)
        assert images.shape == (6, 3, 32, 32) and len(contents) == 6
        assert 0 <= images.min() and images.max() <= 1
        again, same = canaries.canaries(kind, 6, 32, seed=3)
        assert torch.equal(images, again) and contents == same
        first, head = canaries.canaries(kind, 2, 32, seed=3)  # the first k do not depend on the count
        assert torch.equal(first, images[:2]) and head == contents[:2]
        other, _ = canaries.canaries(kind, 6, 32, seed=4)
        assert not torch.equal(images, other)
    _, minutes = canaries.canaries("clock", 50, 16, seed=0)
    assert all(isinstance(m, int) and 0 <= m < 720 for m in minutes) and len(set(minutes)) > 40
    _, numbers = canaries.canaries("digits", 50, 32, seed=0)
    assert all(len(n) == len(numbers[0]) and set(n) <= set(DIGITS) for n in numbers)
    _, words = canaries.canaries("words", 50, 32, seed=0)
    assert set(words) <= set(WORDS) and len(set(words)) > 15
    assert len(WORDS) >= 20 and len({len(w) for w in WORDS}) == 1 and all(set(w) <= set(LETTERS) for w in WORDS)
    assert CHANCE == {"clock": 180.0, "digits": 0.1, "words": 1 / 26} and len(ALPHABET) == 36


@pytest.mark.parametrize("call, argument", [
    (lambda: clock_face(720, 32), "minutes"),
    (lambda: clock_face(-1, 32), "minutes"),
    (lambda: clock_face(1.5, 32), "minutes"),
    (lambda: clock_face(0, 8), "size"),
    (lambda: clock_face(0, 32, colours=((1, 1, 1), (0, 0, 0))), "colours"),
    (lambda: clock_face(0, 32, colours=((2, 1, 1), (0, 0, 0), (0, 0, 0))), "colours"),
    (lambda: text_image("ab", 32), "text"),
    (lambda: text_image("A-B", 32), "text"),
    (lambda: text_image("", 32), "text"),
    (lambda: text_image("A" * (MAX_CHARS + 1), 32), "text"),
    (lambda: text_image("AB", 16), "size"),
    (lambda: text_image("AB", 33), "size"),
    (lambda: glyph_cells(0, 32), "length"),
    (lambda: glyph_cells(MAX_CHARS + 1, 32), "length"),
    (lambda: canaries.canaries("faces", 2, 32, seed=0), "kind"),
    (lambda: canaries.canaries("digits", 2, 16, seed=0), "size"),
    (lambda: canaries.canaries("clock", 0, 32, seed=0), "count"),
    (lambda: read_clock(torch.zeros(2, 1, 32, 32)), "images"),
    (lambda: read_clock(torch.zeros(2, 3, 8, 8)), "size"),
    (lambda: read_text(torch.zeros(2, 3, 32, 32), 0), "length"),
    (lambda: read_text(torch.zeros(2, 3, 16, 16), 2), "size"),
    (lambda: read_text(torch.zeros(2, 3, 32, 32), 2, alphabet="ab"), "alphabet"),
    (lambda: text_accuracy(["12"], ["12", "34"]), "read and truth"),
    (lambda: clock_error([1, 2], [1]), "read and truth"),
])
def test_invalid_arguments_raise_value_errors_naming_them(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()  # the text readers fail before any training


def test_scores():
    assert clock_error(torch.tensor([0, 710, 360, 5]), [719, 10, 0, 5]).tolist() == [1, 20, 360, 0]
    assert clock_error(torch.tensor([3]), [3]).mean() == 0  # floats, so that .mean() works
    assert text_accuracy(["12A", "XYZ", "QQ"], ["12B", "XYZ", "QQQ"]).tolist() == [2 / 3, 1.0, 2 / 3]


# --------------------------------------------------------------------------------------------- clocks

@pytest.mark.parametrize("size", [16, 32])
def test_read_clock_reads_faithful_faces(size):
    times = torch.randint(720, (40,), generator=torch.Generator().manual_seed(size)).tolist()
    default = torch.stack([clock_face(t, size) for t in times])
    coloured, truth = canaries.canaries("clock", 40, size, seed=size)
    # the true faces, in any colours (and inverted, light hands on a dark dial): the least-squares fit of the
    # face's own model is exact, so the reading is the exact minute
    assert read_clock(default).tolist() == times
    assert read_clock(coloured).tolist() == truth
    assert read_clock(1 - coloured).tolist() == truth
    # a faithful but imperfect copy (noise of σ = 0.05, a 26 dB PSNR, or a blur of half a pixel) reads back to
    # within two pixels of the minute hand's tip: 3.7 minutes at 16², 1.9 at 32²
    bound = 2 * minutes_per_pixel(size)
    for copy in (noisy(coloured, 0.05, seed=1), blur(coloured, 0.5)):
        assert clock_error(read_clock(copy), truth).max() <= bound


@pytest.mark.parametrize("size", [16, 32])
def test_read_clock_loses_the_time_of_degraded_faces(size):
    images, truth = canaries.canaries("clock", 60, size, seed=100 + size)
    # Uniform noise holds no time: its mean error is chance, 180 minutes, give or take 104/√60 ≈ 13 (the error of
    # a guess is uniform on [0, 360]); 120 is four and a half standard errors below.
    assert clock_error(read_clock(uniform_noise(images.shape, seed=size)), truth).mean() > 120
    # A blur of σ = size/4 leaves no hand a person could see, but the reader is an ideal observer: faint gradients
    # still point to the hour hand (measured: about 60 minutes of error), not to the minute hand. Knowing the
    # hour to within an hour mark and guessing the minute would be off by 30 minutes on average: the blurred
    # face must read worse than that. With the noise of a reconstruction on top (σ = 0.05) the hour goes too
    # (measured: 90 to 125 minutes), so it must read no better than a third of the way from the truth to chance.
    blurred = blur(images, size / 4)
    assert clock_error(read_clock(blurred), truth).mean() > 30
    assert clock_error(read_clock(noisy(blurred, 0.05, seed=2)), truth).mean() > 60


# --------------------------------------------------------------------------------------------- text

def test_read_text_reads_true_canaries(text_canaries):
    for kind, (images, texts, alphabet, read) in text_canaries.items():
        assert read == texts, kind  # every glyph of every canary (random colours, either contrast)
        # a faithful but imperfect copy (noise of σ = 0.05) still reads: at most one glyph in twenty is lost
        copy = read_text(noisy(images, 0.05, seed=3), len(texts[0]), alphabet=alphabet)
        assert text_accuracy(copy, texts).mean() >= 0.95, kind
        # the alphabet restricts the answer
        assert all(set(r) <= set(alphabet) for r in copy)


def test_read_text_is_near_chance_on_blurred_copies_and_noise(text_canaries):
    # Chance is 0.1 for digits and 1/26 for letters; a reader that always gave the most frequent character of a
    # position would score at most 0.125 on WORDS, and the standard error of a mean over 40 texts of 3 or 4
    # characters is under 0.03. So 0.35 and 0.2 are far above what a reader that sees nothing can reach, and far
    # below a reading.
    for kind, ceiling in (("digits", 0.35), ("words", 0.2)):
        images, texts, alphabet, _ = text_canaries[kind]
        for degraded in (blur(images, 32 / 4), uniform_noise(images.shape, seed=5)):
            read = read_text(degraded, len(texts[0]), alphabet=alphabet)
            assert text_accuracy(read, texts).mean() <= ceiling, kind


def test_the_glyph_reader_is_trained_once_and_then_loaded(text_canaries, fresh_data, monkeypatch):
    files = sorted((fresh_data / "generators").glob("glyph-reader-32px-*.pt"))
    assert len(files) == 1 and paths.generators_dir() == fresh_data / "generators"  # trained in the fresh folder
    images, texts, alphabet, read = text_canaries["digits"]
    canaries._READERS.clear()  # forget the reader in memory: the next read must load the file
    monkeypatch.setattr(canaries, "_fit_reader", lambda *a, **k: pytest.fail("retrained instead of loading"))
    assert read_text(images, len(texts[0]), alphabet=alphabet) == read
    assert sorted((fresh_data / "generators").glob("glyph-reader-*")) == files
