"""Checkpoints: safetensors for tensors (never a pickle), JSON beside them, every write atomic.

A model checkpoint stores the state dict and, in the safetensors header, the model's ``spec`` (the registry
call that rebuilds it), so :func:`load_model` needs nothing but the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from toroids.files import new_file_mode, remove_stale_temporaries, temporary_beside
from toroids.models import Network, build_from_spec

__all__ = ["CheckpointError", "load_model", "load_state", "save_model", "save_state"]

# Leading bytes of a torch.save file (a zip archive) and of a raw pickle (protocol 2+): refused outright.
_PICKLE_MAGIC = (b"PK\x03\x04", b"\x80")


# safetensors checks the layout of a file, not its contents: a same-length edit of the tensor bytes or of a
# dtype in the header would load silently. A digest of every tensor (name, dtype, shape, bytes) in the header
# catches both.
_CHECKSUM = "toroids_sha256"
# All metadata travels as ONE header entry: safetensors writes its metadata map in an arbitrary key order,
# and two entries would make two runs' files differ byte for byte.
_HEADER = "toroids"


def _digest(tensors: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, truncated, tampered with, or not a safetensors file."""


def save_state(
    path: str | os.PathLike[str], state: Mapping[str, torch.Tensor], metadata: Mapping[str, Any] | None = None
) -> None:
    """Atomically save a tensor dict as safetensors; ``metadata`` values are stored as JSON strings."""
    path = Path(path)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    payload = {**(metadata or {}), _CHECKSUM: _digest(tensors)}
    header = {_HEADER: json.dumps(payload, sort_keys=True)}
    fd, tmp = temporary_beside(path)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=header)
        os.chmod(tmp, new_file_mode())  # safetensors may write through a 0600 file of its own
        os.replace(tmp, path)
        remove_stale_temporaries(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_format(path: Path) -> None:
    """A safetensors file starts with an 8-byte header length followed by the JSON header's ``{``."""
    with path.open("rb") as fh:
        head = fh.read(9)
    if head[8:9] == b"{":
        return
    if any(head.startswith(m) for m in _PICKLE_MAGIC):
        raise CheckpointError(f"{path}: looks like a pickle / torch.save file; only safetensors is loaded")
    raise CheckpointError(f"{path}: not a safetensors file (corrupt or truncated header)")


def load_state(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load ``(tensors, metadata)`` from a safetensors file; anything else raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    _check_format(path)
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            raw_meta = fh.metadata() or {}
        tensors = load_file(str(path))
        meta = json.loads(raw_meta.get(_HEADER, "{}"))
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt or truncated safetensors checkpoint ({exc})") from exc
    if meta.pop(_CHECKSUM, None) != _digest(tensors):
        raise CheckpointError(
            f"{path}: checksum mismatch or missing (the file was altered after it was written)"
        )
    for name, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"{path}: tensor {name!r} holds NaN or inf")
    return tensors, meta


def save_model(path: str | os.PathLike[str], model: Network, extra: Mapping[str, Any] | None = None) -> None:
    """Save a registry network with its ``spec`` in the header."""
    save_state(path, model.state_dict(), {"spec": model.spec, **(extra or {})})


def load_model(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> Network:
    """Rebuild a network from a checkpoint written by :func:`save_model` (eval mode)."""
    tensors, meta = load_state(path)
    if "spec" not in meta:
        raise CheckpointError(f"{path}: no model spec in the safetensors header")
    model = build_from_spec(meta["spec"])
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: tensors do not match the stored model spec ({exc})") from exc
    return model.to(map_location).eval()
