"""Model registry: config (plain data) → ``nn.Module``; checkpoint → encoder function.

A model config is a dict::

    {"name": "multi-head", "channels": 1, "latent_dim": 8, "init": "kaiming",
     "encoder": {"activation": "relu", "gaussian": False},
     "heads": {"mode": "multi", "n_tasks": 10, "hidden": [300, 300, 300], "activation": "relu"},
     "decoder": {"activation": "relu"},                 # auto-encoders and decoder-on-frozen
     "discriminator": {"hidden": 1000, "layers": 6}}    # factor-vae only

Registered names: ``random``, ``single-task``, ``multi-head``, ``one-head`` (multi-task study, sec. 3.2.1 / 4.1),
``ae``, ``vae``, ``beta-vae``, ``factor-vae`` (sec. 3.2.2 / 4.3), and the downstream protocols
``heads-on-frozen`` (Table 1) and ``decoder-on-frozen`` (Table 4), whose encoder comes from another run.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

MODEL_NAMES = (
    "random", "single-task", "multi-head", "one-head",
    "ae", "vae", "beta-vae", "factor-vae",
    "heads-on-frozen", "decoder-on-frozen",
)
HEAD_MODES = {"single-task": "multi", "multi-head": "multi", "one-head": "one", "heads-on-frozen": "multi"}
AUTOENCODERS = ("ae", "vae", "beta-vae", "factor-vae", "decoder-on-frozen")


def list_models() -> list[str]:
    """Names accepted by :func:`build_model` and ``disentbench train``."""
    return list(MODEL_NAMES)


def _require(config: dict, key: str) -> Any:
    if key not in config:
        raise ValueError(f"model config for {config.get('name')!r} lacks {key!r}")
    return config[key]


def check_model_name(name: str) -> str:
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}")
    return name


def build_model(config: dict):
    """Build the ``nn.Module`` described by ``config``, initialised as ``config["init"]`` says (seeded by the caller).

    ``init``: ``"default"`` (PyTorch's default; the random baseline, app. C.2) or ``"kaiming"``
    (He-normal weights, zero biases, as in the disentanglement-pytorch lineage the paper builds on).
    """
    model = _build(config)
    init = config.get("init", "default")
    if init == "kaiming":
        kaiming_init(model)
    elif init != "default":
        raise ValueError(f"unknown init {init!r}; choose 'default' or 'kaiming'")
    return model


def kaiming_init(model) -> None:
    """He et al. 2015 normal init (fan-in, ReLU gain √2) of every conv / transposed conv / dense weight; zero biases."""
    from torch import nn

    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def _build(config: dict):
    from disentbench.models.conv import ConvDecoder, ConvEncoder
    from disentbench.models.heads import TaskHeads
    from disentbench.models.networks import AutoEncoder, Discriminator, EncoderOnly, FactorVAE, MultiTaskNet

    if not isinstance(config, dict):
        raise ValueError(f"model config must be a dict, got {type(config).__name__}")
    name = check_model_name(_require(config, "name"))
    channels = int(_require(config, "channels"))
    latent_dim = int(_require(config, "latent_dim"))
    enc_cfg = _require(config, "encoder")
    encoder = ConvEncoder(channels, latent_dim, enc_cfg.get("activation", "relu"), bool(enc_cfg.get("gaussian", False)))
    if name == "random":
        return EncoderOnly(encoder)
    if name in HEAD_MODES:
        h = _require(config, "heads")
        mode = h.get("mode", HEAD_MODES[name])
        n_tasks = int(_require(h, "n_tasks"))
        if name == "single-task" and n_tasks != 1:
            raise ValueError(f"a single-task model has one output, got n_tasks={n_tasks}")
        heads = TaskHeads(latent_dim, n_tasks, mode, tuple(h.get("hidden", (300, 300, 300))), h.get("activation", "relu"))
        return MultiTaskNet(encoder, heads)
    decoder = ConvDecoder(channels, latent_dim, _require(config, "decoder").get("activation", "relu"))
    if name == "factor-vae":
        if not encoder.gaussian:
            raise ValueError("factor-vae needs a Gaussian encoder (encoder.gaussian = true)")
        d = _require(config, "discriminator")
        return FactorVAE(encoder, decoder, Discriminator(latent_dim, int(d.get("hidden", 1000)), int(d.get("layers", 6))))
    return AutoEncoder(encoder, decoder)


def representation_of(config: dict) -> str:
    """Which output is the representation: ``encoder.mean`` for Gaussian encoders, else ``encoder``."""
    return "encoder.mean" if config.get("encoder", {}).get("gaussian", False) else "encoder"


def load_encoder(path, device: str = "cpu") -> tuple[Callable, dict]:
    """Load an encoder from a disentbench checkpoint, a run folder (its ``model.pt``) or a TorchScript file.

    Returns ``(encoder_fn, info)``: ``encoder_fn`` maps float images in [0, 1] of shape (B, C, 64, 64)
    (a tensor, or a numpy array) to codes (B, d) as a float32 CPU tensor, deterministically (eval mode,
    no grad, the mean for VAEs). ``info`` holds ``model_name``, ``config``, ``representation``,
    ``latent_dim``, ``channels`` and ``source`` (``"checkpoint"`` or ``"torchscript"``).
    """
    import torch

    from disentbench.checkpoint import is_torchscript, load_checkpoint, model_from_checkpoint, resolve_checkpoint

    path = resolve_checkpoint(path)

    if is_torchscript(path):
        with warnings.catch_warnings():  # torch >= 2.10 deprecates TorchScript
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location=device).eval()
        info = {"model_name": "torchscript", "config": {}, "representation": "torchscript", "source": "torchscript",
                "latent_dim": None, "channels": None}
    else:
        ckpt = load_checkpoint(path)
        model = model_from_checkpoint(ckpt).to(device).eval()
        module = model.encoder
        info = {"model_name": ckpt["model_name"], "config": ckpt["config"], "representation": ckpt["representation"],
                "source": "checkpoint", "latent_dim": module.latent_dim, "channels": ckpt["config"]["channels"]}

    def encoder_fn(images) -> "torch.Tensor":
        x = torch.as_tensor(images, dtype=torch.float32).to(device)
        if x.ndim != 4 or x.shape[-2:] != (64, 64):
            raise ValueError(f"images must have shape (B, C, 64, 64), got {tuple(x.shape)}")
        with torch.no_grad():
            codes = module(x) if info["source"] == "torchscript" else module.code(x)
        return codes.float().cpu()

    return encoder_fn, info


__all__ = ["MODEL_NAMES", "list_models", "build_model", "representation_of", "load_encoder", "check_model_name"]
