"""Property tests of the option checks the Python API and config.json rely on: any value given
for any option is either accepted as a value of the declared type and range, or refused with
one OptionError line; never another exception."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from makemore.config import MODEL_OPTIONS, SAMPLE_OPTIONS, TRAIN_OPTIONS, ModelConfig, OptionError, SampleConfig, TrainConfig

ANY = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
TABLES = [(ModelConfig, MODEL_OPTIONS), (TrainConfig, TRAIN_OPTIONS), (SampleConfig, SAMPLE_OPTIONS)]
EVERY = [(cls, name) for cls, table in TABLES for name in table]


def obeys(option, value) -> bool:
    if value is None:
        return option.optional
    if option.kind is bool:
        return type(value) is bool
    if option.kind is str:
        return type(value) is str and (not option.spec.choices or value in option.spec.choices)
    if type(value) is not option.kind and not (option.kind is float and type(value) is int):
        return False
    spec = option.spec
    return (math.isfinite(value) and (spec.low is None or (value > spec.low if spec.above else value >= spec.low))
            and (spec.high is None or value <= spec.high))


@settings(max_examples=300, deadline=None)
@given(which=st.sampled_from(EVERY), value=ANY)
def test_any_value_of_any_option_is_accepted_as_declared_or_one_option_error(which, value):
    cls, name = which
    option = dict(TABLES)[cls][name]
    try:
        config = cls(**{name: value})
    except OptionError as e:
        assert "\n" not in str(e) and name in str(e)
        # a valid diagnostics interval alone is refused too: it needs diagnostics on
        assert not obeys(option, value) or (name == "diagnostics_interval" and value is not None)
        return
    assert obeys(option, value)
    got = getattr(config, name)
    assert got is None or type(got) is option.kind


@settings(max_examples=100, deadline=None)
@given(name=st.text(min_size=1, max_size=12))
def test_any_unknown_keyword_is_refused_naming_the_known_ones(name):
    from makemore.config import split_options
    from makemore.errors import MakemoreError

    if name in MODEL_OPTIONS or name in TRAIN_OPTIONS:
        return
    try:
        split_options({name: 1})
    except MakemoreError as e:
        assert f"unknown option {name!r}" in str(e) and "max_steps" in str(e)
    else:
        raise AssertionError(f"{name!r} was accepted")
