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

How an attack runs never changes what it computes. ``invert_many`` attacks many updates of one W_0 with one
configuration (a table cell's victims, every restart) as one ``torch.func.vmap`` pass; on CUDA one iteration is
captured as a CUDA graph and replayed; ``simulated_update`` has two formulations of the same arithmetic. Each is
tested against the one-at-a-time path, and ``make bench`` measures them against the plain loop of inversefed and
breaching (README, "Speed").

Labels are given, or inferred from the last layer's update by ``infer_labels``: iDLG's sign rule for a
single sample (Zhao et al., 2020) and per-class counts for a batch (Geng et al., 2021).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call, grad, grad_and_value, stack_module_state, vmap
from tqdm import tqdm

from .fl import ClientUpdate
from .priors import PRIORS, PriorContext

__all__ = ["AttackConfig", "Reconstruction", "invert", "invert_many", "infer_labels", "simulated_update", "matching_loss",
           "per_image_generators", "upsample", "downsample", "OBJECTIVES", "METHODS", "INTERPOLATIONS", "FORMULATIONS",
           "ROG_RECIPE"]

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
                     batches, lr: float, *, formulation: str = "func") -> dict:
    """ΔŴ: the change of ``params`` after SGD steps on ``images[idx]`` for each ``idx`` in ``batches``.

    Differentiable with respect to ``images``. ``buffers`` is copied, so BatchNorm running statistics of
    the caller are not touched (in train mode they never affect the output).

    Two formulations of the same arithmetic (``FORMULATIONS``): ``"func"`` takes each step's gradient with
    ``torch.func.grad`` (composable with ``vmap``: the batched attacks use it); ``"autograd"`` with
    ``torch.autograd.grad(..., create_graph=True)``, which needs ``params`` that require grad and is slightly the
    cheaper for a single attack on the CPU (``make bench``). Both give the same ΔŴ up to float rounding (tested).
    """
    if formulation not in FORMULATIONS:
        raise ValueError(f"unknown formulation {formulation!r}; available: {', '.join(FORMULATIONS)}")
    buffers = {k: b.clone() for k, b in buffers.items()}

    def loss(p, b, x, y):  # b is an argument so that BatchNorm may update it in place under grad()
        return nn.functional.cross_entropy(functional_call(model, (p, b), (x,)), y)

    # ΔŴ is accumulated as −η Σ_u g_u rather than taken as W_U − W_0 at the end: for one step (BST, FedSGD) that
    # is a single multiply per parameter instead of three elementwise passes over the whole model, each also
    # differentiated twice (a fifth of a ResNet-18 iteration on the CPU, make bench), and it rounds no worse.
    current, delta = params, None
    for u, idx in enumerate(batches):
        if formulation == "func":
            step = grad(loss)(current, buffers, images[idx], labels[idx])
        else:
            values = torch.autograd.grad(loss(current, buffers, images[idx], labels[idx]), tuple(current.values()),
                                         create_graph=True)
            step = dict(zip(current, values))
        delta = {k: -lr * step[k] if delta is None else delta[k] - lr * step[k] for k in params}
        if u + 1 < len(batches):
            current = {k: params[k] + delta[k] for k in params}
    return delta


FORMULATIONS = ("autograd", "func")


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


def matching_loss(model, params, buffers, images, labels, batches, lr, observed, objective, priors, context=None, *,
                  formulation="func"):
    """Dist(ΔŴ(images), ΔW) + Σ weight · prior(images, context): the quantity GIA-O and GIA-L minimise."""
    simulated = simulated_update(model, params, buffers, images, labels, batches, lr, formulation=formulation)
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


def _descend(variables: list, step, iterations: int, lr: float, *, signed: bool, box: bool, desc: str,
             progress: bool, cosine: bool = False, cuda_graph: bool = False) -> list:
    """Adam on ``variables`` with 10× decays at 3/8, 5/8 and 7/8 of the run; returns the loss per iteration.

    ``step()`` computes the loss (a scalar, or one loss per attack for a batch of attacks), puts its gradient
    into each variable's ``.grad`` and returns the loss. ``signed`` replaces gradients by their sign (Geiping et
    al.'s pixel updates: per element, so a batch of attacks is that many independent Adams); ``box`` projects
    into [0, 1]. ``cosine`` anneals the learning rate instead, to a tenth over the run, as ROG does (its
    ``attacker.py``: ``CosineAnnealingLR(T_max, eta_min=0.1·lr)``, first stepped after the second iteration).

    ``cuda_graph`` (CUDA only): the first iterations run as usual (they warm up the allocator and Adam's state on a
    side stream), then one iteration — loss, double backward, sign, Adam step, projection — is captured as a CUDA
    graph and replayed for the rest; the learning rate lives in a device tensor that the schedule updates between
    replays. Where capture fails (an operation that synchronises with the host, a model with data-dependent
    control flow) it warns once and goes on without the graph from where it was. The losses stay on the device
    until the end: no host synchronisation per iteration on either path.
    """
    device = variables[0].device
    graphed = cuda_graph and device.type == "cuda"
    optimizer = torch.optim.Adam(variables, lr=torch.tensor(lr, device=device) if graphed else lr,
                                 capturable=graphed)
    if cosine:
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=iterations, eta_min=0.1 * lr)
    else:
        milestones = [math.floor(iterations * f) for f in (3 / 8, 5 / 8, 7 / 8)]
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)

    def iteration():  # everything after zero_grad: what a CUDA graph captures
        loss = step()
        if signed:
            for v in variables:
                v.grad.sign_()
        optimizer.step()
        if box:
            with torch.no_grad():
                for v in variables:
                    v.clamp_(0, 1)
        return loss.detach()

    def advance(it):
        if not cosine or it > 0:  # ROG: `if iters > 0: scheduler.step()`
            schedule.step()

    history = []
    replay = captured = warm_up = None
    if graphed:  # warm-up iterations on a side stream that starts after what the current one has queued
        warm_up = torch.cuda.Stream(device)
        warm_up.wait_stream(torch.cuda.current_stream(device))
    bar = tqdm(range(iterations), desc=desc, disable=not progress, mininterval=1.0, leave=False)
    for it in bar:
        if replay is not None:
            replay.replay()
            history.append(captured.clone())
            advance(it)
        else:
            with torch.cuda.stream(warm_up) if warm_up is not None else contextlib.nullcontext():
                optimizer.zero_grad(set_to_none=True)
                history.append(iteration())
                advance(it)
            if warm_up is not None and (it == _GRAPH_WARM_UP - 1 or it == iterations - 1):
                torch.cuda.current_stream(device).wait_stream(warm_up)
                warm_up = None  # from here on: replays, or eager iterations where capture failed
                if it < iterations - 1:
                    replay, captured = _capture(iteration, optimizer)
        if progress and it % 100 == 0:
            bar.set_postfix(loss=f"{history[-1].mean().item():.4f}")
    return torch.stack(history).tolist()


_GRAPH_WARM_UP = 3  # eager iterations before capture (PyTorch's CUDA-graph recipe warms up on a side stream)
_WARNED = set()


def _warn_once(key, message):
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _capture(iteration, optimizer):
    """One attack iteration as a CUDA graph, and its static loss tensor; ``(None, None)`` where capture fails."""
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)  # backward() then allocates .grad from the graph's private pool
    try:
        with torch.cuda.graph(graph):
            captured = iteration()
    except Exception as error:  # an operation capture does not allow: go on eagerly
        _warn_once(("cuda-graph", type(error).__name__), f"invert: CUDA-graph capture failed ({type(error).__name__}: "
                   f"{error}); running this attack without it (the same arithmetic, more kernel launches)")
        optimizer.zero_grad(set_to_none=True)
        return None, None
    return graph, captured


@dataclass(frozen=True)
class _Victim:
    """One attacked update, prepared: the parameters it carries, its labels and its seed."""

    update: ClientUpdate
    observed: dict
    labels: torch.Tensor
    labels_inferred: bool
    seed: int


def invert(model: nn.Module, update: ClientUpdate, attack: AttackConfig | None = None, *,
           labels: torch.Tensor | None = None, seed: int = 0, device: str | torch.device = "cpu",
           progress: bool = False, generator: nn.Module | None = None, restorer: nn.Module | None = None,
           vectorize: bool | None = None, cuda_graph: bool | None = None, formulation: str | None = None,
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

    How it runs, never what it computes (``invert_many`` has the details): ``vectorize`` runs the ``restarts``
    as one batched pass (default: on CUDA); ``cuda_graph`` (default: on CUDA) replays a captured iteration;
    ``formulation`` (``FORMULATIONS``; default ``"autograd"``) is how the simulated update is differentiated.
    ``config["engine"]`` records what was used.

    >>> rec = invert(model, update, priors={"tv": 1e-4}, iterations=1500)   # doctest: +SKIP
    >>> rec = invert(model, update, AttackConfig(priors=(("tv", 1e-4),)))  # the same attack # doctest: +SKIP
    >>> rec.images.shape                                                    # doctest: +SKIP
    torch.Size([1, 3, 32, 32])
    """
    return invert_many(model, [update], attack, labels=None if labels is None else [labels], seeds=[seed],
                       device=device, progress=progress, generator=generator, restorer=restorer, vectorize=vectorize,
                       cuda_graph=cuda_graph, formulation=formulation, **settings)[0]


def invert_many(model: nn.Module, updates, attack: AttackConfig | None = None, *, labels=None, seeds=None,
                device: str | torch.device = "cpu", progress: bool = False, generator: nn.Module | None = None,
                restorer: nn.Module | None = None, vectorize: bool | None = None, max_batch: int = 64,
                cuda_graph: bool | None = None, formulation: str | None = None, **settings) -> list[Reconstruction]:
    """``[invert(model, u, attack, labels=l, seed=s) for u, l, s in zip(updates, labels, seeds)]``, computed
    together: many clients' updates of one model W_0 attacked with one configuration (a table cell's victims,
    §5.1's victims of a round), each with its ``restarts``.

    ``labels`` is a list (one entry per update; ``None`` entries are inferred) or ``None``; ``seeds`` defaults to
    0, 1, 2, …. With ``vectorize`` (default: on CUDA; GIA-O and ROG), every (update, restart) pair is one attack of a single
    ``torch.func.vmap`` pass — one forward, double backward and Adam step per iteration for all of them, at most
    ``max_batch`` attacks per pass — whose results equal the one-at-a-time ones up to float rounding (tested):
    Adam, the sign and the projection act per element, so stacking attacks changes no attack's arithmetic.
    Updates that cannot share a pass (other shapes, learning rates or, for ``known_training_config``, schedules)
    go in separate passes. Where ``vmap`` cannot go — GIA-L (its stage 2 is batched per image already), a model
    with active dropout (its masks would differ from the one-at-a-time run), the ``bn`` prior, or an operation
    without a batching rule — the attacks run one at a time, with a warning saying so once. The default follows
    ``make bench``: on CUDA one small attack leaves the GPU idle between kernel launches and a batch costs a
    fraction per attack; on two CPU cores a batch of ConvNet-32 attacks costs 0.9× and of ResNet-18 attacks 1.5×
    the single ones, so the CPU runs them one at a time unless asked.

    ``cuda_graph`` (default ``True`` on CUDA, ignored elsewhere) captures one iteration as a CUDA graph and
    replays it (``_descend``). ``formulation`` chooses how the one-at-a-time path differentiates the simulated
    update (``simulated_update``): default ``"autograd"``, measured the faster on CPU (``make bench``); the
    batched path uses ``"func"``, which ``vmap`` needs. Each reconstruction's ``config["engine"]`` says which path
    computed it.
    """
    attack = (attack or AttackConfig()).with_(**settings)
    updates = list(updates)
    if not updates:
        raise ValueError("invert_many needs at least one update")
    labels = [None] * len(updates) if labels is None else list(labels)
    seeds = list(range(len(updates))) if seeds is None else [int(s) for s in seeds]
    if not len(labels) == len(seeds) == len(updates):
        raise ValueError(f"got {len(updates)} updates, {len(labels)} label sets and {len(seeds)} seeds")
    formulation = formulation or "autograd"
    if formulation not in FORMULATIONS:
        raise ValueError(f"unknown formulation {formulation!r}; available: {', '.join(FORMULATIONS)}")
    if not isinstance(max_batch, int) or max_batch < 1:
        raise ValueError(f"max_batch must be a positive integer, got {max_batch!r}")
    for update, given in zip(updates, labels):
        _check_invert_args(attack, given, update, generator)
    device = torch.device(device)
    cuda_graph = device.type == "cuda" if cuda_graph is None else bool(cuda_graph) and device.type == "cuda"
    vectorize = device.type == "cuda" if vectorize is None else bool(vectorize)
    net = copy.deepcopy(model).to(device)
    params = {k: p.detach() for k, p in net.named_parameters()}
    buffers = {k: b.detach() for k, b in net.named_buffers()}
    victims = [_prepare(model, net, params, update, given, seed, device, attack.known_training_config)
               for update, given, seed in zip(updates, labels, seeds)]
    reason = _not_vectorizable(net, attack, victims) if vectorize else "vectorize=False"
    runs = {}  # (victim index, restart) -> (final loss, variables, history)
    jobs = [] if reason else [[(i, r) for i in group for r in range(attack.restarts)]
                              for group in _shareable(victims, attack.known_training_config)]
    chunks = [group[start:start + max_batch] for group in jobs for start in range(0, len(group), max_batch)]
    for n, chunk in enumerate(chunks):  # vmap fails on the first pass or not at all: only that one is probed
        done = _descend_vectorized(net, params, buffers, [victims[i] for i, _ in chunk], [r for _, r in chunk],
                                   attack, device, progress, cuda_graph, probe=n == 0)
        if done is None:
            break
        runs.update(zip(chunk, done))
    vectorized = {i for i, _ in runs}
    if reason is not None and vectorize and len(victims) * attack.restarts > 1:
        _warn_once(("sequential", reason), f"invert_many: the attacks run one at a time ({reason})")
    for i, victim in enumerate(victims):
        for r in range(attack.restarts):
            if (i, r) not in runs:
                runs[i, r] = _descend_one(net, params, buffers, victim, r, attack, device, progress, generator,
                                          cuda_graph, formulation)
    graph = "cuda-graph " if cuda_graph else ""
    return [_reconstruction(net, params, buffers, victim, [runs[i, r] for r in range(attack.restarts)], attack,
                            device, progress, generator, restorer,
                            graph + ("vectorized" if i in vectorized else "sequential"), formulation)
            for i, victim in enumerate(victims)]


def _prepare(model, net, params, update, given, seed, device, known_training_config) -> _Victim:
    # the parameters the update carries: all of them, or the part an adversary chose to match (restricted())
    observed = {k: update.delta[k].to(device) for k in params if k in update.delta}
    if len(observed) != len(update.delta):
        unknown = sorted(set(update.delta) - set(params))
        raise ValueError(f"the update has parameters the model does not: {unknown[:5]} (wrong model for this update?)")
    labels = (infer_labels(model, update, seed=seed) if given is None else given.clone()).to(device)
    return _Victim(update=update, observed=observed, labels=labels, labels_inferred=given is None, seed=seed)


def _batches(update, known_training_config, device):
    """BST: one full-batch step of the client's η; WST: the client's own schedule of U steps."""
    batches = update.batches if known_training_config else (torch.arange(update.num_samples),)
    return tuple(idx.to(device) for idx in batches)


def _initial(victim, restart, shape, device, normal=False):
    init = torch.Generator().manual_seed(victim.seed * 1_000_003 + restart)
    draw = torch.randn if normal else torch.rand
    return draw(shape, generator=init).to(device)


def _variable_shape(attack, update, generator=None):
    channels, height, width = update.image_shape
    if attack.method == "rog":
        return update.num_samples, channels, height // attack.downsample, width // attack.downsample
    if attack.method == "gia-l":
        return update.num_samples, generator.latent_dim
    return update.num_samples, channels, height, width


def _render(attack, generator=None):
    """What the model sees for the optimised variables: the pixels (GIA-O), up(x_low) (ROG), G(z) (GIA-L)."""
    if attack.method == "rog":
        return lambda x: upsample(x, attack.downsample, attack.interpolation)
    if attack.method == "gia-l":
        return generator
    return lambda x: x


def _descent_options(attack):
    return dict(signed=attack.method == "gia-o", box=attack.method == "gia-o", cosine=attack.method == "rog")


def _context(net, params, buffers, victim, batches, device):
    return PriorContext(model=net, params=params, buffers=buffers, first_batch=batches[0],
                        bn_statistics=_to(victim.update.bn_statistics, device))


def _descend_one(net, params, buffers, victim, restart, attack, device, progress, generator, cuda_graph, formulation):
    """One attack, one restart: (final loss, optimised variables, loss per iteration)."""
    update = victim.update
    batches = _batches(update, attack.known_training_config, device)
    context = _context(net, params, buffers, victim, batches, device)
    if formulation == "autograd":  # torch.autograd.grad needs parameters that require grad (only x̂ is updated)
        params = {k: p.detach().requires_grad_(True) for k, p in params.items()}
    net.train(update.bn_mode == "train")
    g = _frozen_copy(generator, device) if attack.method == "gia-l" else None
    render = _render(attack, g)

    def loss_of(x):
        return matching_loss(net, params, buffers, render(x), victim.labels, batches, update.lr, victim.observed,
                             attack.objective, dict(attack.priors), context, formulation=formulation)

    x = _initial(victim, restart, _variable_shape(attack, update, g), device, normal=attack.method == "gia-l")
    x.requires_grad_(True)

    def step():
        loss = loss_of(x)
        loss.backward(inputs=[x])
        return loss

    stage = {"gia-o": "", "rog": " (low resolution)", "gia-l": " (latent)"}[attack.method]
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(victim.seed)  # dropout masks inside the simulation
        history = _descend([x], step, attack.iterations, attack.lr, desc=f"{attack.method.upper()} restart "
                           f"{restart + 1}/{attack.restarts}{stage}", progress=progress,
                           cuda_graph=cuda_graph and attack.method != "gia-l", **_descent_options(attack))
        final = loss_of(x.detach()).item()
    return final, x.detach(), history


def _not_vectorizable(net, attack, victims) -> str | None:
    """Why these attacks cannot run as one vmap pass, or ``None``."""
    if attack.method == "gia-l":
        return "GIA-L: its stage 2 is batched per image already"
    if any(name == "bn" for name, _ in attack.priors):
        return "the 'bn' prior"
    if victims[0].update.bn_mode == "train" and any(isinstance(m, nn.Dropout) and m.p > 0 for m in net.modules()):
        return f"{type(net).__name__} has active dropout, whose masks would differ from a one-at-a-time run"
    return None


def _shareable(victims, known_training_config) -> list[list[int]]:
    """Indices of the victims whose attacks can share one vmap pass: the same sample count, image shape, client
    learning rate and BatchNorm mode, and for WST the same mini-batch schedule."""
    groups = {}
    for i, v in enumerate(victims):
        u = v.update
        schedule = tuple(tuple(idx.tolist()) for idx in u.batches) if known_training_config else None
        key = (u.num_samples, tuple(u.image_shape), u.lr, u.bn_mode, tuple(sorted(v.observed)), schedule)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def _vectorized_objective(net, params, buffers, victims, attack, device):
    """The attacks of ``victims`` (one entry per attack; a victim may repeat, one entry per restart) as one
    function: ``(loss_and_gradient, loss, inputs)``, where ``loss_and_gradient(x, *inputs)`` maps the stacked
    variables x (attacks × N × …) to each attack's gradient and loss in one ``vmap`` pass, and ``loss`` to the losses
    alone."""
    update = victims[0].update
    batches = _batches(update, attack.known_training_config, device)
    net.train(update.bn_mode == "train")
    render, priors = _render(attack), dict(attack.priors)
    shared = all(v is victims[0] for v in victims)  # restarts of one victim: its update is not copied k times
    observed = victims[0].observed if shared else {k: torch.stack([v.observed[k] for v in victims])
                                                   for k in victims[0].observed}
    labels = torch.stack([v.labels for v in victims])
    # every attack gets its own copy of the buffers: train-mode BatchNorm updates them in place
    stacked = {k: b.unsqueeze(0).repeat(len(victims), *([1] * b.dim())) for k, b in buffers.items()}

    def one(x, y, o, b):
        return matching_loss(net, params, b, render(x), y, batches, update.lr, o, attack.objective, priors,
                             _context(net, params, b, victims[0], batches, device), formulation="func")

    in_dims = (0, 0, None if shared else 0, 0)
    return vmap(grad_and_value(one), in_dims=in_dims), vmap(one, in_dims=in_dims), (labels, observed, stacked)


def _descend_vectorized(net, params, buffers, victims, restarts, attack, device, progress, cuda_graph, probe=True):
    """Many attacks (victim, restart) as one ``vmap`` pass; a list of (final loss, variables, history), or
    ``None`` (after a warning) when the ``probe`` finds that vmap cannot run the model."""
    loss_and_gradient, loss, inputs = _vectorized_objective(net, params, buffers, victims, attack, device)
    x = torch.stack([_initial(v, r, _variable_shape(attack, v.update), device) for v, r in zip(victims, restarts)])
    try:
        if probe:
            loss_and_gradient(x, *inputs)  # vmap fails at once or not at all
    except Exception as error:  # noqa: BLE001 - any failure of vmap itself; a real error recurs one at a time
        _warn_once(("vmap", type(net).__name__, type(error).__name__),
                   f"invert_many: torch.func.vmap cannot run {type(net).__name__} ({type(error).__name__}: {error}); "
                   "running the attacks one at a time instead (the same results up to float rounding, slower)")
        return None
    x.requires_grad_(True)

    def step():
        gradient, value = loss_and_gradient(x.detach(), *inputs)
        x.grad = gradient
        return value

    stage = " (low resolution)" if attack.method == "rog" else ""
    history = _descend([x], step, attack.iterations, attack.lr, progress=progress, cuda_graph=cuda_graph,
                       desc=f"{attack.method.upper()} × {len(victims)} attacks{stage}", **_descent_options(attack))
    final = loss(x.detach(), *inputs).tolist()
    per_attack = list(zip(*history))
    return [(final[j], x[j].detach(), list(per_attack[j])) for j in range(len(victims))]


def _reconstruction(net, params, buffers, victim, candidates, attack, device, progress, generator, restorer, engine,
                    formulation) -> Reconstruction:
    """The kept restart (lowest final loss), finished: GIA-L's stage 2, ROG's restoration."""
    final, variables, history = min(candidates, key=lambda c: c[0])
    update, method = victim.update, attack.method
    stages = [len(history)]
    low_resolution = None
    if method == "gia-o":
        images = variables
    elif method == "rog":
        low_resolution = variables
        with torch.no_grad():
            images = _render(attack)(variables)
            if restorer is not None:
                images = _frozen_copy(restorer, device)(images)
            images = images.clamp(0, 1)
    else:
        # GIAS stage 2: one generator copy θ_i per image, all optimised at once (Adam is elementwise, so
        # one Adam over the stacked copies is N independent Adams driven by the shared batch loss).
        batches = _batches(update, attack.known_training_config, device)
        context = _context(net, params, buffers, victim, batches, device)
        net.train(update.bn_mode == "train")
        weights, _, render = per_image_generators(generator, update.num_samples, device)

        def step():
            loss = matching_loss(net, params, buffers, render(weights, variables), victim.labels, batches, update.lr,
                                 victim.observed, attack.objective, dict(attack.priors), context)
            loss.backward(inputs=list(weights.values()))
            return loss

        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(victim.seed)
            history = history + _descend(list(weights.values()), step, attack.generator_iterations,
                                         attack.generator_lr, signed=False, box=False,
                                         desc=f"{method.upper()} generators", progress=progress)
        stages.append(len(history))
        with torch.no_grad():
            images = render(weights, variables)
    gia_l, rog = method == "gia-l", method == "rog"
    low_shape = _variable_shape(attack, update)[2:] if rog else None
    config = dict(dataclasses.asdict(attack), seed=victim.seed, labels_inferred=victim.labels_inferred,
                  generator_copies=update.num_samples if gia_l else 0, stage_ends=stages,
                  restored=rog and restorer is not None, low_resolution=list(low_shape) if rog else None,
                  engine=engine, formulation="func" if engine.endswith("vectorized") else formulation)
    return Reconstruction(images=images.detach().cpu(), labels=victim.labels.cpu(), loss_history=tuple(history),
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
