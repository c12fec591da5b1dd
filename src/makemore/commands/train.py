"""`makemore train`: train a model into a run directory, or continue one (trainer.train, trainer.resume)."""

from __future__ import annotations

import sys

from ..config import MODEL_OPTIONS, TRAIN_OPTIONS, flag
from ..errors import MakemoreError, secondary_rank, world_size
from .options import UNSET, add_device, add_options, options_given

RUN_SETTINGS = ("data", "model", "out", "force")  # what a resumed run keeps from its own config.json


def add_parser(commands):
    p = commands.add_parser("train", help="train a model into a run directory")
    p.add_argument("--data", help="text file, one item per line (item<TAB>label on every line for labelled data), or a "
                                  "built-in dataset (default: names). An item is a sequence of Unicode code points: an "
                                  "accent written apart from its letter, or an emoji joined by U+200D, is several")
    p.add_argument("--model", help="model name (see `makemore models`), or auto: the ngram, then a neural model picked "
                                   "for the data and the budget (--time-budget, --max-steps; default 60 s), kept if its val "
                                   "NLL is lower")
    p.add_argument("--out", help="run directory (default: runs/MODEL)")
    p.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint")
    p.add_argument("--force", action="store_true", help="replace an existing run directory (only the files makemore wrote)")
    add_device(p)
    p.add_argument("--samples", type=int, default=10, metavar="N", help="items to show when training ends")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--nproc", type=int, metavar="N", help="train in N processes on this machine (DistributedDataParallel "
                                                          "through torchrun's launcher: CPU processes, or one per CUDA GPU); "
                                                          "--batch-size is then the batch of all of them together")
    add_options(p.add_argument_group("training", UNSET), TRAIN_OPTIONS)
    add_options(p.add_argument_group("model", UNSET), MODEL_OPTIONS)
    return p


def run(args) -> int:
    from ..trainer import resume, train

    given = {**options_given(args, TRAIN_OPTIONS), **options_given(args, MODEL_OPTIONS)}
    if args.samples < 0:
        raise MakemoreError(f"--samples must be >= 0 (got {args.samples})")
    if args.nproc is not None:
        from ..launch import check_nproc, launch

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
    print(f"run: {result.run_dir}  ({result.steps} steps, {result.seconds:.1f} s; final evaluation "
          f"{result.final_seconds:.1f} s)")
    if result.choice:
        print(f"auto {result.choice['why']} (config.json's \"choice\" says why)")
    for split, r in result.final.items():
        over = f"{r.chars} chars" if r.sample is None else f"a seeded sample: {r.chars:,} of {r.sample['of_chars']:,} chars"
        print(f"{split:5s} nll {r.nll:.4f}  bits/char {r.bits_per_char:.4f}  perplexity {r.perplexity:.3f}  ({over})")
    if args.samples:
        from ..api import load

        print("samples:")
        for item in load(result.run_dir, device=args.device).sample(args.samples, seed=0):
            print("  " + item)
    return status
