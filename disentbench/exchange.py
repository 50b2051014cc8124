"""Reading the exchange formats: ``torch.export`` programs (``.pt2``, audited first) and safetensors folders.

``.pt2``: ``torch.export.load`` (torch 2.13) runs pickle in several places and builds a graph whose nodes may call any
function reachable as ``torch.<attr>...``, ``math.<attr>`` or ``_operator.<attr>`` (``torch.os.system`` included),
and it loads AOTInductor shared libraries packed in the archive. :func:`audit_pt2` therefore reads the archive
itself (zip + JSON only) and refuses, naming the member, everything beyond tensors and ATen/prims operators:

* AOTInductor members (``data/aotinductor/``: native code, ``dlopen``\\ ed on load);
* opaque objects (``pickle.loads``) and TorchBind objects (``torch._C._pickle_load_obj``) among the constants;
* pickled weights or constants (``torch.load(weights_only=False)``) and the sample inputs (``weights_only=True``,
  then ``False`` if that fails) unless they load with ``weights_only=True`` here;
* the torch 2.7 archive layout and legacy weight files (unpickled the same way);
* graph nodes whose target is not an ``aten``/``prims`` operator or a higher-order operator of torch, or a
  symbolic-shape operator, and operators that take a file name (``aten::from_file``, ``aten::save``).

What remains is trusting torch's deserializer and kernels with crafted shapes and metadata: safer, not safe; a
``.pt2`` from a stranger is only as safe as that. The safetensors folder (``model.safetensors`` + ``config.json``)
holds tensors and JSON only and is rebuilt through the model registry: the format to exchange.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from disentbench.checkpoint import CheckpointError, content_sha256

SAFETENSORS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
#: ``format`` of an exported safetensors folder's config.json
EXCHANGE_FORMAT = "disentbench-safetensors"
EXCHANGE_FORMAT_VERSION = 1

_PICKLED_MEMBERS = ("data/sample_inputs/",)


class UntrustedProgram(CheckpointError):
    """A ``.pt2`` archive holding something ``torch.export.load`` would execute beyond tensors and operators."""


# -- .pt2 ------------------------------------------------------------------------------------------------------------
def _weights_only(path: Path, member: str, data: bytes) -> None:
    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:
        raise UntrustedProgram(f"{path}: member {member} is a pickle that needs more than tensors and plain data "
                               "(torch.export.load would unpickle it with weights_only=False)") from None


def _node_targets(tree: Any) -> Iterator[str]:
    """Every graph-node target in a serialized program (subgraphs of higher-order operators included)."""
    if isinstance(tree, dict):
        if isinstance(tree.get("target"), str) and "inputs" in tree:
            yield tree["target"]
        for value in tree.values():
            yield from _node_targets(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _node_targets(value)


def _allowed_target(target: str) -> bool:
    """Whether a node target, resolved as torch's deserializer resolves it, is an ATen/prims operator without a file
    name argument, a higher-order operator of torch, or a symbolic-shape operator (``_operator.mul``, ...)."""
    import math
    import operator

    from torch._export.serde.serialize import _SYM_OPS

    root, *names = target.split(".")
    resolved: Any = {"torch": torch, "_operator": operator, "math": math}.get(root)
    for name in names:
        resolved = getattr(resolved, name, None)
    if isinstance(resolved, torch._ops.HigherOrderOperator):
        return True
    if isinstance(resolved, torch._ops.OpOverload):
        return resolved.namespace in ("aten", "prims") and all(a.name != "filename" for a in resolved._schema.arguments)
    return resolved is not None and resolved in _SYM_OPS


def audit_pt2(path: Path) -> None:
    """Raise :class:`UntrustedProgram` naming the member or node that ``torch.export.load`` would run as code."""
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            name = info.filename.split("/", 1)[-1]
            if name in ("serialized_exported_program.json", "version") or name.startswith("data/aotinductor/"):
                what = "AOTInductor native code" if "aotinductor" in name else "the torch 2.7 layout (pickled data)"
                raise UntrustedProgram(f"{path}: member {info.filename} is {what}; refused (re-export with "
                                       "torch.export.save, without AOTInductor)")
            if name.startswith(_PICKLED_MEMBERS) or (name.startswith(("data/weights/", "data/constants/"))
                                                     and name.endswith(".pt")):
                _weights_only(path, info.filename, zf.read(info))
            if name.startswith(("data/weights/", "data/constants/")) and name.endswith("_config.json"):
                for fqn, meta in json.loads(zf.read(info)).get("config", {}).items():
                    member = meta.get("path_name", "")
                    if member.startswith(("custom_obj", "opaque_obj")):
                        raise UntrustedProgram(f"{path}: constant {fqn} is a pickled Python object ({member}); refused")
                    if meta.get("use_pickle"):
                        folder = info.filename.rsplit("/", 1)[0]
                        _weights_only(path, f"{folder}/{member}", zf.read(f"{folder}/{member}"))
            if name.startswith("models/") and name.endswith(".json"):
                for target in _node_targets(json.loads(zf.read(info))):
                    if not _allowed_target(target):
                        raise UntrustedProgram(f"{path}: graph node calls {target!r}, which is not an ATen/prims "
                                               "operator; refused")


def load_pt2(path: Path) -> torch.nn.Module:
    """The module of an audited ``torch.export`` program (eval mode)."""
    try:
        audit_pt2(path)
        program = torch.export.load(str(path))
    except UntrustedProgram:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(f"{path}: not a loadable torch.export program ({first})") from None
    module = program.module()
    try:
        module.eval()
    except NotImplementedError:  # torch.export modules refuse train()/eval() switching; they run as exported
        pass
    return module


# -- safetensors + config.json ---------------------------------------------------------------------------------------
def is_safetensors_dir(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / SAFETENSORS_NAME).is_file() and (Path(path) / CONFIG_NAME).is_file()


def read_safetensors_dir(path: Path) -> dict[str, Any]:
    """The checkpoint-like dict (model_name, config, context, state_dict, representation) of an exported folder;
    nothing is unpickled (JSON and safetensors only)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    config_file = path / CONFIG_NAME
    try:
        meta = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{config_file}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != EXCHANGE_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{config_file}: format {found!r}, expected {EXCHANGE_FORMAT!r}")
    if meta.get("format_version") != EXCHANGE_FORMAT_VERSION:
        raise CheckpointError(f"{config_file}: unsupported format_version {meta.get('format_version')!r} "
                              f"(this disentbench reads {EXCHANGE_FORMAT_VERSION})")
    for key, kind in (("model_name", str), ("config", dict), ("context", dict), ("representation", str)):
        if not isinstance(meta.get(key), kind):
            raise CheckpointError(f"{config_file}: field {key!r} missing or not a {kind.__name__}")
    try:
        state_dict = load_file(str(path / SAFETENSORS_NAME), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path / SAFETENSORS_NAME}: not a readable safetensors file ({exc})") from None
    return {**{k: meta[k] for k in ("model_name", "config", "context", "representation")}, "state_dict": state_dict}


def open_exchange(path: Path, device: str = "cpu") -> tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]:
    """``(encode, info)`` of a ``.pt2`` program or a safetensors folder, for
    :func:`disentbench.models.load_encoder` (``info["source"]``: ``"pt2"`` or ``"safetensors"``)."""
    from disentbench.models import model_from_checkpoint

    if not is_safetensors_dir(path):
        info = {"model_name": "pt2", "config": {}, "representation": "torch.export program", "source": "pt2",
                "latent_dim": None, "channels": None}
        return load_pt2(path).to(device), info
    ckpt = read_safetensors_dir(path)
    model = model_from_checkpoint(ckpt, path).to(device)
    info = {"model_name": ckpt["model_name"], "config": ckpt["config"], "representation": model.representation,
            "source": "safetensors", "latent_dim": model.code_dim, "channels": model.context.channels,
            "content_sha256": content_sha256(ckpt)}
    return model.encode, info
