"""The requests' and answers' JSON: the request models (the sampling one derived from SampleConfig),
errors as `{"error": "one line"}`, and FastAPI's validation errors put that way."""

from __future__ import annotations

import typing

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, create_model

from ..config import SAMPLE_OPTIONS, SampleConfig


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


# Request bodies. Types are checked strictly (no "10" for 10); values by SampleConfig, the one
# declaration of the sampling options that the CLI and Python API check with, so the messages are
# theirs, naming the options as the JSON fields are named.
NOT_SERVED = ("exclude",)  # a file: the server reads no path a request names


SERVED_NOTES = {"n": "at most the server's limit per request, 1000 unless it was started with another",
                "seed": "the seed used is returned with the items"}


def bounds(spec) -> dict:
    """An option's range as JSON Schema words it, for the schema only (SampleConfig checks it)."""
    out = {}
    if spec.low is not None:
        out["exclusiveMinimum" if spec.above else "minimum"] = spec.low
    if spec.high is not None:
        out["maximum"] = spec.high
    return out


def sample_request() -> type[BaseModel]:
    """The body of POST /api/sample, derived from SampleConfig: its names, defaults, help and ranges."""
    hints = typing.get_type_hints(SampleConfig)
    fields = {"model": (str | None, Field(None, description="a name from /api/models (default: the first)"))}
    for name, opt in SAMPLE_OPTIONS.items():
        if name not in NOT_SERVED:
            note = f" ({SERVED_NOTES[name]})" if name in SERVED_NOTES else ""
            fields[name] = (hints[name], Field(opt.default, description=opt.spec.help + note,
                                               json_schema_extra=bounds(opt.spec) or None))
    return create_model("SampleRequest", __config__=ConfigDict(strict=True, extra="forbid"), **fields)


SampleRequest = sample_request()


class ScoreRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    model: str | None = Field(None, description="a name from /api/models (default: the first)")
    texts: list[str] = Field(description="items to score (1 to 100)")
    label: str | None = Field(None, description="a labelled model: score given this label (default: under any label, "
                                                "weighted by the labels' frequencies)")
    explain: bool = Field(True, description="also give each position's probability, rank and top alternatives")
    top: int = Field(5, description="alternatives per position (1 to 10)")


class TrainRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", protected_namespaces=())

    items: list[str] = Field(description="the list to learn from, one item each (or item<TAB>label lines)")
    name: str = Field(description="the new model's name in /api/models, and its run directory's under --runs: "
                                  "letters, digits, '-', '_' and '.', up to 64")
    model: str | None = Field(None, description="the model to train (default: makemore train's default)")
    time_budget: float | None = Field(None, description="seconds of training (default 120, or the server's limit if lower: "
                                                         "see /api/limits)")
    labels: list[str] | None = Field(None, description="each item's label, aligned with items (a labelled model)")


def validation_error(errors) -> JSONResponse:
    """FastAPI's validation errors in our shape: the first problem, on one line."""
    first = errors[0] if errors else {"type": "", "loc": (), "msg": "invalid request"}
    if first["type"] == "json_invalid":
        return error(400, "the request body is not valid JSON; send a JSON object")
    where = ".".join(str(x) for x in first["loc"][1:]) if first["loc"][:1] == ("body",) else ".".join(map(str, first["loc"]))
    if first["type"] == "extra_forbidden":
        return error(422, f"unknown field {where!r}; see /api/openapi.json")
    if not where and (first["type"] == "missing" or isinstance(first.get("input"), bytes)):
        return error(422, "send the request body as a JSON object, with Content-Type: application/json")
    msg = first["msg"] + (f", got {type(first['input']).__name__}" if first["type"].endswith("_type") else "")
    return error(422, f"{where or 'body'}: {msg}")
