"""Small datasets for the fastnn examples, and an MNIST loader.

Everything here is plain NumPy. Randomness comes only from
``np.random.default_rng(seed)``; nothing touches NumPy's global random state.

Toy problems (one per seed tutorial):

- :func:`linear` and :func:`sine`: 1-D regression on ``linspace(-3, 3, n)``
  (seeds 000 and 001).
- :func:`circles`: a red ring around a blue ring (seed 003).
- :func:`equal_bits`: 3-bit samples, target 1 when the first two bits are
  equal (seed 004).
- :func:`xor`: the XOR truth table.

MNIST: :func:`load_mnist` reads the four original IDX ``.gz`` files from a
directory (``path``, else ``$FASTNN_DATA``, else ``~/.cache/fastnn/mnist``),
downloading them into the cache when they are missing.
"""

from fastnn.datasets.mnist import MNIST_FILES, MNIST_MIRRORS, load_mnist, mnist_path
from fastnn.datasets.toy import circles, equal_bits, linear, one_hot, sine, xor

__all__ = [
    "linear",
    "sine",
    "circles",
    "xor",
    "equal_bits",
    "one_hot",
    "load_mnist",
    "mnist_path",
    "MNIST_FILES",
    "MNIST_MIRRORS",
]
