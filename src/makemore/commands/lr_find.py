"""`makemore lr-find`: the lectures' learning-rate search, plotted, with a suggested rate (lrfind.py)."""

from __future__ import annotations

from ..config import MODEL_OPTIONS, SWEEP_OPTIONS, TRAIN_OPTIONS
from .options import add_device, add_options, options_given


def add_parser(commands):
    p = commands.add_parser("lr-find", help="sweep the learning rate, plot loss against it, suggest a rate",
                            description="The lectures' learning-rate search: train a fresh model for --steps steps while "
                                        "the rate grows exponentially from --lr-min to --lr-max, plot the batch loss "
                                        "against the rate, and suggest a third of the rate where the smoothed loss is "
                                        "lowest. Stops early once the loss blows up.")
    p.add_argument("--data", help="text file, one item per line, or a built-in dataset (default: names)")
    p.add_argument("--model", help="model name (see `makemore models`)")
    p.add_argument("--out", default="lr-find.png", help="PNG file to write (default: lr-find.png)")
    p.add_argument("--steps", type=int, default=1000, metavar="N", help="steps of the sweep (default 1000)")
    p.add_argument("--lr-min", type=float, default=1e-4, metavar="F", help="first learning rate (default 1e-4)")
    p.add_argument("--lr-max", type=float, default=10.0, metavar="F", help="last learning rate (default 10)")
    add_device(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_options(p.add_argument_group("training"), {k: TRAIN_OPTIONS[k] for k in SWEEP_OPTIONS})
    add_options(p.add_argument_group("model"), MODEL_OPTIONS)
    return p


def run(args) -> int:
    from ..lrfind import lr_find
    from ..plot import lr_curve, png_path, require_matplotlib

    require_matplotlib()  # fail before the sweep, not after it
    png_path(args.out)
    options = {**options_given(args, SWEEP_OPTIONS), **options_given(args, MODEL_OPTIONS)}
    result = lr_find(data=args.data, model=args.model, steps=args.steps, lr_min=args.lr_min, lr_max=args.lr_max,
                     device=args.device, quiet=args.quiet, **options)
    picture = lr_curve(result, args.out)
    stopped = f"; stopped after {len(result.lrs)} steps, where the loss blew up" if result.diverged else ""
    print(f"suggested lr: {result.suggested:.3g} (a third of {result.best_lr:.3g}, where the smoothed loss is lowest{stopped})")
    given = " ".join(f"--{k} {v}" for k, v in (("data", args.data), ("model", args.model)) if v is not None)
    print(f"to train with it: makemore train {given + ' ' if given else ''}--lr {result.suggested:.3g}")
    print(f"plot: {picture.path}")
    return 0
