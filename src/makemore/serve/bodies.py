"""The requests' and answers' JSON: the request models (the sampling one derived from SampleConfig),
errors as `{"error": "one line"}`, and FastAPI's validation errors put that way."""

from __future__ import annotations

import json
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


FORM_FIELDS = ("file", "name", "model", "time_budget")


async def train_request(request) -> TrainRequest:
    """POST /api/train's body: JSON (checked as FastAPI checks a declared body, its errors the same),
    or multipart/form-data with the list as a `file` field (item or item<TAB>label lines, decoded as
    `makemore train` decodes a file) beside `name`, `model` and `time_budget` fields."""
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError

    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        fields = await form_fields(request)
    elif kind.startswith("application/x-www-form-urlencoded"):
        raise ApiError(415, "send a form as multipart/form-data, the list in a file field named 'file' (curl -F "
                            "file=@list.txt -F name=NAME), or JSON with items")
    else:
        body = await request.body()
        if not body:
            raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
        try:
            fields = json.loads(body)
        except ValueError:
            raise RequestValidationError([{"type": "json_invalid", "loc": ("body", 0), "msg": "JSON decode error"}]) from None
    try:
        return TrainRequest.model_validate(fields)
    except ValidationError as e:
        raise RequestValidationError([{**problem, "loc": ("body", *problem["loc"])} for problem in e.errors()]) from None


async def form_fields(request) -> dict:
    """A multipart body's fields as the JSON body's: the file's lines as items, time_budget a number."""
    from starlette.datastructures import UploadFile

    from ..data import DataError, decode

    async with request.form(max_files=1, max_fields=len(FORM_FIELDS)) as form:
        unknown = sorted(set(form) - set(FORM_FIELDS))
        if unknown:
            raise ApiError(422, f"unknown form field {unknown[0]!r}; the fields are file (the list, one item per line), "
                                "name, model and time_budget")
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(422, "send the list as a file field named 'file' (one item per line), or as JSON with items")
        raw = await upload.read()
        try:
            text = decode(raw, f"the file {upload.filename or 'sent'!r}")
        except DataError as e:
            raise ApiError(422, str(e)) from None
        fields = {"items": [line.rstrip("\r") for line in text.split("\n")]}
        for name in ("name", "model", "time_budget"):
            value = form.get(name)
            if isinstance(value, UploadFile):
                raise ApiError(422, f"the form field {name!r} is a file; send it as text")
            if value is not None:
                fields[name] = value
    if "time_budget" in fields:
        try:
            fields["time_budget"] = float(fields["time_budget"])
        except ValueError:
            raise ApiError(422, f"time_budget: give a number of seconds (got {fields['time_budget'][:40]!r})") from None
    return fields


def train_schema() -> dict:
    """The OpenAPI request body of POST /api/train: the JSON object, or the same as a form with a file."""
    form = {"type": "object", "required": ["file", "name"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "the list: one item (or item<TAB>label) per line, UTF-8"},
        "name": {"type": "string", "description": TrainRequest.model_fields["name"].description},
        "model": {"type": "string", "description": TrainRequest.model_fields["model"].description},
        "time_budget": {"type": "number", "description": TrainRequest.model_fields["time_budget"].description}}}
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": TrainRequest.model_json_schema()},
        "multipart/form-data": {"schema": form}}}}


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
