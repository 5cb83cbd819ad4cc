"""The MNIST loader: the four original IDX ``.gz`` files, found on disk or downloaded.

:func:`load_mnist` reads them from a directory (``path``, else ``$FASTNN_DATA``,
else ``~/.cache/fastnn/mnist``), downloading them into the cache when they are
missing and checking the downloads against the official MD5s.
"""

import gzip
import hashlib
import os
import sys
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np

__all__ = ["load_mnist", "mnist_path", "MNIST_FILES", "MNIST_MIRRORS"]


#: file name -> official MD5 of the gzipped file.
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

#: Tried in order; each must serve the four files under their original names.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

_IDX_IMAGES = 2051   # 0x00000803: unsigned bytes, 3 dims
_IDX_LABELS = 2049   # 0x00000801: unsigned bytes, 1 dim
_TIMEOUT_S = 30.0


def _cache_dir():
    # Resolved at call time so a changed HOME is honoured.
    return Path(os.path.expanduser("~")) / ".cache" / "fastnn" / "mnist"


def _search_dirs(path):
    """Directories to look in, in order of preference."""
    if path is not None:
        return [Path(path)]
    dirs = []
    env = os.environ.get("FASTNN_DATA")
    if env:
        # FASTNN_DATA may name the MNIST folder itself or a data root holding mnist/.
        dirs += [Path(env), Path(env) / "mnist"]
    dirs.append(_cache_dir())
    return dirs


def _missing(directory):
    return [name for name in MNIST_FILES if not (directory / name).is_file()]


def mnist_path(path=None):
    """The directory :func:`load_mnist` would read MNIST from, without downloading.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Explicit directory; when given, it is the only candidate.

    Returns
    -------
    pathlib.Path or None
        The first of ``path``, ``$FASTNN_DATA``, ``$FASTNN_DATA/mnist`` and
        ``~/.cache/fastnn/mnist`` that holds all four files, or None.
    """
    for d in _search_dirs(path):
        if not _missing(d):
            return d
    return None


def _download_one(name, target, mirrors, timeout):
    """Fetch one file into target/name, checking its MD5. Returns None or raises."""
    expected = MNIST_FILES[name]
    errors = []
    md5_bad = False
    for base in mirrors:
        url = base + name
        fd, tmp = tempfile.mkstemp(dir=target, prefix=f".{name}.", suffix=".part")
        try:
            digest = hashlib.md5()
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                while True:
                    chunk = resp.read(1 << 16)
                    if not chunk:
                        break
                    digest.update(chunk)
                    out.write(chunk)
            got = digest.hexdigest()
            if got != expected:
                md5_bad = True
                errors.append(f"{url}: MD5 {got} != expected {expected} (download deleted)")
                continue
            os.replace(tmp, target / name)   # atomic: readers never see a partial file
            tmp = None
            return
        except OSError as e:   # URLError, HTTPError, timeouts and socket errors are OSErrors
            errors.append(f"{url}: {e}")
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.remove(tmp)
    if md5_bad:
        raise ValueError(f"could not download a valid {name}: " + "; ".join(errors))
    raise OSError("; ".join(errors))


def _download(missing, target, mirrors, timeout):
    """Download the missing files into target; return a list of failure messages."""
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return [f"cannot create {target}: {e}"]
    for i, name in enumerate(missing):
        print(f"fastnn: downloading {name} into {target}", file=sys.stderr)
        try:
            _download_one(name, target, mirrors, timeout)
        except OSError as e:
            # Every mirror failed: most likely no network, so do not wait out the
            # timeouts again for each remaining file.
            rest = missing[i + 1:]
            return [f"{name}: {e}"] + ([f"not attempted: {', '.join(rest)}"] if rest else [])
    return []


def _not_found(path, dirs, download_failures):
    if path is not None:
        lines = [f"MNIST files missing in path={str(path)!r}: " + ", ".join(_missing(Path(path)))]
        advice = (f"Put the missing files in {str(path)!r}, or call load_mnist() without path "
                  "to read them from $FASTNN_DATA or the cache.")
    else:
        lines = ["MNIST files not found. Looked in:"]
        if not os.environ.get("FASTNN_DATA"):
            lines.append("  $FASTNN_DATA: not set")
        lines += [f"  {d}: missing " + ", ".join(_missing(d)) for d in dirs]
        advice = (f"Put the missing files in {_cache_dir()}, or set the FASTNN_DATA "
                  "environment variable to a directory that holds all four.")
    if download_failures is None:
        lines.append("Download was not attempted (download=False).")
    else:
        lines.append("Download failed:")
        lines += [f"  {msg}" for msg in download_failures]
    lines.append(advice)
    return FileNotFoundError("\n".join(lines))


def _read_idx(file, magic):
    """Parse one gzipped IDX file of unsigned bytes into an array of the header's shape."""
    with open(file, "rb") as f:          # a missing file stays FileNotFoundError
        raw = f.read()
    try:
        data = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{file}: not a valid gzip file ({e})") from None
    if len(data) < 4:
        raise ValueError(f"{file}: truncated IDX header ({len(data)} bytes)")
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        raise ValueError(f"{file}: bad IDX magic number {got}, expected {magic}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{file}: truncated IDX header ({len(data)} bytes, need {header})")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    size = int(np.prod(dims))
    if len(data) - header != size:
        raise ValueError(f"{file}: header dims {dims} need {size} data bytes, "
                         f"file has {len(data) - header}")
    # frombuffer: a view, no per-element Python work even for 60000 images.
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _load_split(directory, prefix):
    img_file = directory / f"{prefix}-images-idx3-ubyte.gz"
    lab_file = directory / f"{prefix}-labels-idx1-ubyte.gz"
    images = _read_idx(img_file, _IDX_IMAGES)   # (N, 28, 28) uint8
    labels = _read_idx(lab_file, _IDX_LABELS)   # (N,) uint8
    if images.shape[1:] != (28, 28):
        raise ValueError(f"{img_file}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{img_file} has {images.shape[0]} images but {lab_file} "
                         f"has {labels.shape[0]} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{lab_file}: label {int(labels.max())} outside 0..9")
    X = images.reshape(images.shape[0], 28 * 28).astype(np.float32)   # (N, 784)
    X /= 255.0                                                         # in place, exact 0 and 1
    return X, labels.astype(np.int64)                                  # (N, 784), (N,)


def load_mnist(path=None, download=True):
    """Load MNIST as float images in [0, 1] and int64 labels.

    Looks for the four original files (``train-images-idx3-ubyte.gz``,
    ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
    ``t10k-labels-idx1-ubyte.gz``) in ``path`` if given, otherwise in
    ``$FASTNN_DATA`` (or ``$FASTNN_DATA/mnist``), then ``~/.cache/fastnn/mnist``;
    the first directory holding all four wins. Missing files are downloaded
    (when ``download`` is true) into ``path``, or into the cache directory,
    from :data:`MNIST_MIRRORS`, and checked against the official MD5s.
    Files already on disk are not checksummed, only parsed strictly.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Directory holding the files. When given, no other directory is used.
    download : bool
        Whether to fetch missing files.

    Returns
    -------
    X_train : ndarray of float32, shape (60000, 784)
    y_train : ndarray of int64, shape (60000,)
    X_test : ndarray of float32, shape (10000, 784)
    y_test : ndarray of int64, shape (10000,)

    Raises
    ------
    FileNotFoundError
        If files are missing and cannot be downloaded; the message lists the
        missing files and where to put them.
    ValueError
        If a file is malformed (not gzip, wrong magic number, truncated, size
        not matching its header, image and label counts differing), naming
        the file, or if every download of a file failed its MD5 check.
    """
    dirs = _search_dirs(path)
    directory = mnist_path(path)
    if directory is None:
        failures = None
        if download:
            target = Path(path) if path is not None else _cache_dir()
            failures = _download(_missing(target), target, MNIST_MIRRORS, _TIMEOUT_S)
            if not failures:
                directory = target
        if directory is None:
            raise _not_found(path, dirs, failures)
    X_train, y_train = _load_split(directory, "train")
    X_test, y_test = _load_split(directory, "t10k")
    return X_train, y_train, X_test, y_test
