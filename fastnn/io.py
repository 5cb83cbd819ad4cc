"""Model files: a network's weights and architecture in one safetensors file.

Layout of a file written by :func:`save`::

    tensors   "layers.<i>.W"  (in, out)   for the Linear at position i of net.layers
              "layers.<i>.b"  (out,)      its bias, when it has one
    metadata  "format": "fastnn", "format_version": "2", "fastnn_version": "0.1.0",
              "config": JSON of Sequential.config() (layers and dtype),
              "cost" (optional) and "extra" (optional JSON of user data),
              "sha256": digest of every other metadata entry and of the tensors'
              names, shapes, dtypes and bytes (format 1 covered the tensor bytes only)

``W`` is stored as fastnn uses it, (in, out): ``y = x @ W + b``. A PyTorch
``nn.Linear`` keeps (out, in), so ``linear.weight = W.T``.

The files are plain safetensors files (no pickle anywhere): other tools read them
with ``safetensors.numpy.load_file``. Writes are atomic: the bytes go to a
temporary file in the destination directory, which is then renamed over the
destination, so an interrupted save never leaves a broken file or clobbers an old one.

Loading checks the checksum first, then the architecture against the tensors' shapes
(read from the header) before building anything, and builds the layers without drawing
random weights: a corrupted or hostile file cannot make it allocate more than its own
tensors, nor load a model that predicts differently from the one that was saved.
"""

import hashlib
import json
import os
import struct
import tempfile

import numpy as np

from fastnn._version import __version__

FORMAT = "fastnn"
#: Version of the file layout this fastnn writes; it reads this and older ones.
FORMAT_VERSION = 2
_DTYPES = {"float32": np.float32, "float64": np.float64}
_ST_DTYPES = {"F32": "float32", "F64": "float64"}
# A safetensors header is JSON of a few KB for any MLP; refuse absurd sizes early.
_MAX_HEADER = 100 * 1024 * 1024


class ModelFileError(ValueError):
    """A model file cannot be read: truncated, corrupted, not a fastnn model, or from
    an incompatible version. The message names the file."""


def _tensors(net):
    from fastnn.layers import Linear

    out = {}
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Linear):
            out[f"layers.{i}.W"] = np.ascontiguousarray(layer.W)
            if layer.bias:
                out[f"layers.{i}.b"] = np.ascontiguousarray(layer.b)
    return out


def _digest(tensors, meta=None):
    """sha256 of the tensors (names, and from format 2 also dtypes and shapes) and, from
    format 2, of every metadata entry but the digest itself (``meta``; None: format 1)."""
    h = hashlib.sha256()
    if meta is not None:
        h.update(json.dumps({k: v for k, v in meta.items() if k != "sha256"}, sort_keys=True).encode())
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        h.update(name.encode())
        if meta is not None:
            h.update(f"|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def to_bytes(net, cost=None, extra=None, allow_nonfinite=False):
    """The bytes of the model file :func:`save` writes (see the module docstring)."""
    from safetensors.numpy import save as st_save

    from fastnn.network import Sequential

    if not isinstance(net, Sequential):
        raise TypeError(f"save takes a fastnn.Sequential, got {type(net).__name__}")
    if not allow_nonfinite:
        net.check_finite("save")
    tensors = _tensors(net)
    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "fastnn_version": __version__,
        "config": json.dumps(net.config()),
    }
    if cost is not None:
        from fastnn.costs import get_cost

        meta["cost"] = type(get_cost(cost)).__name__
    if extra is not None:
        meta["extra"] = json.dumps(extra)
    meta["sha256"] = _digest(tensors, meta)
    return st_save(tensors, metadata=meta)


def save(net, path, cost=None, extra=None, allow_nonfinite=False):
    """Write ``net`` to ``path`` as a safetensors file, atomically.

    Parameters
    ----------
    net : Sequential
    path : str or os.PathLike
        Destination, conventionally ``*.safetensors``. Replaced if it exists (through a
        symbolic link: the link's target is replaced, and keeps its permissions).
    cost : Cost or str, optional
        The cost the network was trained with, recorded so that tools (the
        ``fastnn evaluate`` command) can use it again.
    extra : dict, optional
        JSON-serialisable data kept in the metadata under ``"extra"``.
    allow_nonfinite : bool
        Save weights that are NaN or inf too (by default that raises ValueError: such a
        network predicts nothing useful, and a diverged training should not replace a
        good file).

    Notes
    -----
    The bytes are written to a temporary file in the same directory, flushed to
    disk, then renamed over ``path`` (``os.replace`` is atomic on POSIX and Windows),
    and the directory is flushed too. If anything fails, the temporary file is removed
    and ``path`` is untouched. A new file gets the permissions a plain ``open()`` would
    give (``0o666`` less the umask); a replaced file keeps its own.
    """
    data = to_bytes(net, cost=cost, extra=extra, allow_nonfinite=allow_nonfinite)
    path = os.fspath(path)
    target = os.path.realpath(path)  # write through a symlink to its target
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save {path}: directory {directory} does not exist")
    if os.path.isdir(target):
        raise IsADirectoryError(f"cannot save {path}: it is a directory")
    try:
        mode = os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(target) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)  # mkstemp made it 0600
            os.fsync(f.fileno())
        if not hasattr(os, "fchmod"):  # pragma: no cover - Windows
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)
    return path


def _umask():
    """The process umask, read without changing it (``os.umask`` would, for every thread)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022  # the common default where /proc is not there


def _fsync_dir(directory):
    """Flush a directory entry (the rename) to disk, where the platform allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse
        pass
    finally:
        os.close(fd)


def _fail(path, why):
    return ModelFileError(f"{path}: {why}")


def _read_header(path, data):
    """Parse and check the safetensors header; returns (header dict, metadata dict)."""
    if len(data) < 8:
        raise _fail(path, f"not a model file: only {len(data)} bytes (truncated or empty)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER or n < 2:
        raise _fail(path, "not a safetensors file (bad header length); is it a fastnn model?")
    if 8 + n > len(data):
        raise _fail(path, f"truncated: the header needs {8 + n} bytes but the file has {len(data)}")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _fail(path, "corrupted or not a safetensors file (its header is not valid JSON)") from None
    if not isinstance(header, dict):
        raise _fail(path, "corrupted or not a safetensors file (its header is not a JSON object)")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict):
        raise _fail(path, "corrupted file (metadata is not a JSON object)")
    return header, meta


def _check_meta(path, meta):
    if meta.get("format") != FORMAT:
        raise _fail(path, "a safetensors file, but not a fastnn model (no 'format: fastnn' in its "
                    "metadata); read it with safetensors.numpy.load_file")
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise _fail(path, f"corrupted metadata: format_version {meta.get('format_version')!r}") from None
    if version > FORMAT_VERSION or version < 1:
        raise _fail(path, f"written by fastnn {meta.get('fastnn_version', '?')} in file format {version}; "
                    f"this fastnn {__version__} reads formats 1..{FORMAT_VERSION}: upgrade fastnn")
    try:
        cfg = json.loads(meta["config"])
    except (KeyError, TypeError, json.JSONDecodeError):
        raise _fail(path, "corrupted metadata: missing or invalid architecture 'config'") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
        raise _fail(path, "corrupted metadata: 'config' has no layer list")
    if cfg.get("dtype", "float32") not in _DTYPES:
        raise _fail(path, f"unsupported dtype {cfg.get('dtype')!r} in the metadata")
    return cfg


def info(path):
    """The metadata of a model file, without building the network.

    Returns
    -------
    dict
        ``fastnn_version``, ``format_version`` (int), ``config`` (dict), ``cost``
        (str or None), ``extra`` (dict or None).

    Raises
    ------
    ModelFileError
        If the file is not a readable fastnn model file.
    FileNotFoundError
        If it does not exist.
    """
    _, meta = _read_header(os.fspath(path), _read(path))
    return _info(os.fspath(path), meta)


def _info(path, meta):
    cfg = _check_meta(path, meta)
    extra = None
    if "extra" in meta:
        try:
            extra = json.loads(meta["extra"])
        except (TypeError, json.JSONDecodeError):
            raise _fail(path, "corrupted metadata: 'extra' is not valid JSON") from None
    return {"fastnn_version": meta.get("fastnn_version"), "format_version": int(meta["format_version"]),
            "config": cfg, "cost": meta.get("cost"), "extra": extra}


def _expected_shapes(path, cfg):
    """Tensor name -> shape that the architecture in ``cfg`` needs, from the metadata alone."""
    shapes = {}
    for i, layer in enumerate(cfg["layers"]):
        if not isinstance(layer, dict):
            raise _fail(path, f"corrupted metadata: layer {i} is not a JSON object")
        if layer.get("type") != "Linear":
            continue
        nin, nout = layer.get("insize"), layer.get("outsize")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (nin, nout)):
            raise _fail(path, f"corrupted metadata: Linear layer {i} has sizes {nin!r} x {nout!r}")
        shapes[f"layers.{i}.W"] = (nin, nout)
        if layer.get("bias", True):
            shapes[f"layers.{i}.b"] = (nout,)
    return shapes


def _check_tensors(path, tensors, expected, dtype):
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise _fail(path, "tensors do not match the architecture"
                    + (f"; missing {', '.join(missing)}" if missing else "")
                    + (f"; unexpected {', '.join(unexpected)}" if unexpected else ""))
    for name, shape in expected.items():
        src = tensors[name]
        if src.shape != shape:
            raise _fail(path, f"tensor {name} has shape {src.shape}, the architecture needs {shape}")
        if src.dtype != dtype:
            raise _fail(path, f"tensor {name} is {src.dtype}, the metadata says {dtype.name}")


def from_bytes(data, path="<bytes>"):
    """Rebuild a network from the bytes of a model file (``path`` is used in errors).

    The checksum and the tensors' shapes are checked before the network is built, and
    the layers are built without drawing random weights (:func:`fastnn.layers.no_init`).
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    from fastnn.layers import Linear, no_init
    from fastnn.network import Sequential

    header, meta = _read_header(path, data)
    cfg = _check_meta(path, meta)
    try:
        tensors = st_load(bytes(data))
    except SafetensorError as exc:
        msg = str(exc)
        if "incomplete" in msg or "not fully covered" in msg or "out of bounds" in msg.lower():
            raise _fail(path, f"truncated or corrupted tensor data ({msg})") from None
        raise _fail(path, f"corrupted safetensors data ({msg})") from None
    covered = meta if int(meta["format_version"]) >= 2 else None
    if meta.get("sha256") != _digest(tensors, covered):
        raise _fail(path, "corrupted: the weights or the metadata do not match the checksum stored in the file")
    _check_tensors(path, tensors, _expected_shapes(path, cfg), np.dtype(_DTYPES[cfg.get("dtype", "float32")]))
    try:
        with no_init():
            net = Sequential.from_config(cfg)
    except (ValueError, TypeError, KeyError) as exc:
        raise _fail(path, f"invalid architecture in the metadata: {exc}") from None
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Linear):  # same dtype and shape: an exact copy of the stored bits
            layer.W[...] = tensors[f"layers.{i}.W"]
            if layer.bias:
                layer.b[...] = tensors[f"layers.{i}.b"]
    return net


def load(path):
    """Read a network written by :func:`save` (or ``net.save``).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Sequential
        The network, in the dtype it was saved in, with bit-identical weights.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError (a ValueError)
        If the file is truncated, corrupted, not a fastnn model, or written by a
        newer, incompatible file format. The message names the file.
    """
    return from_bytes(_read(path), os.fspath(path))


def _read(path):
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ModelFileError(f"{path}: is a directory, not a model file")
    with open(path, "rb") as f:
        return f.read()
