"""Gradient inversion attacks (paper §2.3, §4.1; Eq. 1).

An honest-but-curious server holds the global model W_0 and a client's shared update ΔW = W_U − W_0
(``giasok.fl.ClientUpdate``). GIA-O optimises dummy pixels x̂ ∈ [0, 1] so that the update they would
produce matches ΔW:

    x̂* = argmin_x̂  Dist(ΔŴ(x̂), ΔW) + Σ_k α_k R_k(x̂)

* ``known_training_config=False`` — the paper's best case for the client (BST): the adversary does not know
  B, U or the schedule and reads the update as one gradient, −ΔW/η. ΔŴ is one full-batch SGD step on x̂.
* ``known_training_config=True`` — the worst case (WST, level-3 knowledge): the adversary knows η and the
  client's mini-batch schedule and unrolls the same U SGD steps on x̂ with ``torch.func`` (differentiably,
  so Dist is minimised through all U steps, as in Xu et al.'s and Dimitrov et al.'s attacks).

Dist is ``"cosine"`` (1 − cosine similarity of the concatenated updates; Geiping et al., 2020) or ``"l2"``
(squared Euclidean distance; Zhu et al., 2019). The optimiser follows Geiping et al.: Adam on the pixels
with signed gradients, learning-rate decay by 10× at 3/8, 5/8 and 7/8 of the iterations, and pixels
projected back into the [0, 1] box after every step; ``restarts`` random initialisations, keeping the one
with the lowest final loss.

GIA-L (``method="gia-l"``) is GIAS (Jeon et al., 2021) with a generator G trained on the client's data
distribution: stage 1 searches the latents z_1..z_N of the N images with G frozen; stage 2 fixes the latents
and optimises the generator itself. As in GIAS's own code, which deep-copies the generator once per image,
stage 2 gives every image its own copy θ_i of the generator's parameters, x̂_i = G(z_i; θ_i), all starting
from the trained θ and optimised jointly against the batch's matching loss: each image may leave the
generator's range in its own direction instead of all N sharing one fine-tuned θ (``per_image_generators``).

ROG (``method="rog"``; Yue et al., USENIX Security 2023, the third attack of the paper's §6) attacks obfuscated
(quantised, sparsified, clipped, noised) updates. It optimises a low-resolution image x_low, ``downsample`` times
smaller than the client's images, whose interpolation up(x_low) to full size is what the model sees:

    x_low* = argmin Dist(ΔŴ(up(x_low)), ΔW) + Σ_k α_k R_k(up(x_low)),    result = restorer(up(x_low*))

Fewer unknowns than pixels make the matching robust to the update's distortion; a learned post-processing network
(ROG: a pre-trained USRNet super-resolution network; here ``giasok.restoration``) then restores the detail the low
resolution cannot hold. ROG's choices, from its code (github.com/KAI-YUE/rog): factor 4 (``src/attack/attacker.py``,
``self.sf = 4``; ``utils/config.yaml``, ``sf: 4``), bicubic interpolation (``attacker.py``, ``F.interpolate(...,
scale_factor=self.sf, mode='bicubic')``), the squared-L2 distance of the updates (``attacker.py``, ``grad_diff``;
``objective="l2"`` here), plain Adam on x_low initialised uniformly in [0, 1) with cosine annealing of the learning
rate to a tenth over the whole run (``attacker.py``, ``CosineAnnealingLR(T_max=T_max, eta_min=0.1*eta)``, stepped
from the second iteration on), at lr 0.05 for 100 iterations (``utils/config.yaml``, ``rog_lr``, ``T_max``), and
for FedAvg the client's τ local steps unrolled (``attacker.py``, ``multistep_attack``; ``known_training_config``
here). ``ROG_RECIPE`` is that configuration.

Every setting of an attack is one field of the frozen ``AttackConfig``, with one name at every layer: a
profile holds the configurations of its sections' attacks, an experiment (``giasok.runs.GiaExperiment``)
carries one unchanged, and ``invert(model, update, config)`` runs it. ``invert``'s keyword form
(``invert(model, update, iterations=..., priors=...)``) builds the same dataclass.

Labels are given, or inferred from the last layer's update by ``infer_labels``: iDLG's sign rule for a
single sample (Zhao et al., 2020) and per-class counts for a batch (Geng et al., 2021).
"""
from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap
from tqdm import tqdm

from .fl import ClientUpdate
from .priors import PRIORS, PriorContext

__all__ = ["AttackConfig", "Reconstruction", "invert", "infer_labels", "simulated_update", "matching_loss", "per_image_generators",
           "upsample", "downsample", "OBJECTIVES", "METHODS", "INTERPOLATIONS", "ROG_RECIPE"]

METHODS = ("gia-o", "gia-l", "rog")
INTERPOLATIONS = ("bicubic", "bilinear")  # ROG's up(x_low): F.interpolate modes (align_corners=False)


@dataclass(frozen=True)
class AttackConfig:
    """Everything the attacker chooses, one name per setting wherever the attack is configured.

    * ``method`` — ``"gia-o"`` (optimise pixels), ``"gia-l"`` (GIAS: latents, then per-image generators) or
      ``"rog"`` (ROG: a low-resolution image, then a restorer; ``ROG_RECIPE`` is ROG's own configuration).
    * ``objective`` — Dist: ``"cosine"`` or ``"l2"`` (``OBJECTIVES``).
    * ``priors`` — ``(name, weight)`` pairs from ``giasok.priors.PRIORS`` (a dict is accepted and kept in its
      order); the default is no prior.
    * ``iterations``, ``lr`` — Adam steps and learning rate of GIA-O's pixels, of GIA-L's latents (stage 1) or
      of ROG's low-resolution pixels.
    * ``restarts`` — random initialisations; the one with the lowest final loss is kept.
    * ``known_training_config`` — the adversary knows the client's η and mini-batch schedule (WST) and
      unrolls the same U steps; otherwise (BST) it reads the update as one full-batch gradient.
    * ``generator_iterations``, ``generator_lr`` — GIA-L's stage 2 (per-image generator copies).
    * ``generator_options`` — how the experiment obtains GIA-L's generator: the options of
      ``giasok.generative.train_dcgan`` (a cached DCGAN), or ``(("biggan", <model name>),)`` for a pre-trained
      BigGAN. ``invert`` takes the generator module itself; the options only name it, so that they are part of
      an experiment's configuration and of its cache key.
    * ``downsample`` — ROG's factor between the client's images and the low-resolution image it optimises (ROG: 4;
      1 optimises at full resolution); it must divide the image size. ``interpolation`` — how the low-resolution
      image is brought to full size (``INTERPOLATIONS``; ROG: ``"bicubic"``). Both are read by ``method="rog"``
      only, and by the restorer's training (``giasok.restoration``), which sees the same degradation.
    * ``restorer_options`` — how the experiment obtains ROG's post-processing network: the options of
      ``giasok.restoration.train_restorer`` (a cached restorer), or ``(("weights", <file>),)`` for weights of
      that architecture (``giasok.restoration.load_restorer``). Like ``generator_options``, they only name it;
      ``invert`` takes the module itself (``restorer=``, read by ``method="rog"`` only).

    Bad values raise ``ValueError`` naming the setting and what it accepts.
    """

    method: str = "gia-o"
    objective: str = "cosine"
    priors: tuple = ()
    iterations: int = 1500
    lr: float = 0.1
    restarts: int = 1
    known_training_config: bool = False
    generator_iterations: int = 0
    generator_lr: float = 1e-4
    generator_options: tuple = ()
    downsample: int = 4
    interpolation: str = "bicubic"
    restorer_options: tuple = ()

    def __post_init__(self):
        from .priors import PRIORS

        priors = tuple(self.priors.items()) if isinstance(self.priors, dict) else self.priors
        if not isinstance(priors, (list, tuple)) or not all(
                isinstance(p, (list, tuple)) and len(p) == 2 for p in priors):
            raise ValueError(f"priors must be a dict or (name, weight) pairs, got {self.priors!r}")
        object.__setattr__(self, "priors", tuple((str(k), float(w)) for k, w in priors))
        for name in ("generator_options", "restorer_options"):
            options = getattr(self, name)
            options = tuple(options.items()) if isinstance(options, dict) else options
            if not isinstance(options, (list, tuple)) or not all(isinstance(p, (list, tuple)) and len(p) == 2
                                                                 for p in options):
                raise ValueError(f"{name} must be a dict or (option, value) pairs, got {options!r}")
            object.__setattr__(self, name, tuple((str(k), v) for k, v in options))
        if self.method not in METHODS:
            raise ValueError(f"unknown attack method {self.method!r}; available: {', '.join(METHODS)}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; available: {', '.join(OBJECTIVES)}")
        unknown = {name for name, _ in self.priors} - set(PRIORS)
        if unknown:
            raise ValueError(f"unknown prior(s) {sorted(unknown)}; available: {', '.join(PRIORS)}")
        for name, low in (("iterations", 1), ("restarts", 1), ("generator_iterations", 0), ("downsample", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")
        for name in ("lr", "generator_lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not isinstance(self.known_training_config, bool):
            raise ValueError(f"known_training_config must be True or False, got {self.known_training_config!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"unknown interpolation {self.interpolation!r}; available: {', '.join(INTERPOLATIONS)}")

    def with_(self, **changes) -> "AttackConfig":
        """This configuration with some settings replaced (validated again); unknown names raise ``TypeError``
        listing the settings."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"unknown attack setting(s) {sorted(unknown)}; AttackConfig has "
                            f"{', '.join(f.name for f in dataclasses.fields(self))}")
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Reconstruction:
    """The result of an attack: images (N×C×H×W in [0, 1], CPU), the labels used, the loss per iteration of
    the kept restart, every restart's final loss, and the attack's configuration. For ROG, ``low_resolution``
    is the optimised low-resolution image (N×C×H/s×W/s, before interpolation and restoration); ``None`` for the
    other methods."""

    images: torch.Tensor
    labels: torch.Tensor
    loss_history: tuple
    restart_losses: tuple
    config: dict = field(default_factory=dict)
    low_resolution: torch.Tensor | None = None


def upsample(images: torch.Tensor, factor: int, interpolation: str = "bicubic") -> torch.Tensor:
    """ROG's up(x_low): ``images`` enlarged ``factor`` times with ``F.interpolate`` (``align_corners=False``, as
    ROG's ``attacker.py`` calls it). Differentiable; not clamped (bicubic may overshoot [0, 1] a little)."""
    if factor == 1:
        return images
    return nn.functional.interpolate(images, scale_factor=factor, mode=interpolation, align_corners=False)


def downsample(images: torch.Tensor, factor: int) -> torch.Tensor:
    """``images`` made ``factor`` times smaller by antialiased bicubic resizing (as MATLAB's ``imresize``: the
    degradation ROG's USRNet is given, its ``model_zoos/kernels_bicubicx234.mat``). Used to train the restorer and to
    measure what up(down(x)) loses; the attack itself never downsamples."""
    if factor == 1:
        return images
    h, w = images.shape[-2:]
    return nn.functional.interpolate(images, size=(h // factor, w // factor), mode="bicubic", antialias=True,
                                     align_corners=False)


def _cosine_distance(simulated: dict, observed: dict) -> torch.Tensor:
    dot = sum((simulated[k] * observed[k]).sum() for k in observed)
    norm_s = sum(simulated[k].pow(2).sum() for k in observed).sqrt()
    norm_o = sum(observed[k].pow(2).sum() for k in observed).sqrt()
    return 1 - dot / (norm_s * norm_o + 1e-12)


def _l2_distance(simulated: dict, observed: dict) -> torch.Tensor:
    return sum((simulated[k] - observed[k]).pow(2).sum() for k in observed)


# name -> Dist(simulated update, observed update)
OBJECTIVES = {"cosine": _cosine_distance, "l2": _l2_distance}

# ROG as its code runs it (module docstring): 4× smaller bicubic image, squared-L2 matching, Adam at 0.05 for 100
# iterations with cosine annealing (the schedule is what method="rog" always uses).
ROG_RECIPE = AttackConfig(method="rog", objective="l2", lr=0.05, iterations=100, downsample=4, interpolation="bicubic")


def simulated_update(model: nn.Module, params: dict, buffers: dict, images: torch.Tensor, labels: torch.Tensor,
                     batches, lr: float) -> dict:
    """ΔŴ: the change of ``params`` after SGD steps on ``images[idx]`` for each ``idx`` in ``batches``.

    Differentiable with respect to ``images``. ``buffers`` is copied, so BatchNorm running statistics of
    the caller are not touched (in train mode they never affect the output).
    """
    buffers = {k: b.clone() for k, b in buffers.items()}

    def loss(p, b, x, y):  # b is an argument so that BatchNorm may update it in place under grad()
        return nn.functional.cross_entropy(functional_call(model, (p, b), (x,)), y)

    current = params
    for idx in batches:
        step = grad(loss)(current, buffers, images[idx], labels[idx])
        current = {k: current[k] - lr * step[k] for k in current}
    return {k: current[k] - params[k] for k in params}


def _last_linear(model: nn.Module):
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("label inference needs a model that ends in an nn.Linear classifier")
    return linears[-1]


def infer_labels(model: nn.Module, update: ClientUpdate, *, seed: int = 0) -> torch.Tensor:
    """Labels of the client's N samples, read off the last linear layer's update.

    The average per-step gradient of the classifier is ḡ = −ΔW/(η·U). For cross-entropy, the bias gradient is
    ḡ_b[c] = mean_i p_ic − n_c/N and the weight gradient's row sum is ≈ S̄·(p̄_c − n_c/N), with S̄ the mean sum of
    the (non-negative) features entering the classifier.

    * N = 1 (iDLG): the one class whose gradient is negative.
    * N > 1: n_c = N·(p̄_c − ḡ_c) (÷ S̄ for the weight rows), with p̄ and S̄ estimated by running the model on
      random images of the data's shape, rounded to counts summing to N (largest remainder). Labels come
      back sorted by class; which dummy sample carries which label does not matter to the attack.
    """
    name, _ = _last_linear(model)
    if not {f"{name}.bias", f"{name}.weight"} & set(update.delta):
        raise ValueError(f"label inference reads the classifier's update ({name}), which this update does not "
                         "carry (a restricted() update): pass the labels")
    scale = -1.0 / (update.lr * update.local_updates)
    has_bias = f"{name}.bias" in update.delta
    row_signal = (update.delta[f"{name}.bias"] if has_bias else update.delta[f"{name}.weight"].sum(1)) * scale
    n = update.num_samples
    if n == 1:
        return row_signal.argmin().view(1)
    features = []
    probe = copy.deepcopy(model).train(update.bn_mode == "train")
    hook = _last_linear(probe)[1].register_forward_pre_hook(lambda module, inputs: features.append(inputs[0].detach()))
    try:
        generator = torch.Generator().manual_seed(seed)
        device = next(probe.parameters()).device
        dummy = torch.rand((n, *update.image_shape), generator=generator).to(device)
        with torch.no_grad():
            p_mean = probe(dummy).softmax(1).mean(0).cpu()
    finally:
        hook.remove()
    per_sample = row_signal if has_bias else row_signal / features[0].sum(1).mean().cpu()
    expected = (n * (p_mean - per_sample)).clamp_min(0)
    counts = expected.floor().long()
    remainder = expected - counts
    missing = n - int(counts.sum())
    if missing > 0:
        counts[remainder.argsort(descending=True)[:missing]] += 1
    elif missing < 0:  # over-full: take from the classes with the smallest remainders first
        for c in remainder.argsort():
            while missing < 0 and counts[c] > 0:
                counts[c] -= 1
                missing += 1
    return torch.repeat_interleave(torch.arange(len(counts)), counts)


def matching_loss(model, params, buffers, images, labels, batches, lr, observed, objective, priors, context=None):
    """Dist(ΔŴ(images), ΔW) + Σ weight · prior(images, context): the quantity GIA-O and GIA-L minimise."""
    simulated = simulated_update(model, params, buffers, images, labels, batches, lr)
    loss = OBJECTIVES[objective](simulated, observed)
    for name, weight in priors.items():
        loss = loss + weight * PRIORS[name](images, context)
    return loss


def _check_invert_args(attack, labels, update, generator):
    if labels is not None and len(labels) != update.num_samples:
        raise ValueError(f"got {len(labels)} labels for an update of N={update.num_samples} samples")
    if attack.method == "gia-l" and generator is None:
        raise ValueError("method='gia-l' needs a generator (e.g. giasok.generative.train_dcgan(...))")
    if attack.method == "rog":
        height, width = update.image_shape[-2:]
        if height % attack.downsample or width % attack.downsample:
            raise ValueError(f"method='rog' optimises an image downsample={attack.downsample} times smaller than "
                             f"the client's {height}×{width} images: the factor must divide both sides")
    if any(name == "bn" for name, _ in attack.priors) and update.bn_statistics is None:
        raise ValueError("the 'bn' prior needs the client's BatchNorm statistics: the update carries them only "
                         "when the protocol shares them (client_update(..., share_bn_statistics=True))")


def _descend(variables: list, loss_fn, iterations: int, lr: float, *, signed: bool, box: bool, desc: str,
             progress: bool, cosine: bool = False) -> list:
    """Adam on ``variables`` with 10× decays at 3/8, 5/8 and 7/8 of the run; returns the loss per iteration.

    ``signed`` replaces gradients by their sign (Geiping et al.'s pixel updates); ``box`` projects into [0, 1].
    ``cosine`` anneals the learning rate instead, to a tenth over the run, as ROG does (its ``attacker.py``:
    ``CosineAnnealingLR(T_max, eta_min=0.1·lr)``, first stepped after the second iteration).
    """
    optimizer = torch.optim.Adam(variables, lr=lr)
    if cosine:
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=iterations, eta_min=0.1 * lr)
    else:
        milestones = [math.floor(iterations * f) for f in (3 / 8, 5 / 8, 7 / 8)]
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    history = []
    bar = tqdm(range(iterations), desc=desc, disable=not progress, mininterval=1.0, leave=False)
    for it in bar:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        if signed:
            for v in variables:
                v.grad.sign_()
        optimizer.step()
        if not cosine or it > 0:  # ROG: `if iters > 0: scheduler.step()`
            schedule.step()
        if box:
            with torch.no_grad():
                for v in variables:
                    v.clamp_(0, 1)
        history.append(loss.item())
        if it % 100 == 0:
            bar.set_postfix(loss=f"{history[-1]:.4f}")
    return history


def invert(model: nn.Module, update: ClientUpdate, attack: AttackConfig | None = None, *,
           labels: torch.Tensor | None = None, seed: int = 0, device: str | torch.device = "cpu",
           progress: bool = False, generator: nn.Module | None = None, restorer: nn.Module | None = None,
           **settings) -> Reconstruction:
    """Reconstruct the client's N samples from ``update``, the change it made to ``model`` (W_0).

    ``attack`` is an ``AttackConfig``; keyword ``settings`` (its field names: ``iterations``, ``priors``,
    ``method`` …) build one, or replace fields of ``attack`` when both are given. ``labels`` are the client's
    labels when the attacker is given them (else inferred from the update, ``infer_labels``); ``seed`` draws
    the initialisations.

    ``method="gia-o"`` optimises pixels for ``iterations`` steps of Adam at ``lr``. ``method="gia-l"``
    (GIAS, Jeon et al. 2021) needs a ``generator`` mapping latents (N × ``generator.latent_dim``) to [0, 1]
    images: stage 1 optimises the latents for ``iterations`` steps at ``lr`` (restarts keep the best) with
    the generator frozen; stage 2 fixes the latents and, as GIAS's code does, gives each of the N images its
    own copy of the generator, x̂_i = G(z_i; θ_i) (``per_image_generators``), optimising all N copies jointly
    with Adam at ``generator_lr`` for ``generator_iterations`` steps against the batch's matching loss
    (``config["generator_copies"]`` = N). The generator runs in eval mode (BatchNorm uses its running
    statistics) and the caller's copy is not modified. ``priors`` apply to the images in both methods.

    ``method="rog"`` (ROG, Yue et al. 2023; module docstring) optimises a low-resolution image x_low (N×C×H/s×W/s
    for s = ``downsample``, drawn uniformly in [0, 1)) with ROG's optimiser (plain Adam at ``lr``, cosine-annealed
    to ``lr``/10 over ``iterations``, x_low not projected into [0, 1] during the descent: ROG's ``attacker.py``
    does not) so that up(x_low) (``upsample`` with ``interpolation``) matches the update;
    ``priors`` apply to up(x_low). The result is ``restorer(up(x_low))`` clamped to [0, 1] — ``restorer`` maps
    full-size images to full-size images (``giasok.restoration``), runs in eval mode without gradients, and the
    caller's copy is not modified — or, with ``restorer=None`` (ROG without its post-processing), up(x_low)
    clamped to [0, 1]. ``config["restored"]`` says which; ``Reconstruction.low_resolution`` holds x_low.

    >>> rec = invert(model, update, priors={"tv": 1e-4}, iterations=1500)   # doctest: +SKIP
    >>> rec = invert(model, update, AttackConfig(priors=(("tv", 1e-4),)))  # the same attack # doctest: +SKIP
    >>> rec.images.shape                                                    # doctest: +SKIP
    torch.Size([1, 3, 32, 32])
    """
    attack = (attack or AttackConfig()).with_(**settings)
    _check_invert_args(attack, labels, update, generator)
    method, objective, priors = attack.method, attack.objective, dict(attack.priors)
    iterations, lr, restarts = attack.iterations, attack.lr, attack.restarts
    known_training_config = attack.known_training_config
    device = torch.device(device)
    net = copy.deepcopy(model).to(device)
    net.train(update.bn_mode == "train")
    params = {k: p.detach() for k, p in net.named_parameters()}
    buffers = {k: b.detach() for k, b in net.named_buffers()}
    # the parameters the update carries: all of them, or the part an adversary chose to match (restricted())
    observed = {k: update.delta[k].to(device) for k in params if k in update.delta}
    if len(observed) != len(update.delta):
        unknown = sorted(set(update.delta) - set(params))
        raise ValueError(f"the update has parameters the model does not: {unknown[:5]} (wrong model for this update?)")
    labels_inferred = labels is None
    labels = (infer_labels(model, update, seed=seed) if labels_inferred else labels.clone()).to(device)
    # BST: one full-batch step of the client's η; WST: the client's own schedule of U steps.
    batches = (update.batches if known_training_config
               else (torch.arange(update.num_samples),))
    batches = tuple(idx.to(device) for idx in batches)
    context = PriorContext(model=net, params=params, buffers=buffers, first_batch=batches[0],
                           bn_statistics=_to(update.bn_statistics, device))

    def loss_of(x):
        return matching_loss(net, params, buffers, x, labels, batches, update.lr, observed, objective, priors,
                             context)

    name = method.upper()
    channels, height, width = update.image_shape
    low_shape = (channels, height // attack.downsample, width // attack.downsample)

    def up(x):
        return upsample(x, attack.downsample, attack.interpolation)

    candidates = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)  # dropout masks inside the simulation
        for restart in range(restarts):
            init = torch.Generator().manual_seed(seed * 1_000_003 + restart)
            desc = f"{name} restart {restart + 1}/{restarts}"
            if method == "gia-o":
                x = torch.rand((update.num_samples, *update.image_shape), generator=init).to(device)
                x.requires_grad_(True)
                history = _descend([x], lambda: loss_of(x), iterations, lr, signed=True, box=True, desc=desc,
                                   progress=progress)
                variables, render = x.detach(), None
            elif method == "rog":  # ROG: plain Adam on the low-resolution pixels, cosine-annealed
                x = torch.rand((update.num_samples, *low_shape), generator=init).to(device).requires_grad_(True)
                history = _descend([x], lambda: loss_of(up(x)), iterations, lr, signed=False, box=False,
                                   cosine=True, desc=desc + " (low resolution)", progress=progress)
                variables, render = x.detach(), up
            else:
                g = _frozen_copy(generator, device)
                z = torch.randn((update.num_samples, g.latent_dim), generator=init).to(device).requires_grad_(True)
                history = _descend([z], lambda: loss_of(g(z)), iterations, lr, signed=False, box=False,
                                   desc=desc + " (latent)", progress=progress)
                variables, render = z.detach(), g
            final = loss_of(variables if render is None else render(variables)).item()
            candidates.append((final, variables, history))
    final, variables, history = min(candidates, key=lambda c: c[0])
    stages = [len(history)]
    low_resolution = None
    if method == "gia-o":
        images = variables
    elif method == "rog":
        low_resolution = variables
        with torch.no_grad():
            images = up(variables)
            if restorer is not None:
                images = _frozen_copy(restorer, device)(images)
            images = images.clamp(0, 1)
    else:
        # GIAS stage 2: one generator copy θ_i per image, all optimised at once (Adam is elementwise, so
        # one Adam over the stacked copies is N independent Adams driven by the shared batch loss).
        weights, _, render = per_image_generators(generator, update.num_samples, device)
        history = history + _descend(list(weights.values()), lambda: loss_of(render(weights, variables)),
                                     attack.generator_iterations, attack.generator_lr, signed=False, box=False,
                                     desc=f"{name} generators", progress=progress)
        stages.append(len(history))
        with torch.no_grad():
            images = render(weights, variables)
    gia_l, rog = method == "gia-l", method == "rog"
    config = dict(dataclasses.asdict(attack), seed=seed, labels_inferred=labels_inferred,
                  generator_copies=update.num_samples if gia_l else 0, stage_ends=stages,
                  restored=rog and restorer is not None, low_resolution=list(low_shape[1:]) if rog else None)
    return Reconstruction(images=images.detach().cpu(), labels=labels.cpu(), loss_history=tuple(history),
                          restart_losses=tuple(c[0] for c in candidates), config=config,
                          low_resolution=None if low_resolution is None else low_resolution.cpu())


def per_image_generators(generator: nn.Module, n: int, device: str | torch.device = "cpu", *,
                         vectorize: bool = True):
    """GIAS's stage-2 generators: ``n`` independent copies θ_1..θ_n of ``generator``, one per image.

    Returns ``(params, buffers, render)``. ``params`` maps each parameter name to the n copies stacked along a
    new first dimension (leaf tensors that require grad: hand them to an optimiser), ``buffers`` likewise
    for the buffers (BatchNorm running statistics, constant: the copies run in eval mode), and
    ``render(params, z)`` maps latents z (n × latent_dim) to the n images, image i = G(z_i; θ_i) from copy
    i alone. Every copy starts as ``generator`` in eval mode on ``device``; ``generator`` is not modified.

    Jeon et al.'s GIAS code deep-copies the generator once per image; this is the same computation in
    PyTorch's "model ensembling" form: ``torch.func.stack_module_state`` over n deep copies and
    ``torch.func.vmap`` over ``functional_call``, so the n images come out of one pass (each copy sees its
    own latent as a batch of one). Where vmap cannot run the generator (an operation without a batching
    rule, data-dependent Python control flow, random ops), ``render`` warns once and falls back to a loop
    of ``functional_call``, one image at a time; ``vectorize=False`` asks for the loop from the start.
    """
    if n < 1:
        raise ValueError(f"need at least one generator copy, got n={n}")
    template = _frozen_copy(generator, device)  # eval mode: BatchNorm uses the trained running statistics
    params, buffers = stack_module_state([copy.deepcopy(template) for _ in range(n)])
    params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    buffers = {k: v.detach() for k, v in buffers.items()}

    def one(p, b, z):  # copy (p, b) on one latent, as a batch of one
        return functional_call(template, (p, b), (z.unsqueeze(0),)).squeeze(0)

    vectorized = vmap(one)
    state = {"vectorize": vectorize}

    def render(p, z):
        if state["vectorize"]:
            try:
                return vectorized(p, buffers, z)
            except Exception as error:  # any failure of vmap itself; a real error in G recurs in the loop
                state["vectorize"] = False
                warnings.warn(f"per_image_generators: torch.func.vmap cannot run {type(generator).__name__} "
                              f"({type(error).__name__}: {error}); running its {n} copies one image at a time "
                              "instead (the same images up to float32 rounding, slower)", RuntimeWarning, stacklevel=2)
        return torch.stack([one({k: v[i] for k, v in p.items()}, {k: v[i] for k, v in buffers.items()}, z[i])
                            for i in range(len(z))])

    return params, buffers, render


def _frozen_copy(generator: nn.Module, device) -> nn.Module:
    g = copy.deepcopy(generator).to(device).eval()
    for p in g.parameters():
        p.requires_grad_(False)
    return g


def _to(statistics, device):
    if statistics is None:
        return None
    return {name: tuple(t.to(device) for t in pair) for name, pair in statistics.items()}
