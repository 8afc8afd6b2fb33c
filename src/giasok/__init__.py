"""giasok — a reproducible companion to "SoK: On Gradient Leakage in Federated Learning".

Modules, named after the paper's concepts:

* ``models`` — victim networks taking [0, 1] images (ConvNet with Table 4's switches, LeNet, CIFAR ResNets with
  cuttable skips, pre-activation ResNet-18, Ju et al.'s connection-reduced DenseNets, the §5.1 zoo, Swin-T).
* ``data`` — CIFAR/ImageNet loaders and the offline ``patches`` / ``canaries`` sets.
* ``fl`` — a client's local training (FedSGD, FedAvg) and its shared update (``ClientUpdate.restricted``: the
  part an adversary matches).
* ``defenses`` — §6's post-processings of an update (quantisation, sign, top-k, clipping, Gaussian noise).
* ``attacks`` — GIA-O, GIA-L and ROG against an update (one ``AttackConfig`` per attack), and label inference.
* ``priors`` — total variation and BatchNorm-statistics priors.
* ``generative`` — the DCGAN GIA-L searches (trained and cached here) and BigGAN.
* ``restoration`` — ROG's post-processing network (trained and cached here).
* ``metrics`` — PSNR, SSIM, LPIPS, Hungarian matching, BRR, WSRR.
* ``theory`` — §4.1's Lemma 4.1 and Theorem 4.2, executed.
* ``igsa`` — input-gradient smoothness (§5.1.1, Eq. 10).
* ``runs`` — cached experiments (``GiaExperiment``, ``FedAvgTraining``) and grids of them in worker processes.
* ``profiles`` — the smoke/cpu/paper sizes: one small dataclass per section, composed into ``Profile``.
* ``paths`` — where data, caches and results live (``$GIASOK_DATA``, ``$GIASOK_RESULTS``) and the cache version.
* ``claims`` — the book's one significance rule, claim records and the scorecard.
* ``provenance`` — the commit, versions, device and wall time behind each chapter's numbers.

Sections (one per chapter, each importing only the library): ``systematization`` (§2), ``training_setup``
(§4.1), ``data_dimension`` (§4.2.1), ``training_stage`` (§5.1), ``architecture`` (§5.2),
``post_processing`` (§6). Notebook-only: ``notebook`` (display and
static widgets) and ``book`` (executing and building the book).
"""

__version__ = "0.1.0"
