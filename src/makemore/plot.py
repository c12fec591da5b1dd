"""The lectures' pictures of a run, as PNG files: `makemore plot RUN --kind KIND`.

    loss         train and val NLL from metrics.jsonl, and every step's batch loss, smoothed
    bigram       the bigram count table as a labelled heat map (seed 002)
    embedding    the character embeddings in 2D, projected by PCA when wider (lecture 2)
    activations  per-layer histograms and tanh saturation (lecture 3; needs --diagnostics)
    gradients    gradients at each layer's output and on each weight matrix (needs --diagnostics)
    updates      log10 update-to-data ratio of each weight matrix over training (needs --diagnostics)

Every function returns a Picture: the file, its size in pixels, and the numbers it drew, so
tests can check the numbers rather than the pixels. matplotlib (the `plot` extra) is imported
only here and only when drawing; figures are drawn on the Agg canvas, never a window.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .training import state as training_state
from .store import CONFIG, DIAGNOSTICS, STATE, RunDir, atomic_write, run_dataset, tensor_bytes
from .diagnostics import BINS, SATURATED
from .data import BOUNDARY_SHOWN
from .config import PLOT_KINDS
from .models import REGISTRY
from .errors import MakemoreError, RunError, WriteFailed

DPI = 100
SMOOTH_POINTS = 200  # the smoothed step loss has about this many points, as in the lectures' view(-1, 1000)
SMOOTH_MIN = 20  # ...but each averages at least this many steps, so short runs are smoothed too
GUIDE = -3  # lecture 3: updates about 1/1000 of the data are healthy
LEGEND_INSIDE = 8  # longer legends go below the axes


@dataclass
class Picture:
    path: Path
    size: tuple[int, int]  # (width, height) in pixels
    data: dict  # the numbers drawn
    figure: object  # the matplotlib Figure


def require_matplotlib():
    try:
        from matplotlib.figure import Figure
        import adjustText  # noqa: F401 - the embedding plot's labels
    except ImportError as e:
        raise MakemoreError(f"plotting needs matplotlib and adjustText ({e.name} is not installed): "
                            "pip install 'makemore[plot]'") from None
    return Figure


def new_figure(width: float, height: float):
    # a Figure without pyplot draws on the Agg canvas: no window, no global state
    return require_matplotlib()(figsize=(width, height), dpi=DPI, layout="constrained")


def save(fig, path: Path, data: dict) -> Picture:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    try:
        atomic_write(path, buf.getvalue())
    except WriteFailed as e:
        raise WriteFailed(path, e.error, elsewhere(path)) from None
    width, height = (int(round(v)) for v in fig.get_size_inches() * fig.dpi)
    return Picture(Path(path), (width, height), data, fig)


def png_path(path: str | Path) -> Path:
    """Where a picture goes, checked before any work is done: a PNG name in a folder that exists and
    that this process may write (os.access: a read-only file system, or a folder without write
    permission for this user; root may write any folder but a read-only file system's)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise MakemoreError(f"--out {path}: pictures are PNG files; give a name ending in .png")
    if not path.parent.is_dir():
        raise MakemoreError(f"--out {path}: directory {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise MakemoreError(f"cannot write {path}: the folder {path.parent} is not writable here; {elsewhere(path)}")
    return path


def elsewhere(path: Path) -> str:
    """What to do when a picture cannot be written where it was to go."""
    return f"pass --out with a PNG file in a folder you can write (e.g. --out ~/{path.name})"


def colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20" if n <= 20 else "viridis"]
    return [cmap(i if n <= 20 else i / max(1, n - 1)) for i in range(n)]


def plot(run_path: str | Path, kind: str, out: str | Path | None = None, step: int | None = None) -> Picture:
    """Draw `kind` for the run at `run_path` into `out` (default RUN/KIND.png)."""
    if kind not in PLOT_KINDS:
        raise MakemoreError(f"unknown plot kind {kind!r}; choose one of: {', '.join(PLOT_KINDS)}")
    if step is not None and kind not in ("activations", "gradients"):
        raise MakemoreError(f"--step picks the diagnostics of --kind activations or gradients; --kind {kind} does not read it")
    require_matplotlib()
    run = RunDir(run_path)
    config = run.read_config(REGISTRY)  # read first: a clear error for a missing or foreign directory
    model = config["model"]
    path = png_path(run.path / f"{kind}.png" if out is None else out)
    if kind == "loss":
        return loss(run, config, path)
    if kind in ("bigram", "embedding"):
        from .api import load

        loaded = load(run.path, device="cpu")
        return bigram(loaded, path) if kind == "bigram" else embedding(loaded, path)
    records = diagnostics(run)
    try:
        if kind == "updates":
            return updates(records, path)
        record = pick(records, step)
        return activations(model, records, record, path) if kind == "activations" else gradients(record, path)
    except (KeyError, TypeError, IndexError):
        raise RunError(f"{run.file(DIAGNOSTICS)} is not as this makemore writes it; retrain with --diagnostics") from None


# --- loss -------------------------------------------------------------------------------


def step_losses(run: RunDir, config: dict) -> torch.Tensor:
    """Every step's training batch loss, from the last checkpoint (empty for counted models). The
    state is read only if its header is of the size the run's model implies (read_state)."""
    if not run.file(STATE).exists():
        return torch.empty(0)
    from .api import skeleton

    model_bytes = tensor_bytes(skeleton(config, run.file(CONFIG)))
    return training_state.step_losses(run.file(STATE), model_bytes)


def smooth(values: torch.Tensor, window: int) -> dict:
    """Consecutive windows of `window` steps (the lectures' view(-1, window).mean(1)): each one's
    centre step, mean, and its quartiles, which show how noisy the batches are."""
    n = len(values) // window * window
    windows = values[:n].view(-1, window)
    if not len(windows):  # a counted model (the bigram) takes no steps: only its evaluation is drawn
        return {"smoothed_steps": [], "smoothed": [], "band": [[], []]}
    lo, hi = windows.nanquantile(torch.tensor([0.25, 0.75]), dim=1)
    return {"smoothed_steps": (torch.arange(len(windows)) * window + (window - 1) / 2).tolist(),
            "smoothed": windows.nanmean(1).tolist(), "band": [lo.tolist(), hi.tolist()]}


def loss(run: RunDir, config: dict, path: Path) -> Picture:
    metrics = run.read_metrics()
    losses = step_losses(run, config)
    if not metrics and not len(losses):
        raise RunError(f"{run.path} has no losses yet (metrics.jsonl is empty); train it first")
    window = max(1, min(SMOOTH_MIN, len(losses)), len(losses) // SMOOTH_POINTS)
    data = {"step_loss": losses.tolist(), "window": window, **smooth(losses, window), "eval_steps": [m["step"] for m in metrics],
            "train": [m["train_loss"] for m in metrics], "val": [m["val_loss"] for m in metrics]}
    fig = new_figure(11, 5.5)
    ax = fig.subplots()
    if len(losses):
        ax.fill_between(data["smoothed_steps"], *data["band"], color="C0", alpha=0.2, lw=0, label="training batches, middle half")
        ax.plot(data["smoothed_steps"], data["smoothed"], color="C0", lw=2, label=f"training batches, mean of each {window} steps")
    marker = "o" if len(metrics) <= 50 else None
    ax.plot(data["eval_steps"], data["train"], color="C1", marker=marker, lw=1.5, label="train split (exact)")
    ax.plot(data["eval_steps"], data["val"], color="C2", marker=marker, lw=1.5, label="val split (exact)")
    framed = data["band"][0] + data["band"][1] + data["train"] + data["val"]
    framed = [v for v in framed if math.isfinite(v)]  # a diverged step's loss is inf or NaN: frame the rest
    lo, hi = min(framed), max(framed)
    ax.set_ylim(lo - 0.05 * (hi - lo + 0.1), hi + 0.05 * (hi - lo + 0.1))
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per character)")
    best = f", best val {min(data['val']):.4f}" if metrics else ""
    ax.set_title(f"{config['model']}: training loss{best}")
    ax.grid(alpha=0.3)
    ax.legend()
    return save(fig, path, data)


# --- bigram ----------------------------------------------------------------------------


def labels(vocab) -> list[str]:
    """How each token is drawn: the seeds' '.' for the boundary, unless the data has '.' of its own."""
    shown = [vocab.shown(i) for i in range(len(vocab))]
    if BOUNDARY_SHOWN in vocab.alphabet:
        shown[0] = "•"
    return shown


def bigram_counts(run) -> torch.Tensor:
    """The bigram run's own counts, or the bigrams of the run's training split for any other model."""
    if run.config["model"] == "bigram":
        return run.model.counts.detach().cpu().long()
    from .models import ModelConfig
    from .models.bigram import Bigram

    counter = Bigram(ModelConfig(vocab_size=len(run.vocab)))
    counter.fit(run_dataset(run.config).packed("train"))
    return counter.counts.long()


def bigram(run, path: Path) -> Picture:
    counts = bigram_counts(run)
    V = counts.shape[0]
    shown = labels(run.vocab)
    cell = min(0.55, 80 / V)  # inches: 27 characters give the seed's 16-inch table; huge vocabularies stay drawable
    size = 8 * cell / 0.55
    fig = new_figure(V * cell + 0.6, V * cell + 1.0)
    ax = fig.subplots()
    ax.imshow(counts.numpy(), cmap="Blues")
    dark = counts.max().item() * 0.6
    for i in range(V):
        for j in range(V):
            n = counts[i, j].item()
            colour = "white" if n > dark else "0.35"
            ax.text(j, i, f"{shown[i]}{shown[j]}\n{n}", ha="center", va="center", color=colour, fontsize=size)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("second character")
    ax.set_ylabel("first character")
    ax.set_title(f"Bigram counts in the training split: {int(counts.sum()):,} pairs ('{shown[0]}' starts and ends every item)",
                 fontsize=max(9, 2 * size))
    return save(fig, path, {"chars": shown, "counts": counts.tolist()})


# --- embedding -------------------------------------------------------------------------


def project(weights: torch.Tensor) -> tuple[torch.Tensor, list[float] | None]:
    """(V, d) embeddings -> (V, 2) points: as they are when d <= 2, else the top two principal
    components (the share of variance each explains is returned too)."""
    w = weights.detach().float().cpu()
    if w.shape[1] == 1:
        return torch.cat([w, torch.zeros_like(w)], dim=1), None
    if w.shape[1] == 2:
        return w, None
    centred = w - w.mean(0)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    explained = (s**2 / (s**2).sum())[:2].tolist()
    return centred @ vh[:2].T, explained


def spread_labels(fig, ax, texts) -> None:
    """Move labels off each other and off the points (adjustText), each tied to its point by a line
    where it had to move: characters close in the embedding ("e" under "n") stay readable."""
    from adjustText import adjust_text
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # adjustText measures the labels as this canvas draws them
    adjust_text(texts, ax=ax, expand=(1.3, 1.4), arrowprops={"arrowstyle": "-", "color": "0.55", "lw": 0.6})


def embedding(run, path: Path) -> Picture:
    wte = getattr(run.model, "wte", None)
    if not isinstance(wte, torch.nn.Embedding):
        raise MakemoreError(f"the {run.config['model']} model has no table of character embeddings (wte) to plot; "
                            "train a model with one, such as mlp")
    points, explained = project(wte.weight)
    shown = labels(run.vocab)
    fig = new_figure(8, 8)
    ax = fig.subplots()
    ax.scatter(points[:, 0], points[:, 1], s=18, color="C0", zorder=3)
    texts = [ax.text(x, y, ch, ha="center", va="center", fontsize=12, fontweight="bold", color="0.1")
             for (x, y), ch in zip(points.tolist(), shown)]
    spread_labels(fig, ax, texts)
    d = wte.weight.shape[1]
    if explained:
        ax.set_xlabel(f"principal component 1 ({explained[0]:.0%} of variance)")
        ax.set_ylabel(f"principal component 2 ({explained[1]:.0%} of variance)")
        title = f"{run.config['model']}: {d}-dimensional character embeddings, PCA"
    else:
        ax.set_xlabel("dimension 1")
        ax.set_ylabel("dimension 2" if d == 2 else "(one dimension only)")
        title = f"{run.config['model']}: character embeddings"
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return save(fig, path, {"chars": shown, "points": points.tolist(), "explained": explained})


# --- diagnostics -----------------------------------------------------------------------


def diagnostics(run: RunDir) -> list[dict]:
    records = run.read_records(DIAGNOSTICS)
    if not records:
        raise RunError(f"{run.path} has no diagnostics; train it with --diagnostics to record them")
    return records


def pick(records: list[dict], step: int | None) -> dict:
    """The record at `step` or the last one before it (default: the last record)."""
    if step is None:
        return records[-1]
    before = [r for r in records if r["step"] <= step]
    if not before:
        raise MakemoreError(f"--step {step}: the first diagnostics were recorded at step {records[0]['step']}")
    return before[-1]


def density(h: dict) -> tuple[list[float], list[float]]:
    """Bin centres and densities of a recorded histogram, as torch.histogram(density=True) but
    over all values, so the area under the curve is the share inside its range."""
    lo, hi = h["range"]
    width = (hi - lo) / BINS
    total = (sum(h["hist"]) + h["outside"]) or 1
    return [lo + (i + 0.5) * width for i in range(BINS)], [c / (total * width) for c in h["hist"]]


def sci(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1e}"  # None: a ratio to a matrix that is all zeros


def histograms(ax, entries: list[tuple[str, dict]], title: str, xlabel: str) -> list[dict]:
    drawn = []
    for (label, h), colour in zip(entries, colours(len(entries))):
        x, y = density(h)
        ax.plot(x, y, color=colour, lw=1.5, label=label)
        drawn.append({"label": label, "x": x, "density": y, "mean": h["mean"], "std": h["std"]})
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    legend(ax, len(entries))
    return drawn


def legend(ax, n: int) -> None:
    """Inside the axes while it is short; below them, in two columns, once it would hide the curves."""
    if n <= LEGEND_INSIDE:
        ax.legend(fontsize=8)
    else:
        ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.12))


def height(n: int) -> float:
    """Figure height in inches with room for a legend of n entries below the axes."""
    return 5.5 if n <= LEGEND_INSIDE else 5.5 + 0.14 * math.ceil(n / 2)


def activations(model: str, records: list[dict], record: dict, path: Path) -> Picture:
    layers = record["layers"]
    if not layers:
        raise RunError(f"the {model} model has no tanh, sigmoid, GELU or ReLU layer the diagnostics could see (fused "
                       "recurrent kernels hide theirs: train it with --no-fused to see them); --kind gradients and "
                       "--kind updates show its weights")
    fig = new_figure(15, height(len(layers)))
    left, right = fig.subplots(1, 2, width_ratios=[3, 2])

    def label(layer):
        sat = f", saturated {layer['saturated']:.1%}" if "saturated" in layer else ""
        return f"{layer['name']}: mean {layer['mean']:+.2f}, std {layer['std']:.2f}{sat}"

    drawn = histograms(left, [(label(layer), layer) for layer in layers],
                       f"activation distribution at step {record['step']}", "activation")
    # right: how saturation (tanh) or spread (others) moved over training
    names = [layer["name"] for layer in layers]
    tanh = [layer["name"] for layer in layers if layer["kind"] == "tanh"]
    shown, key = (tanh, "saturated") if tanh else (names, "std")
    steps = [r["step"] for r in records]
    series = {}
    for name, colour in zip(shown, colours(len(shown))):
        values = [next((layer[key] for layer in r["layers"] if layer["name"] == name), float("nan")) for r in records]
        series[name] = [100 * v for v in values] if key == "saturated" else values
        right.plot(steps, series[name], color=colour, lw=1.5, label=name)
    right.set_title(f"tanh saturation (|t| > {SATURATED}) over training" if tanh else "activation std over training")
    right.set_xlabel("step")
    right.set_ylabel("% of units saturated" if tanh else "std")
    right.set_ylim(bottom=0)
    right.grid(alpha=0.3)
    legend(right, len(shown))
    return save(fig, path, {"step": record["step"], "layers": drawn, "over_training": {"steps": steps, key: series}})


def gradients(record: dict, path: Path) -> Picture:
    layers = [layer for layer in record["layers"] if "grad" in layer]
    weights = [p for p in record["params"] if "grad" in p]
    step = record["step"]
    fig = new_figure(15 if layers else 9, height(max(len(layers), len(weights))))
    axes = fig.subplots(1, 2) if layers else [fig.subplots()]
    data = {"step": step}
    if layers:
        entries = [(f"{layer['name']}: mean {layer['grad']['mean']:+.1e}, std {layer['grad']['std']:.1e}", layer["grad"])
                   for layer in layers]
        data["layers"] = histograms(axes[0], entries, f"gradient at each layer's output, step {step}", "gradient")
    entries = [(f"{p['name']} {tuple(p['shape'])}: std {p['grad']['std']:.1e}, grad:data {sci(p['grad_data'])}", p["grad"])
               for p in weights]
    data["weights"] = histograms(axes[-1], entries, f"weight gradient distribution, step {step}", "gradient")
    for entry, p in zip(data["weights"], weights):
        entry["grad_data"] = p["grad_data"]
    return save(fig, path, data)


def updates(records: list[dict], path: Path) -> Picture:
    steps = [r["step"] for r in records]
    names = [p["name"] for p in records[0]["params"]]
    shapes = {p["name"]: tuple(p["shape"]) for p in records[0]["params"]}
    fig = new_figure(12, 5.5)
    ax = fig.subplots()
    series = {}
    for name, colour in zip(names, colours(len(names))):
        values = [next((p["update_data"] for p in r["params"] if p["name"] == name), None) for r in records]
        series[name] = [float("nan") if v is None else v for v in values]
        ax.plot(steps, series[name], color=colour, lw=1.5, label=f"{name} {shapes[name]}")
    ax.axhline(GUIDE, color="black", ls="--", lw=1, label="1e-3 guide")
    ax.set_title("update-to-data ratio of each weight matrix: log10(std(ΔW) / std(W))")
    ax.set_xlabel("step")
    ax.set_ylabel("log10 update : data")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return save(fig, path, {"steps": steps, "update_data": series})


# --- learning-rate search (lrfind.py) ----------------------------------------------------


def lr_curve(result, path: Path) -> Picture:
    fig = new_figure(11, 5.5)
    ax = fig.subplots()
    ax.plot(result.lrs, result.losses, color="C0", alpha=0.25, lw=0.7, label="batch loss")
    ax.plot(result.lrs, result.smoothed, color="C0", lw=2, label="smoothed")
    ax.axvline(result.best_lr, color="0.4", ls=":", lw=1.2, label=f"lowest smoothed loss at lr {result.best_lr:.3g}")
    ax.axvline(result.suggested, color="C3", ls="--", lw=1.5, label=f"suggested lr {result.suggested:.3g} (a third of it)")
    ax.set_xscale("log")
    # frame from the lowest loss up to the starting loss: the blow-up may leave through the top
    finite = [v for v in result.smoothed if math.isfinite(v)]
    lo, hi = min(finite), max(finite[: max(1, len(finite) // 10)])
    ax.set_ylim(lo - 0.1 * (hi - lo + 0.1), hi + 0.3 * (hi - lo + 0.1))
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("loss (nats per character)")
    stopped = ", stopped where the loss blew up" if result.diverged else ""
    ax.set_title(f"learning-rate search: {result.model}, {result.optimizer}, lr {result.lrs[0]:.2g} to {result.lrs[-1]:.2g} "
                 f"in {len(result.lrs)} steps{stopped}")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    data = {"lrs": result.lrs, "losses": result.losses, "smoothed": result.smoothed, "suggested": result.suggested}
    return save(fig, png_path(path), data)
