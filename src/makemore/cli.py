"""Command line: argument parsing only; the work is done by the modules it calls."""

from __future__ import annotations

import argparse
import json
import sys

from .device import DEVICES
from .diagnostics import DEFAULT_INTERVAL
from .errors import MakemoreError
from .plot import KINDS
from .signals import Terminated, exit_status, stop_on_signals

# model options: (ModelConfig field, type, help); bools become --flag / --no-flag
MODEL_OPTIONS = [
    ("block_size", int, "characters of context (mlp, wavenet)"),
    ("n_embd", int, "embedding width"),
    ("n_hidden", int, "hidden width"),
    ("n_layer", int, "number of layers"),
    ("n_head", int, "attention heads (transformer)"),
    ("dropout", float, "dropout probability"),
    ("batchnorm", bool, "BatchNorm before the tanh (mlp)"),
    ("kaiming", bool, "Kaiming init with the tanh gain (mlp)"),
    ("output_scale", float, "scale of the output layer at init (mlp)"),
    ("smoothing", float, "add-k smoothing of the counts (bigram)"),
    ("l2", float, "L2 penalty on the weight table (bigram-nn)"),
]
TRAIN_OPTIONS = [
    ("max_steps", int, "optimisation steps (default: the model's)"),
    ("time_budget", float, "stop after this many seconds of training"),
    ("batch_size", int, "items per batch (characters for mlp)"),
    ("lr", float, "learning rate"),
    ("optimizer", ["adamw", "sgd"], "optimiser"),
    ("lr_schedule", ["constant", "step", "cosine"], "step: lr/10 from half way; cosine: down to lr/10"),
    ("weight_decay", float, "AdamW weight decay"),
    ("warmup_steps", int, "linear learning-rate warm-up steps"),
    ("ema", float, "keep a moving average of the weights with this decay (e.g. 0.999) and evaluate and save it; 0: off"),
    ("eval_interval", int, "steps between exact evaluations and checkpoints"),
    ("diagnostics", bool, "record activation, gradient and update statistics for `makemore plot`"),
    ("diagnostics_interval", int, f"steps between diagnostic records (default {DEFAULT_INTERVAL})"),
    ("tensorboard", bool, "also log losses and learning rate to RUN/tensorboard (needs makemore[tensorboard])"),
]
LR_FIND_OPTIONS = {"batch_size", "optimizer", "weight_decay"}  # the training options an lr search reads
RESUMABLE = {"max_steps", "time_budget"}  # what --resume may change


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_options(p: argparse.ArgumentParser, options) -> None:
    for name, kind, text in options:
        if kind is bool:
            p.add_argument(flag(name), action=argparse.BooleanOptionalAction, default=None, help=text)
        elif isinstance(kind, list):
            p.add_argument(flag(name), choices=kind, default=None, help=text)
        else:
            p.add_argument(flag(name), type=kind, default=None, metavar="N" if kind is int else "F", help=text)


def build_parser() -> Parser:
    parser = Parser(prog="makemore", description="Learn from a file of lines, then make more things like them.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("train", help="train a model into a run directory")
    p.add_argument("--data", help="text file, one item per line, or a built-in dataset (default: names)")
    p.add_argument("--model", help="model name (see `makemore models`)")
    p.add_argument("--out", help="run directory (default: runs/MODEL)")
    p.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint")
    p.add_argument("--force", action="store_true", help="replace an existing run directory")
    p.add_argument("--seed", type=int, default=None, help="random seed for init and batches (default 1337)")
    p.add_argument("--split-seed", type=int, default=None, help="seed of the train/val/test shuffle (default 42)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--samples", type=int, default=10, metavar="N", help="items to show when training ends")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_options(p.add_argument_group("training"), TRAIN_OPTIONS)
    add_options(p.add_argument_group("model"), MODEL_OPTIONS)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="exact NLL of a run over a whole split")
    p.add_argument("run")
    p.add_argument("--split", choices=["train", "val", "test"], default="val")
    p.add_argument("--data", help="evaluate on this file's split instead of the run's data")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("sample", help="generate new items from a run")
    p.add_argument("run")
    p.add_argument("-n", type=int, default=10, help="how many items (default 10)")
    p.add_argument("--seed", type=int, default=None, help="same seed, same items (default: random)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--prefix", default="", help="continue items that start with this text")
    p.add_argument("--novel", action="store_true", help="only distinct items not in the training data")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("score", help="log-likelihood of given items under a run's model")
    p.add_argument("run")
    p.add_argument("text", nargs="+")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("plot", help="draw a picture of a run: loss, bigram table, embeddings, diagnostics",
                       description="Draw one of the lectures' pictures of a run as a PNG file.",
                       epilog="kinds: loss (train/val NLL and the smoothed step loss), bigram (count table heat map), "
                              "embedding (characters in 2D, PCA when wider), activations, gradients, updates "
                              "(the last three need a run trained with --diagnostics)")
    p.add_argument("run")
    p.add_argument("--kind", required=True, choices=KINDS)
    p.add_argument("--out", help="PNG file to write (default: RUN/KIND.png)")
    p.add_argument("--step", type=int, default=None, metavar="N",
                   help="activations, gradients: the diagnostics recorded at step N or the last before it (default: the last)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("lr-find", help="sweep the learning rate, plot loss against it, suggest a rate",
                       description="The lectures' learning-rate search: train a fresh model for --steps steps while the "
                                   "rate grows exponentially from --lr-min to --lr-max, plot the batch loss against the "
                                   "rate, and suggest a third of the rate where the smoothed loss is lowest. Stops early "
                                   "once the loss blows up.")
    p.add_argument("--data", help="text file, one item per line, or a built-in dataset (default: names)")
    p.add_argument("--model", help="model name (see `makemore models`)")
    p.add_argument("--out", default="lr-find.png", help="PNG file to write (default: lr-find.png)")
    p.add_argument("--steps", type=int, default=1000, metavar="N", help="steps of the sweep (default 1000)")
    p.add_argument("--lr-min", type=float, default=1e-4, metavar="F", help="first learning rate (default 1e-4)")
    p.add_argument("--lr-max", type=float, default=10.0, metavar="F", help="last learning rate (default 10)")
    p.add_argument("--seed", type=int, default=None, help="random seed for init and batches (default 1337)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_options(p.add_argument_group("training"), [o for o in TRAIN_OPTIONS if o[0] in LR_FIND_OPTIONS])
    add_options(p.add_argument_group("model"), MODEL_OPTIONS)
    p.set_defaults(func=cmd_lr_find)

    p = sub.add_parser("models", help="list the models")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)
    return parser


def options_given(args, options) -> dict:
    return {name: getattr(args, name) for name, _, _ in options if getattr(args, name) is not None}


def cmd_train(args) -> int:
    from .train import resume, train

    given = {**options_given(args, TRAIN_OPTIONS), **options_given(args, MODEL_OPTIONS)}
    if args.samples < 0:
        raise MakemoreError(f"--samples must be >= 0 (got {args.samples})")
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    if args.resume:
        fixed = [flag(k) for k in given if k not in RESUMABLE]
        fixed += [f for f, v in (("--data", args.data), ("--model", args.model), ("--out", args.out), ("--seed", args.seed),
                                 ("--split-seed", args.split_seed)) if v is not None]
        if fixed:
            raise MakemoreError(f"--resume continues a run as it was configured; only --max-steps and --time-budget may change (drop {', '.join(fixed)})")
        result = resume(args.resume, device=args.device, quiet=args.quiet, log=log, **given)
    else:
        if args.seed is not None:
            given["seed"] = args.seed
        if args.split_seed is not None:
            given["split_seed"] = args.split_seed
        result = train(data=args.data, model=args.model, out=args.out, device=args.device, force=args.force,
                       quiet=args.quiet, log=log, **given)
    print(f"run: {result.run_dir}  ({result.steps} steps, {result.seconds:.1f} s)")
    for split, r in result.final.items():
        print(f"{split:5s} nll {r.nll:.4f}  bits/char {r.bits_per_char:.4f}  perplexity {r.perplexity:.3f}  ({r.chars} chars)")
    if args.samples:
        from .api import load

        print("samples:")
        for item in load(result.run_dir, device=args.device).sample(args.samples, seed=0):
            print("  " + item)
    return 130 if result.interrupted else 0


def cmd_eval(args) -> int:
    from .api import load

    r = load(args.run, device=args.device).evaluate(args.split, args.data)
    if args.json:
        print(json.dumps(r.to_dict()))
    else:
        print(f"{r.split}: nll {r.nll:.4f} nats/char, {r.bits_per_char:.4f} bits/char, perplexity {r.perplexity:.3f} "
              f"over {r.chars} characters in {r.items} items")
    return 0


def cmd_sample(args) -> int:
    from .api import NotEnoughNovel, load

    run = load(args.run, device=args.device)
    status = 0
    try:
        items = run.sample(args.n, args.seed, args.temperature, args.top_k, args.top_p, args.prefix, args.novel)
    except NotEnoughNovel as e:
        items, status = e.found, e.exit_code
        print(f"makemore: {e}", file=sys.stderr)
    print(json.dumps(items, ensure_ascii=False) if args.json else "\n".join(items))
    return status


def cmd_score(args) -> int:
    from .api import load

    scores = load(args.run, device=args.device).score(args.text)
    if args.json:
        print(json.dumps([s.to_dict() for s in scores], ensure_ascii=False))
    else:
        for s in scores:
            print(f"{s.text}\tnll {s.nll:.4f}\tper char {s.nll_per_char:.4f}\tchars {s.chars}")
    return 0


def cmd_plot(args) -> int:
    from .plot import plot

    print(plot(args.run, args.kind, args.out, args.step).path)
    return 0


def cmd_lr_find(args) -> int:
    from .lrfind import lr_find
    from .plot import lr_curve, png_path, require_matplotlib

    require_matplotlib()  # fail before the sweep, not after it
    png_path(args.out)
    options = {**options_given(args, [o for o in TRAIN_OPTIONS if o[0] in LR_FIND_OPTIONS]), **options_given(args, MODEL_OPTIONS)}
    if args.seed is not None:
        options["seed"] = args.seed
    result = lr_find(data=args.data, model=args.model, steps=args.steps, lr_min=args.lr_min, lr_max=args.lr_max,
                     device=args.device, quiet=args.quiet, **options)
    picture = lr_curve(result, args.out)
    stopped = f"; stopped after {len(result.lrs)} steps, where the loss blew up" if result.diverged else ""
    print(f"suggested lr: {result.suggested:.3g} (a third of {result.best_lr:.3g}, where the smoothed loss is lowest{stopped})")
    print(f"plot: {picture.path}")
    return 0


def cmd_models(args) -> int:
    from .models import REGISTRY, default_params

    rows = [{"name": name, "description": spec.description, "reference": spec.reference, "params": default_params(name)}
            for name, spec in REGISTRY.items()]
    if args.json:
        print(json.dumps(rows))
    else:
        width = max(len(r["name"]) for r in rows)
        for r in rows:
            print(f"{r['name']:{width}s}  {r['params']:>9,d} params  {r['description']} [{r['reference']}]")
    return 0


def main(argv=None) -> int:
    with stop_on_signals():
        try:
            args = build_parser().parse_args(argv)
            status = args.func(args)
            return exit_status() if status == 130 else status  # 130: the trainer stopped on Ctrl-C or SIGTERM
        except MakemoreError as e:
            print(f"makemore: error: {e}", file=sys.stderr)
            return e.exit_code
        except KeyboardInterrupt as e:
            print("makemore: terminated" if isinstance(e, Terminated) else "makemore: interrupted", file=sys.stderr)
            return exit_status(e)
        except BrokenPipeError:  # output piped into `head` and the like
            sys.stderr.close()
            return 0
