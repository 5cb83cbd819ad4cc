"""Backend selection: one place that maps a name to an :class:`~fastnn.backends.numpy.Ops`.

Names are ``"numpy"`` (the pure-NumPy reference), ``"numba"`` (compiled CPU kernels),
``"cuda"`` (numba.cuda kernels on an NVIDIA GPU) and ``"auto"`` (the fastest one that
works here). The default comes from :func:`set_backend`, else the ``FASTNN_BACKEND``
environment variable, else ``"auto"``.

Each backend lives in its own module and is imported on first use, so a missing or
broken backend never stops the others from working: asking for it raises
:class:`BackendUnavailable` with the reason.
"""

import contextlib
import contextvars
import importlib
import os

BACKENDS = ("numpy", "numba", "cuda")
# Module and class implementing each backend (relative to this package).
_IMPL = {
    "numpy": (".numpy", "Ops"),
    "numba": (".numba", "NumbaOps"),
    "cuda": (".cuda", "CudaOps"),
}
#: What "auto" tries, in order; a backend whose ``auto_select`` is False is skipped (cuda,
#: until its tests and benchmark have passed on a real GPU: fastnn/backends/cuda.py).
_AUTO_ORDER = ("cuda", "numba", "numpy")

_instances = {}
_failures = {}
#: The process-wide default (set_backend).
_default = None
#: use_backend's default: a context variable, so that a ``with use_backend(...)`` block in
#: one thread (or asyncio task) never changes the backend another one gets.
_SCOPED = contextvars.ContextVar("fastnn_backend", default=None)


class BackendUnavailable(RuntimeError):
    """Raised when a named backend cannot run here; the message says why."""


def _load(name):
    if name in _instances:
        return _instances[name]
    if name in _failures:
        raise BackendUnavailable(_failures[name])
    modname, clsname = _IMPL[name]
    try:
        mod = importlib.import_module(modname, __name__)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(__name__):
            reason = f"backend {name!r} is not implemented in this version of fastnn"
        else:
            reason = f"backend {name!r} needs the package {exc.name!r}, which is not installed"
        _failures[name] = reason
        raise BackendUnavailable(reason) from None
    cls = getattr(mod, clsname)
    why = cls.unavailable_reason() if hasattr(cls, "unavailable_reason") else None
    if why:
        _failures[name] = f"backend {name!r} is unavailable: {why}"
        raise BackendUnavailable(_failures[name])
    _instances[name] = cls()
    return _instances[name]


def available_backends():
    """Which backends can run here.

    Returns
    -------
    dict
        ``{name: None}`` for a working backend, ``{name: "reason"}`` for one that is not.
    """
    out = {}
    for name in BACKENDS:
        try:
            _load(name)
            out[name] = None
        except BackendUnavailable as exc:
            out[name] = str(exc)
    return out


def _check_name(name):
    if name not in BACKENDS and name != "auto":
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS + ('auto',))}")


def _requested():
    """The backend asked for where a call names none: use_backend, set_backend, FASTNN_BACKEND, "auto"."""
    return _SCOPED.get() or _default or os.environ.get("FASTNN_BACKEND") or "auto"


def _cuda_may_auto_select():
    """Whether "auto" could pick cuda at all (it needs a hardware record; a cheap check)."""
    from fastnn.backends import cuda

    return cuda.HARDWARE_RECORD is not None


def resolve_backend(name=None):
    """Turn ``None``/``"auto"``/a name into the name of a backend that runs here.

    ``None`` and ``"auto"`` (the default of ``fit``) both honour :func:`set_backend`,
    then ``FASTNN_BACKEND``, and only then pick the best backend available.
    """
    if name is None or name.strip().lower() == "auto":
        name = _requested()
    name = name.strip().lower()
    _check_name(name)
    if name != "auto":
        _load(name)
        return name
    for cand in _AUTO_ORDER:
        if cand == "cuda" and cand not in _instances and not _cuda_may_auto_select():
            continue  # never picked by "auto" yet: skip loading numba.cuda (half a second)
        try:
            ops = _load(cand)
        except BackendUnavailable:
            continue
        # A backend that works but should not be chosen implicitly (cuda under the simulator).
        if getattr(ops, "auto_select", True):
            return cand
    return "numpy"  # pragma: no cover - numpy always loads


def resolves_automatically(name=None):
    """Whether ``name`` leaves the choice to "auto": no backend named, by the call, by
    :func:`set_backend`/:func:`use_backend` or by ``FASTNN_BACKEND``."""
    if name is not None and name.strip().lower() != "auto":
        return False
    return _requested().strip().lower() == "auto"


def get_ops(name=None):
    """The :class:`~fastnn.backends.numpy.Ops` for a backend name (or the default).

    An ``Ops`` instance passed as ``name`` is returned unchanged.
    """
    if name is not None and not isinstance(name, str):
        return name
    return _load(resolve_backend(name))


def set_backend(name):
    """Set the process-wide default backend (``None`` restores ``FASTNN_BACKEND``/auto).

    Raises
    ------
    ValueError
        For an unknown name.
    BackendUnavailable
        When the backend cannot run here.
    """
    global _default
    if name is not None:
        _check_name(name.lower())
        if name.lower() != "auto":
            _load(name.lower())
        name = name.lower()
    _default = name


def get_backend():
    """Name of the backend that ``backend=None`` resolves to right now."""
    return resolve_backend(None)


@contextlib.contextmanager
def use_backend(name):
    """Context manager: inside the block, the default backend is ``name`` -- in this thread
    (or asyncio task) only; other threads keep theirs. Yields the backend's Ops."""
    if name is None:
        raise ValueError("use_backend needs a backend name")
    _check_name(name.lower())
    ops = get_ops(name)
    token = _SCOPED.set(name.lower())
    try:
        yield ops
    finally:
        _SCOPED.reset(token)
