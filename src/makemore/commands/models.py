"""`makemore models`: the registry's models, their sizes with their defaults, and what applies to each."""

from __future__ import annotations

import json


def add_parser(commands):
    p = commands.add_parser("models", help="list the models")
    p.add_argument("--json", action="store_true")
    return p


def run(args) -> int:
    from ..models import AUTO, DEFAULT_MODEL, REGISTRY, default_params, model_options, why_not

    # "train": the training options that apply to the model run with its defaults (models.why_not)
    rows = [{"name": name, "default": name == DEFAULT_MODEL, "description": spec.description, "reference": spec.reference, "params": default_params(name),
             "options": {k: getattr(spec.config, k) for k in model_options(name)},
             "train": {k: v for k, v in spec.train.to_dict().items() if not why_not(k, name, spec.config, spec.train)}}
            for name, spec in REGISTRY.items()]
    if args.json:
        print(json.dumps(rows))
    else:
        width = max(len(r["name"]) for r in rows) + len(" *")
        for r in rows:
            name = r["name"] + (" *" if r["default"] else "")
            print(f"{name:{width}s}  {r['params']:>9,d} params  {r['description']} [{r['reference']}]")
        print(f"{AUTO:{width}s}  {'':>9s}         the ngram first, then a neural model picked for the data and the budget "
              "(--time-budget, or --max-steps; default 60 s), kept only if its val NLL is lower by more than the val split's noise")
        print(f"* the default (--model {DEFAULT_MODEL}), tuned on 32,033 names and 16,000 steps. On a short list (a few "
              "thousand items) or a budget of a minute or two, another model often does better: --model auto picks one")
    return 0
