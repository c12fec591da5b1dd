"""Tensors in safetensors files, never pickle: their header read and checked before the tensors
are (sizes, offsets, metadata), the tensors checked against what a model holds, and a state dict
of plain values kept as bytes in a tensor (read back with torch.load(weights_only=True))."""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ..config import MAX_HEADER_BYTES
from ..errors import RunError
from .files import CONFIG, RESTORE, a, atomic_write, damaged, json_type, one_line, open_run_file, unreadable

def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    # clone: safetensors refuses tensors that share storage (tied weights) or are non-contiguous
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    meta = {"json": json.dumps(metadata)} if metadata is not None else None
    atomic_write(path, st_save(flat, metadata=meta))


def read_header(f, size: int, path: Path) -> dict:
    """The JSON header of a safetensors file open at its start (`size` bytes long): an 8-byte
    little-endian length, then that much JSON, at most MAX_HEADER_BYTES. Reads the header only."""
    start = f.read(8)
    if len(start) < 8:
        raise damaged(path, f"not a readable safetensors file ({len(start)} bytes, shorter than the 8-byte header length)")
    n = int.from_bytes(start, "little")
    if n > min(MAX_HEADER_BYTES, size - 8):
        raise damaged(path, f"not a readable safetensors file (the header says it is {n:,} bytes long, but "
                            + (f"a header is at most {MAX_HEADER_BYTES:,})" if n > MAX_HEADER_BYTES else
                               f"the file has {size - 8:,} after it)"))
    try:
        header = json.loads(f.read(n).decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise damaged(path, f"not a readable safetensors file ({one_line(e)})") from None
    if not isinstance(header, dict):
        raise damaged(path, "not a readable safetensors file (the header is not a JSON object)")
    return header


def header_shapes(header: dict, path: Path) -> dict[str, tuple[tuple[int, ...], torch.dtype | None]]:
    """Name -> (shape, dtype) of every tensor a safetensors header describes."""
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise damaged(path, f"not a readable safetensors file (tensor {name!r} has no valid shape)")
        out[name] = (tuple(shape), SAFETENSORS_DTYPES.get(entry.get("dtype")))
    return out


def header_data_bytes(header: dict, path: Path) -> int:
    """How many bytes of tensors follow the header, by the header: where its last tensor ends."""
    ends = [0]
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int and o >= 0 for o in offsets):
            raise damaged(path, f"not a readable safetensors file (tensor {name!r} has no valid data offsets)")
        ends.append(offsets[1])
    return max(ends)


def header_metadata(header: dict, path: Path) -> dict | None:
    """The JSON metadata save_tensors stores in a safetensors header (None when it has none)."""
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or "json" not in meta:
        return None
    try:
        decoded = json.loads(meta["json"])
    except (ValueError, TypeError, RecursionError):
        raise damaged(path, "its metadata is not JSON") from None
    if not isinstance(decoded, dict):
        raise damaged(path, f"its metadata is {a(json_type(decoded))}, not an object")
    return decoded


def load_tensors(path: Path, expect=None) -> tuple[dict[str, torch.Tensor], dict | None]:
    """Every tensor of a safetensors file and its JSON metadata (None when it has none).

    The header is read first, and `expect(header)`, when given, checks it (raising a RunError for
    a file that is not what the caller needs) before the tensors are read: a file is read whole
    only once its header describes what the run's model implies, and exactly as many bytes as
    follow it. All of it comes through one open: a rename that replaces the file meanwhile leaves
    this reader all of the old one. (safetensors' safe_open reads the header through one open and,
    for PyTorch, maps the tensors through another, so it can mix two versions of the file.)"""
    f, size = open_run_file(path)
    with f:
        try:
            header = read_header(f, size, path)
            if expect is not None:
                expect(header)
            described, following = header_data_bytes(header, path), size - f.tell()
            if described != following:
                raise damaged(path, f"not a readable safetensors file (its header describes {described:,} bytes of "
                                    f"tensors, but {following:,} follow it)")
            f.seek(0)
            raw = f.read(size + 1)
        except OSError as e:
            raise unreadable(path, e) from None
    if len(raw) != size:
        raise damaged(path, "it changed size while being read (is another program writing it?)")
    try:
        tensors = st_load(raw)
    except (SafetensorError, ValueError, TypeError, RuntimeError, OverflowError, RecursionError) as e:
        raise damaged(path, f"not a readable safetensors file ({one_line(e)})") from None
    return tensors, header_metadata(header, path)


def tensor_shapes(path: Path) -> dict[str, tuple[tuple[int, ...], torch.dtype | None]]:
    """Name -> (shape, dtype) of every tensor in a safetensors file, from its header alone."""
    f, size = open_run_file(path)
    with f:
        try:
            return header_shapes(read_header(f, size, path), path)
        except OSError as e:
            raise unreadable(path, e) from None


def tensor_bytes(model: torch.nn.Module) -> int:
    """Bytes of a model's tensors, its state dict (the model may live on the meta device)."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


SAFETENSORS_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                      "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
                      "BOOL": torch.bool}


def check_shapes(model: torch.nn.Module, found: dict[str, tuple[tuple[int, ...], torch.dtype]], source: Path) -> None:
    """The tensors of a weights file (`found`: name -> (shape, dtype)) are exactly those of
    `model` (the one config.json describes, possibly on the meta device): its state_dict's names,
    shapes and dtypes. A model may say what a tensor of another shape most likely means
    (`shape_notes`, as CharModel does); the store knows no model's tensors itself."""
    expected = model.state_dict()
    notes = model.shape_notes() if hasattr(model, "shape_notes") else {}
    def mismatch(what: str) -> RunError:
        return RunError(f"{source} does not match the model in {CONFIG} beside it: {what}; one of them is damaged "
                        f"or from another run; {RESTORE}")

    extra, lacking = sorted(set(found) - set(expected)), sorted(set(expected) - set(found))
    if lacking:
        raise mismatch(f"it lacks {', '.join(lacking[:3])}{', ...' if len(lacking) > 3 else ''}")
    if extra:
        raise mismatch(f"it has {', '.join(extra[:3])}{', ...' if len(extra) > 3 else ''}, which the model has not")
    for k, t in expected.items():
        shape, dtype = found[k]
        if shape != tuple(t.shape):
            hint = f" ({notes[k]})" if k in notes else ""
            raise mismatch(f"{k} has shape {list(shape)} where the model needs {list(t.shape)}{hint}")
        if dtype != t.dtype:
            name = str(dtype).replace("torch.", "") if dtype is not None else "unknown"
            raise mismatch(f"{k} holds {name} values where the model needs {str(t.dtype).replace('torch.', '')}")


def load_state(model: torch.nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """Load tensors into a model after checking that they are exactly its tensors: same names,
    shapes and dtypes (a vocabulary of another size shows as the embedding's or the output's shape)."""
    check_shapes(model, {k: (tuple(v.shape), v.dtype) for k, v in tensors.items()}, source)
    model.load_state_dict(tensors)


def saved_bytes(state: dict) -> torch.Tensor:
    """A state dict of tensors and plain values as bytes in a tensor, for a safetensors file
    (torch.save; `loaded_bytes` reads it back without unpickling arbitrary objects)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)


def loaded_bytes(blob: torch.Tensor, source: Path, what: str):
    """What `saved_bytes` stored, read with torch.load(weights_only=True), which builds only tensors
    and plain values, never arbitrary objects; a blob that cannot be read is one RunError."""
    try:
        return torch.load(io.BytesIO(blob.numpy().tobytes()), weights_only=True)
    except Exception as e:  # noqa: BLE001 - an unreadable blob raises many kinds; every one means the same
        raise damaged(source, f"its {what} cannot be read ({one_line(e)})") from None
