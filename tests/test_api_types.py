"""Issue 19: the Python API checks the type of every argument where it comes in. A value of the wrong
type is a MakemoreError naming the parameter, and for a list the element (`texts[1] must be text
(got 3)`), never a TypeError from deep inside. The parameters are found by introspecting the
signatures of makemore's public functions and of Run's methods, so a new one is covered too.
(The training options, **options and **changes, have their own property test in
test_options_properties.py.)"""

import inspect
import os
import types
import typing
from pathlib import Path

import pytest

import makemore
from makemore import Run
from makemore.errors import MakemoreError

QUIET = {"quiet": True, "log": lambda msg: None}
# Run's methods that take no argument a user passes in (or only internal objects such as a generator)
INTERNAL = {"sampler", "start_tokens", "label_prior", "training_items"}


def public_functions():
    for name in makemore.__all__:
        thing = getattr(makemore, name)
        if inspect.isfunction(thing):
            yield name, thing
    yield "Run", Run.__init__
    for name, method in inspect.getmembers(Run, inspect.isfunction):
        if not name.startswith("_") and name not in INTERNAL:
            yield f"Run.{name}", method


def parameters():
    """(function name, function, parameter name, its type hint, its default) of every public parameter."""
    for fname, f in public_functions():
        hints = typing.get_type_hints(f)
        for p in inspect.signature(f).parameters.values():
            if p.name == "self" or p.kind is p.VAR_KEYWORD:
                continue
            yield fname, f, p.name, hints.get(p.name), p.default


def kinds(hint, default) -> set:
    """The kinds of value a parameter takes, from its hint (or, without one, its default)."""
    if hint is None:
        return {"callable"} if callable(default) else {type(default)}
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    out = set()
    for a in args:
        if a is type(None):
            continue
        if typing.get_origin(a) is list:
            out.add("texts")
        elif a in (Path, os.PathLike):
            out.add("path")
        else:
            out.add(a)
    return out


def wrong_values(name: str, hint, default) -> list[tuple[object, str]]:
    """Values of the wrong type for a parameter, and what the error must name."""
    k = kinds(hint, default)
    if "texts" in k:
        return [("emma", name), (["emma", 3], f"{name}[1]"), ([b"emma"], f"{name}[0]"), (3, name), ({"emma": 1}, name)]
    if "callable" in k:
        return [(5, name), ("print", name)]
    wrong = [([object()], name), ({"a": 1}, name), (object(), name)]
    if str in k or "path" in k:
        wrong += [(["a"], name), (3, name)]  # a list where a string is expected
    if bool in k:
        wrong += [("yes", name), (1, name)]
    if int in k and bool not in k:
        wrong += [("3", name), (2.5, name), ([3], name), (True, name)]
    if float in k:
        wrong += [("1.0", name), ([1.0], name)]
    return wrong


CASES = [(fname, pname, value, says) for fname, f, pname, hint, default in parameters()
         for value, says in wrong_values(pname, hint, default)]


def test_every_public_parameter_is_covered():
    names = {(fname, pname) for fname, _, pname, _, _ in parameters()}
    assert {("train", "data"), ("train", "log"), ("resume", "run_path"), ("load", "device"), ("Run.sample", "prefix"),
            ("Run.score", "texts"), ("Run.score", "label"), ("Run.evaluate", "split"), ("Run.stream", "exclude"),
            ("Run.classify", "texts")} <= names
    assert all(wrong_values(pname, hint, default) for _, _, pname, hint, default in parameters())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("types") / "run"
    makemore.train(data="names", model="bigram", out=out, **QUIET)
    return out


def call(fname: str, pname: str, value, trained: Path, tmp_path: Path):
    """Call `fname` with good arguments but `pname` = value."""
    if fname == "train":
        good = {"data": "names", "model": "bigram", "out": tmp_path / "new", **QUIET}
        return makemore.train(**{**good, pname: value})
    if fname == "resume":
        return makemore.resume(**{"run_path": trained, **QUIET, pname: value})
    if fname == "load":
        return makemore.load(**{"path": trained, pname: value})
    if fname == "load_pretrained":
        return makemore.load_pretrained(**{pname: value})
    if fname == "Run":
        return Run(**{"path": trained, pname: value})
    method = getattr(makemore.load(trained), fname.split(".")[1])
    required = {"texts": ["emma"]}  # the one argument without a default
    given = {k: v for k, v in required.items() if k in inspect.signature(method).parameters}
    result = method(**{**given, pname: value})
    return list(result) if fname == "Run.stream" else result


@pytest.mark.parametrize("fname, pname, value, says", CASES,
                         ids=[f"{f}-{p}-{type(v).__name__}" for f, p, v, _ in CASES])
def test_a_wrong_type_names_the_parameter(trained, tmp_path, fname, pname, value, says):
    with pytest.raises(MakemoreError) as refused:
        call(fname, pname, value, trained, tmp_path)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{says} "), message
    assert not (tmp_path / "new").exists()  # train refuses before it writes anything
