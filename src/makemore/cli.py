"""Command line: argument parsing only; the work is done by the modules it calls."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

from .config import MODEL_OPTIONS, SAMPLE_OPTIONS, TRAIN_OPTIONS, OptionError, flag
from .device import DEVICES
from .errors import MakemoreError, secondary_rank, world_size
from .lrfind import SWEEP_OPTIONS
from .output import FORMATS
from .plot import KINDS
from .signals import EXIT_STATUS, Terminated, exit_status, stop_on_signals

LINGER = 30  # seconds a rank other than 0 waits to be stopped after an error (linger)
UNSET = "an option not given takes the model's default (see `makemore models --json`)"
RUN_SETTINGS = ("data", "model", "out", "force")  # what a resumed run keeps from its own config.json
EXPLAIN_TOP = 3  # alternatives `score --explain` shows at each position
CONSTRAINTS_HELP = ("--prefix, --min-len and --max-len shape each item as it is drawn (the length rules change the "
                    "model's odds: items are cut at --max-len and run on until --min-len); --novel, --suffix, --contains, "
                    "--exclude and --unique keep only the items that meet them, drawing at most max(1000, 50 n) items in "
                    "all: when that finds fewer than n, the ones found are given, stderr says how many of how many draws, "
                    "and the exit status is 1")

class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_options(p: argparse.ArgumentParser, options: dict) -> None:
    """A flag per declared option (config.py); unset flags stay None, so the model's defaults apply."""
    for name, opt in options.items():
        text = opt.spec.help + applies_shown(name) + default_shown(name, opt.default)
        flags = [opt.spec.short] if opt.spec.short else [flag(name)]
        if opt.kind is bool:
            p.add_argument(*flags, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif opt.spec.choices:
            p.add_argument(*flags, choices=opt.spec.choices, default=None, help=text)
        else:
            metavar = opt.spec.metavar or {int: "N", float: "F", str: "TEXT"}[opt.kind]
            p.add_argument(*flags, dest=name, type=opt.kind, default=None, metavar=metavar, help=text)


def applies_shown(name: str) -> str:
    """' (mlp, wavenet)': the models or runs an option applies to, where it does not apply to all."""
    if name not in (*TRAIN_OPTIONS, *MODEL_OPTIONS):
        return ""
    from .models import applies_to

    where = applies_to(name)
    return "" if where == "every model" else f" ({where})"


def default_shown(name: str, default) -> str:
    """' (default X)' when every model has the same default; else the model's own applies (`makemore models`)."""
    from .models import REGISTRY

    if default is None or isinstance(default, bool) or name not in (*TRAIN_OPTIONS, *MODEL_OPTIONS):
        return f" (default {default})" if isinstance(default, (int, float)) and not isinstance(default, bool) else ""
    same = all(getattr(spec.train if name in TRAIN_OPTIONS else spec.config, name) == default for spec in REGISTRY.values())
    return f" (default {default})" if same else ""


def build_parser() -> Parser:
    parser = Parser(prog="makemore", description="Learn from a file of lines, then make more things like them.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("train", help="train a model into a run directory")
    p.add_argument("--data", help="text file, one item per line (item<TAB>label on every line for labelled data), or a "
                                  "built-in dataset (default: names). An item is a sequence of Unicode code points: an "
                                  "accent written apart from its letter, or an emoji joined by U+200D, is several")
    p.add_argument("--model", help="model name (see `makemore models`)")
    p.add_argument("--out", help="run directory (default: runs/MODEL)")
    p.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint")
    p.add_argument("--force", action="store_true", help="replace an existing run directory (only the files makemore wrote)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--samples", type=int, default=10, metavar="N", help="items to show when training ends")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--nproc", type=int, metavar="N", help="train in N processes on this machine (DistributedDataParallel "
                                                          "through torchrun's launcher: CPU processes, or one per CUDA GPU); "
                                                          "--batch-size is then the batch of all of them together")
    add_options(p.add_argument_group("training", UNSET), TRAIN_OPTIONS)
    add_options(p.add_argument_group("model", UNSET), MODEL_OPTIONS)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="exact NLL of a run over a whole split")
    p.add_argument("run")
    p.add_argument("--split", choices=["train", "val", "test"], default="val")
    p.add_argument("--data", help="evaluate on this file's split instead of the run's data")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("sample", help="generate new items from a run (or the bundled model)", epilog=CONSTRAINTS_HELP)
    p.add_argument("run", nargs="?", help="run directory (default: the bundled model, an lstm trained on names-sex)")
    add_options(p, SAMPLE_OPTIONS)
    p.add_argument("--device", choices=DEVICES, default="auto")
    # output (issue #11): where the items go and in what form
    p.add_argument("--format", choices=FORMATS, help="txt: one item per line; json: a list; csv: a header, then each "
                                                     "item and its nll_per_char (default: --out's extension, else txt)")
    p.add_argument("--json", action="store_true", help="the same as --format json")
    p.add_argument("--out", metavar="FILE", help="write the items to FILE, whole or not at all, instead of printing them "
                                                 "(either way they are written as they are drawn, in constant memory)")
    p.add_argument("--force", action="store_true", help="let --out replace an existing file")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("score", help="log-likelihood of given items under a run's model")
    p.add_argument("run")
    p.add_argument("text", nargs="+")
    p.add_argument("--label", help="a labelled model: the likelihood given this label (default: under any label, "
                                   "weighted by the labels' frequencies)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--json", action="store_true")
    p.add_argument("--explain", action="store_true", help=f"per character (the end included): the probability the "
                                                          f"model gave it, its rank, and the model's top {EXPLAIN_TOP} there")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("classify", help="a labelled model's posterior of each label for given items",
                       description="p(label | item) for each label, from the model's p(item | label) and the labels' "
                                   "frequencies in the training split (Bayes' rule).")
    p.add_argument("run")
    p.add_argument("text", nargs="+")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_classify)

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
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_options(p.add_argument_group("training"), {k: TRAIN_OPTIONS[k] for k in SWEEP_OPTIONS})
    add_options(p.add_argument_group("model"), MODEL_OPTIONS)
    p.set_defaults(func=cmd_lr_find)

    p = sub.add_parser("serve", help="a web page and a JSON API to generate and score (needs makemore[serve])")
    p.add_argument("run", nargs="*", help="run directories to serve, each named after its directory (default: the bundled model)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="also answer requests addressed to this name (repeatable; '*' for any). Without it the server "
                        "answers only its own names: localhost, 127.0.0.1 and [::1] for the default --host, so that "
                        "no other web page can reach it through DNS rebinding")
    p.add_argument("--time-limit", type=float, default=10.0, metavar="SECONDS",
                   help="seconds of computing one request may take before it is stopped and answered 503 (default 10)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("models", help="list the models")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)
    return parser


def options_given(args, options) -> dict:
    return {name: getattr(args, name) for name in options if getattr(args, name, None) is not None}


def cmd_train(args) -> int:
    from .trainer import resume, train

    given = {**options_given(args, TRAIN_OPTIONS), **options_given(args, MODEL_OPTIONS)}
    if args.samples < 0:
        raise MakemoreError(f"--samples must be >= 0 (got {args.samples})")
    if args.nproc is not None:
        from .launch import check_nproc, launch

        check_nproc(args.nproc)
        if args.nproc > 1 and world_size() == 1:  # each process it starts runs this same command, as one rank
            return launch(args.nproc, args.argv)
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    if args.resume:
        kept = [name for name in RUN_SETTINGS if getattr(args, name)]
        if kept:
            raise MakemoreError(f"--resume continues a run with its own {', '.join(map(flag, kept))}; "
                                f"drop {'it' if len(kept) == 1 else 'them'}")
        result = resume(args.resume, device=args.device, quiet=args.quiet, log=log, **given)
    else:
        result = train(data=args.data, model=args.model, out=args.out, device=args.device, force=args.force,
                       quiet=args.quiet, log=log, **given)
    status = 130 if result.interrupted else 0
    if secondary_rank():  # rank 0 of a distributed run reports
        return status
    print(f"run: {result.run_dir}  ({result.steps} steps, {result.seconds:.1f} s)")
    for split, r in result.final.items():
        print(f"{split:5s} nll {r.nll:.4f}  bits/char {r.bits_per_char:.4f}  perplexity {r.perplexity:.3f}  ({r.chars} chars)")
    if args.samples:
        from .api import load

        print("samples:")
        for item in load(result.run_dir, device=args.device).sample(args.samples, seed=0):
            print("  " + item)
    return status


def cmd_eval(args) -> int:
    from .api import load

    r = load(args.run, device=args.device).evaluate(args.split, args.data)
    if args.json:
        print(json.dumps(r.to_dict()))
    else:
        print(f"{r.split}: nll {r.nll:.4f} nats/char, {r.bits_per_char:.4f} bits/char, perplexity {r.perplexity:.3f} "
              f"over {r.chars} characters in {r.items} items")
        for label, part in (r.by_label or {}).items():
            print(f"  label {label}: nll {part.nll:.4f} nats/char, {part.bits_per_char:.4f} bits/char over {part.chars} "
                  f"characters in {part.items} items")
    return 0


def cmd_sample(args) -> int:
    from contextlib import nullcontext

    from .api import load
    from .constraints import NotEnough
    from .output import ItemWriter, check_out, format_of, out_file

    if args.json and args.format not in (None, "json"):
        raise MakemoreError(f"--json is --format json; give one of --json and --format {args.format}")
    fmt = "json" if args.json else format_of(args.out, args.format)
    if args.out is not None:
        check_out(args.out, args.force)  # before sampling, not after
    if args.run is None:
        from .api import PRETRAINED, load_pretrained

        run = load_pretrained(device=args.device)
        print(f"makemore: no run given, so sampling from the bundled model ({run.config['model']} trained on "
              f"{run.config['data']['source']}, in {PRETRAINED}); pass a run directory to use your own", file=sys.stderr)
    else:
        run = load(args.run, device=args.device)
    status, shortfall = 0, None
    chunks = run.stream(**options_given(args, SAMPLE_OPTIONS))  # checks every option before anything is written
    # each chunk is written as it is drawn, so millions of items are never all in memory; to --out
    # through a temporary file renamed at the end, so the file is whole or not there
    with nullcontext(sys.stdout) if args.out is None else out_file(args.out, args.force) as out:
        writer = ItemWriter(out, fmt)
        try:
            for items in chunks:
                writer.write(items, run.score(items) if fmt == "csv" else None)
        except NotEnough as e:  # the items found are written; say how many of how many
            status, shortfall = e.exit_code, e
        writer.close()
    if shortfall is not None:
        print(f"makemore: {shortfall}", file=sys.stderr)
    if args.out is not None:
        print(f"makemore: wrote {writer.count} items to {args.out} ({fmt})", file=sys.stderr)
    return status


def cmd_score(args) -> int:
    from .api import load

    run = load(args.run, device=args.device)
    if args.explain:
        return explain_items(run, args)
    scores = run.score(args.text, args.label)
    if args.json:
        print(json.dumps([s.to_dict() for s in scores], ensure_ascii=False))
    else:
        for s in scores:
            print(f"{s.text}\tnll {s.nll:.4f}\tper char {s.nll_per_char:.4f}\tchars {s.chars}")
    return 0


def explain_items(run, args) -> int:
    from .explain import explain_many
    from .output import explanation

    texts = [t.strip() for t in args.text]
    labels = None
    if run.labels:  # given --label, or else each item's most likely label
        labels = [args.label] * len(texts) if args.label else [max(p, key=p.get) for p in run.classify(texts)]
        print(f"labels: {', '.join(f'{t} {label}' for t, label in zip(texts, labels))}" +
              ("" if args.label else " (each item's most likely; pass --label to choose)"), file=sys.stderr)
    explained = explain_many(run.model, run.vocab, texts, top=EXPLAIN_TOP, labels=labels)
    if args.json:
        print(json.dumps([{"text": t, "nll": sum(p.surprise for p in ps), "positions": [p.to_dict() for p in ps]}
                          for t, ps in zip(texts, explained)], ensure_ascii=False))
    else:
        print("\n\n".join(explanation(t, ps) for t, ps in zip(texts, explained)))
    return 0


def cmd_classify(args) -> int:
    from .api import load

    posteriors = load(args.run, device=args.device).classify(args.text)
    if args.json:
        print(json.dumps([{"text": t, "posterior": p} for t, p in zip(args.text, posteriors)], ensure_ascii=False))
    else:
        for text, posterior in zip(args.text, posteriors):
            print(text + "\t" + "  ".join(f"{label} {p:.3f}" for label, p in sorted(posterior.items(), key=lambda kv: -kv[1])))
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
    options = {**options_given(args, SWEEP_OPTIONS), **options_given(args, MODEL_OPTIONS)}
    result = lr_find(data=args.data, model=args.model, steps=args.steps, lr_min=args.lr_min, lr_max=args.lr_max,
                     device=args.device, quiet=args.quiet, **options)
    picture = lr_curve(result, args.out)
    stopped = f"; stopped after {len(result.lrs)} steps, where the loss blew up" if result.diverged else ""
    print(f"suggested lr: {result.suggested:.3g} (a third of {result.best_lr:.3g}, where the smoothed loss is lowest{stopped})")
    print(f"plot: {picture.path}")
    return 0


def cmd_serve(args) -> int:
    from .serve import Limits, serve  # needs the serve extra; says what to install when it is missing

    if not (args.time_limit > 0 and math.isfinite(args.time_limit)):
        raise MakemoreError(f"--time-limit must be a number of seconds above 0 (got {args.time_limit:g})")
    serve(args.run, host=args.host, port=args.port, device=args.device, limits=Limits(time_limit=args.time_limit),
          allowed_hosts=args.allowed_host)
    return 0


def cmd_models(args) -> int:
    from .models import REGISTRY, default_params, model_options, why_not

    # "train": the training options that apply to the model run with its defaults (models.why_not)
    rows = [{"name": name, "description": spec.description, "reference": spec.reference, "params": default_params(name),
             "options": {k: getattr(spec.config, k) for k in model_options(name)},
             "train": {k: v for k, v in spec.train.to_dict().items() if not why_not(k, name, spec.config, spec.train)}}
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
        status = run(argv)
        if status and status not in EXIT_STATUS.values() and secondary_rank():
            linger()
        return status


def linger() -> None:
    """A rank other than 0 that stops with an error waits for rank 0, which says why, to exit first:
    the launcher then stops this one (torchrun stops the others when one process ends with an
    error). Had this rank exited first, the launcher could have stopped rank 0 mid-sentence. (After
    a signal there is no need: rank 0 only notes another one while it finishes, signals.deferred.)"""
    try:
        time.sleep(LINGER)
    except KeyboardInterrupt:
        pass


def run(argv) -> int:
    """The command's exit status; a user's error or an interruption is one line on stderr."""
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        status = args.func(args)
        return exit_status() if status == 130 else status  # 130: the trainer stopped on Ctrl-C or SIGTERM
    except MakemoreError as e:
        if not secondary_rank():  # rank 0 of a distributed run says what every rank met
            print(f"makemore: error: {e.for_cli() if isinstance(e, OptionError) else e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:
        if not secondary_rank():
            print("makemore: terminated" if isinstance(e, Terminated) else "makemore: interrupted", file=sys.stderr)
        return exit_status(e)
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
