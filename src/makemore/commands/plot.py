"""`makemore plot RUN --kind KIND`: one of the lectures' pictures of a run, as a PNG file (plot.py)."""

from __future__ import annotations

from ..config import PLOT_KINDS


def add_parser(commands):
    p = commands.add_parser("plot", help="draw a picture of a run: loss, bigram table, embeddings, diagnostics",
                            description="Draw one of the lectures' pictures of a run as a PNG file.",
                            epilog="kinds: loss (train/val NLL and the smoothed step loss), bigram (count table heat map), "
                                   "embedding (characters in 2D, PCA when wider), activations, gradients, updates "
                                   "(the last three need a run trained with --diagnostics)")
    p.add_argument("run")
    p.add_argument("--kind", required=True, choices=PLOT_KINDS)
    p.add_argument("--out", help="PNG file to write (default: RUN/KIND.png)")
    p.add_argument("--step", type=int, default=None, metavar="N",
                   help="activations, gradients: the diagnostics recorded at step N or the last before it (default: the last)")
    return p


def run(args) -> int:
    from ..plot import plot

    print(plot(args.run, args.kind, args.out, args.step).path)
    return 0
