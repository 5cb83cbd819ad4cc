"""Where numba caches the compiled kernels: a folder named by a hash of every kernel source.

Numba's own cache checks only the *defining* file of a function. fastnn's epoch loops
inline helpers from other files (``simd.py``'s intrinsics, ``rows.py``, ``update.py``),
so an edit or an upgrade that changed only a helper would keep running the old machine
code from a warm cache. Here every kernel file is cached in::

    <base>/numba/<numba version>-<hash of all kernels/**/*.py>/<file's folder>/

so any change to any kernel source (an edit, a new fastnn version) starts an empty
folder, and stale code is never loaded. The kernels' machine code depends on nothing
else of fastnn (they never import the API), so the hash is the whole key.

``<base>`` is ``$FASTNN_CACHE_DIR``, else ``$NUMBA_CACHE_DIR``, else
``$XDG_CACHE_HOME/fastnn`` (``~/.cache/fastnn``). When none is writable the kernels
compile without a cache (in memory, every process). Clearing the cache is deleting
``<base>/numba`` (``fastnn info`` prints the folder).
"""

import hashlib
import os
import pathlib
import tempfile

import numba
from numba.core import caching

KERNELS = pathlib.Path(__file__).resolve().parent


def source_hash():
    """sha256 of every ``kernels/**/*.py`` (relative path and bytes), in hex."""
    h = hashlib.sha256()
    for path in sorted(KERNELS.rglob("*.py")):
        h.update(path.relative_to(KERNELS).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def base_dir():
    """The cache base folder chosen by the environment (see the module docstring)."""
    for var in ("FASTNN_CACHE_DIR", "NUMBA_CACHE_DIR"):
        if os.environ.get(var):
            return pathlib.Path(os.environ[var]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(xdg) / "fastnn"


# FASTNN_SIMD=0 compiles the per-sample epoch from other code: its own folder
_TAG = f"{numba.__version__}-{source_hash()[:16]}" + ("-nosimd" if os.environ.get("FASTNN_SIMD", "1").strip()
                                                      in ("0", "false", "no", "off") else "")
_STATE = {}


def cache_dir():
    """This version's cache folder, made if needed; None when it cannot be written."""
    if "dir" not in _STATE:
        path = base_dir() / "numba" / _TAG
        try:
            path.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=path).close()
        except OSError:
            path = None
        _STATE["dir"] = path
    return _STATE["dir"]


class KernelCacheLocator(caching._CacheLocator):
    """Numba cache locator for files under ``kernels/``: :func:`cache_dir` / their folder."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        rel = pathlib.Path(py_file).resolve().parent.relative_to(KERNELS)
        self._path = os.path.join(cache_dir(), *(rel.parts or ("kernels",)))

    def get_cache_path(self):
        return self._path

    def get_source_stamp(self):
        # the folder already names every source; the file's own stamp guards in-place edits
        st = os.stat(self._py_file)
        return st.st_mtime, st.st_size

    def get_disambiguator(self):
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func, py_file):
        try:
            pathlib.Path(py_file).resolve().relative_to(KERNELS)
        except ValueError:
            return None  # not a fastnn kernel: numba's own locators decide
        if cache_dir() is None:
            return None
        self = cls(py_func, py_file)
        try:
            self.ensure_cache_path()
        except OSError:
            return None
        return self


def install():
    """Put :class:`KernelCacheLocator` first in numba's locator list (once)."""
    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # public from numba 0.61
    classes = impl._locator_classes
    if KernelCacheLocator not in classes:
        classes.insert(0, KernelCacheLocator)
