"""The declared options (config.py) as flags, and the flags given back as options."""

from __future__ import annotations

import argparse

from ..config import DEVICES, MODEL_OPTIONS, TRAIN_OPTIONS, flag
from ..models import REGISTRY, applies_to  # the registry, without the models' classes and PyTorch

UNSET = "an option not given takes the model's default (see `makemore models --json`)"


def add_options(p: argparse.ArgumentParser, options: dict) -> None:
    """A flag per declared option (config.py); unset flags stay None, so the model's defaults apply."""
    for name, opt in options.items():
        declared = opt is TRAIN_OPTIONS.get(name) or opt is MODEL_OPTIONS.get(name)  # not sample's --seed, say
        text = opt.spec.help + (applies_shown(name) if declared else "") + default_shown(name, opt.default)
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
    where = applies_to(name)
    return "" if where == "every model" else f" ({where})"


def default_shown(name: str, default) -> str:
    """' (default X)' when every model has the same default; else the model's own applies (`makemore models`)."""
    if default is None or isinstance(default, bool) or name not in (*TRAIN_OPTIONS, *MODEL_OPTIONS):
        return f" (default {default})" if isinstance(default, (int, float)) and not isinstance(default, bool) else ""
    same = all(getattr(spec.train if name in TRAIN_OPTIONS else spec.config, name) == default for spec in REGISTRY.values())
    return f" (default {default})" if same else ""


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=DEVICES, default="auto")


def options_given(args, options) -> dict:
    return {name: getattr(args, name) for name in options if getattr(args, name, None) is not None}
