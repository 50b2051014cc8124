"""Model registry, in the style of the metric registry: ``@register_model`` on a :class:`~disentbench.models.base.Model`
subclass; :func:`list_models` with filters; :func:`build_model` from a registry name, a config and a context.

One class may carry several registry names (``vae`` and ``beta-vae`` differ only in their TOML); each name declares
its family, its source (paper, section, equation), what it ``needs`` in a batch, its config dataclass, whether
its runs are leaderboard entries (``leaderboard=False`` for downstream protocols such as ``heads-on-frozen``),
where it says so, how its representation used factor labels (``supervision``: score records and rendered
leaderboards carry it), and what one leaderboard row of it is (``row``: one run, or the mean over one run per task,
read by :mod:`disentbench.evaluation.runs` and the sweep cells).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from disentbench.models.base import NEEDS, Model, ModelContext
from disentbench.models.config import parse_config

#: ``supervision`` values: "" (not declared), or the scored representation was trained on factor labels
#: ("supervised") or built on a stage that was ("supervised-pretrained")
SUPERVISION = ("", "supervised", "supervised-pretrained")
#: ``row`` values: a leaderboard row is one training run ("run"), or the per-metric mean over one run per task of
#: the model's task set, each trained with its own ``task_index`` ("mean-over-tasks": seed 004's "single-mean")
ROW_RUN, ROW_MEAN_OVER_TASKS = "run", "mean-over-tasks"
ROWS = (ROW_RUN, ROW_MEAN_OVER_TASKS)


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows of one model name."""

    name: str
    cls: type
    family: str
    source: str
    needs: tuple[str, ...]
    config: type
    leaderboard: bool = True
    description: str = ""
    upstream: tuple[str, ...] = ()
    supervision: str = ""
    row: str = ROW_RUN


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(name: str, *, family: str, source: str, needs: tuple[str, ...], config: type,
                   leaderboard: bool = True, description: str = "", upstream: tuple[str, ...] = (),
                   supervision: str = "", row: str = ROW_RUN) -> Callable[[type], type]:
    """Class decorator adding ``name`` to the registry (stackable: one class, several names). A staged model (needs
    ``upstream``) may name the registry models its ``--from`` run must be (``upstream``; empty: any model).
    ``supervision``: one of :data:`SUPERVISION`; ``row``: one of :data:`ROWS` (``mean-over-tasks`` needs targets)."""
    unknown = set(needs) - set(NEEDS)
    if unknown:
        raise ValueError(f"model {name!r}: unknown needs {sorted(unknown)}; choose from {NEEDS}")
    if supervision not in SUPERVISION:
        raise ValueError(f"model {name!r}: supervision {supervision!r} is not one of {SUPERVISION}")
    if row not in ROWS:
        raise ValueError(f"model {name!r}: row {row!r} is not one of {ROWS}")
    if row == ROW_MEAN_OVER_TASKS and "targets" not in needs:
        raise ValueError(f"model {name!r}: row {row!r} needs a model trained on task targets (needs 'targets')")

    def decorator(cls: type) -> type:
        if not issubclass(cls, Model):
            raise TypeError(f"model {name!r}: {cls.__name__} is not a disentbench.models.base.Model")
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelInfo(name, cls, family, source, tuple(needs), config, leaderboard,
                                    description or (cls.__doc__ or "").strip().splitlines()[0], tuple(upstream),
                                    supervision, row)
        return cls

    return decorator


def _ensure_loaded() -> None:
    import disentbench.models  # noqa: F401  (importing the package imports every family module)


def get_model(name: str) -> ModelInfo:
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(_REGISTRY)}") from None


def list_models(*, family: str | None = None, needs: str | None = None,
                leaderboard: bool | None = None) -> list[ModelInfo]:
    """Registered models in registration order, optionally filtered by family, a need, or leaderboard membership."""
    _ensure_loaded()
    return [m for m in _REGISTRY.values()
            if (family is None or m.family == family) and (needs is None or needs in m.needs)
            and (leaderboard is None or m.leaderboard == leaderboard)]


def build_model(name: str, config: Any, context: ModelContext | Mapping[str, Any]) -> Model:
    """The model ``name`` built from ``config`` (its dataclass, or a plain mapping read strictly) and ``context``
    (a :class:`ModelContext`, or its stored dict whose upstream is rebuilt, untrained, from the registry).
    Parameters are initialised from the global torch RNG (the caller seeds it)."""
    info = get_model(name)
    if not isinstance(config, info.config):
        config = parse_config(info.config, config, f"config of model {name!r}")
    if not isinstance(context, ModelContext):
        context = context_from_dict(context)
    if ("upstream" in info.needs) != (context.upstream is not None):
        raise ValueError(f"model {name!r} {'needs' if 'upstream' in info.needs else 'takes no'} upstream model")
    if info.upstream and context.upstream.name not in info.upstream:
        raise ValueError(f"model {name!r} trains on a {' or '.join(info.upstream)} run, not {context.upstream.name!r}")
    model = info.cls(config, context)
    model.name = name
    return model


def context_from_dict(data: Mapping[str, Any]) -> ModelContext:
    """Inverse of :meth:`ModelContext.to_dict`; the upstream model is rebuilt with fresh weights (load them after)."""
    try:
        upstream = None
        if data.get("upstream") is not None:
            up = data["upstream"]
            upstream = build_model(up["name"], up["config"], up["context"])
        sizes = data.get("factor_sizes")
        return ModelContext(channels=int(data["channels"]), n_tasks=data.get("n_tasks"),
                            factor_sizes=None if sizes is None else tuple(int(s) for s in sizes), upstream=upstream)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"invalid model context {dict(data)!r}: {exc}") from None
