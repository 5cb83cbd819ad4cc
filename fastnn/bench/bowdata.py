"""The bag-of-words problem of issue 11, generated deterministically from a seed.

:func:`make_bow` draws ``n_docs`` documents over a ``vocab``-word vocabulary in ``n_classes``
classes. Each document has a Poisson(``words_per_doc``) number of tokens (at least 5). A token
is a *topic word* of the document's class with probability ``topic_frac``, else a background
word. Background words follow a Zipf-Mandelbrot law, ``p(rank r) ~ 1 / (r + 2.7)^zipf_s``, with
word ids a fixed random permutation of the ranks (as an alphabetical vocabulary has them).
Each class has ``topic_words`` topic words, drawn without replacement from the ranks in
``topic_band`` (shared by all classes, so classes share topic words by chance) and picked
within the class with Zipf weights ``1 / (j + 1)``. Labels are uniform. The last
``test_frac`` of the documents is the test set.

The matrix is a ``scipy.sparse.csr_matrix`` of float32 **tf-idf weights**:
``(1 + log count) * idf`` with the smooth idf ``log((1 + n) / (1 + df)) + 1`` of the training
documents, each row scaled to unit L2 norm (scikit-learn's ``TfidfVectorizer(sublinear_tf=True)``
convention). Sorted indices, no explicit zeros, no empty rows.
"""

from dataclasses import asdict, dataclass, field

import numpy as np

from fastnn.cli._common import plural


@dataclass
class BowModel:
    """The model every library trains: vocab-hidden-n_classes ReLU, softmax CE, Adam."""

    hidden: int = 256
    epochs: int = 2
    batch_size: int = 256
    lr: float = 1e-3


@dataclass
class BowSpec:
    """The data and the model of the bag-of-words benchmark (the defaults are the issue's)."""

    n_docs: int = 50_000
    vocab: int = 50_000
    words_per_doc: int = 100
    n_classes: int = 20
    topic_words: int = 200             # topic words per class
    # Probability that a token is a topic word of its class: tuned for about 85-90% test
    # accuracy after 2 epochs, so that a point of accuracy is a visible difference.
    topic_frac: float = 0.05
    topic_band: tuple = (30, 5_000)    # the frequency ranks the topic words are drawn from
    zipf_s: float = 1.0
    test_frac: float = 0.2
    seed: int = 0
    model: BowModel = field(default_factory=BowModel)

    @property
    def sizes(self):
        return (self.vocab, self.model.hidden, self.n_classes)

    def describe(self):
        return (f"{self.n_docs} documents ({self.n_test} test), {self.vocab}-word vocabulary, "
                f"Poisson({self.words_per_doc}) tokens per document, {self.n_classes} classes, "
                f"{self.topic_frac:.0%} of tokens from {self.topic_words} topic words per class, "
                f"Zipf s={self.zipf_s:g} background; float32 tf-idf (sublinear tf, smooth idf, L2 rows)")

    def describe_model(self):
        m = self.model
        return (f"{self.vocab}-{m.hidden}-{self.n_classes} ReLU, softmax cross-entropy, "
                f"Adam(lr={m.lr:g}), batch {m.batch_size}, {plural(m.epochs, 'epoch')}, float32")

    @property
    def n_test(self):
        return max(1, int(round(self.n_docs * self.test_frac)))

    def as_dict(self):
        """The fields as one flat dict (the model's among them), JSON-ready."""
        d = asdict(self)
        d.update(d.pop("model"))
        d["topic_band"] = list(d["topic_band"])
        return d


def quick_spec(**over):
    """A tiny problem for ``--quick`` and the tests (seconds, not minutes)."""
    kw = dict(n_docs=400, vocab=2_000, words_per_doc=40, n_classes=5, topic_words=40,
              topic_frac=0.15, topic_band=(10, 1_000), model=BowModel(hidden=32, epochs=1, batch_size=32))
    kw.update(over)
    return BowSpec(**kw)


def _zipf_cdf(n, s, shift):
    w = 1.0 / (np.arange(1, n + 1, dtype=np.float64) + shift) ** s
    c = np.cumsum(w)
    return c / c[-1]


def _draw(rng, cdf, k):
    """``k`` draws from the distribution with cumulative ``cdf`` (indices into it)."""
    return np.minimum(np.searchsorted(cdf, rng.random(k), side="right"), len(cdf) - 1)


def make_counts(spec):
    """``(counts CSR float32 (n_docs, vocab), labels int64)`` of ``spec``: raw token counts."""
    import scipy.sparse as sp

    rng = np.random.default_rng(spec.seed)
    V, N, C = spec.vocab, spec.n_docs, spec.n_classes
    lo, hi = spec.topic_band
    hi = min(hi, V)
    if not 0 <= lo < hi or hi - lo < spec.topic_words:
        raise ValueError(f"topic band {spec.topic_band} holds fewer than {spec.topic_words} words "
                         f"of a {V}-word vocabulary")
    word_of_rank = rng.permutation(V)
    topics = np.stack([word_of_rank[lo + rng.choice(hi - lo, spec.topic_words, replace=False)]
                       for _ in range(C)])                             # (C, topic_words) word ids
    labels = rng.integers(0, C, size=N).astype(np.int64)
    lengths = np.maximum(rng.poisson(spec.words_per_doc, size=N), 5)
    doc = np.repeat(np.arange(N, dtype=np.int64), lengths)
    words = np.empty(len(doc), dtype=np.int64)
    topical = rng.random(len(doc)) < spec.topic_frac
    n_top = int(topical.sum())
    words[~topical] = word_of_rank[_draw(rng, _zipf_cdf(V, spec.zipf_s, 2.7), len(doc) - n_top)]
    pick = _draw(rng, _zipf_cdf(spec.topic_words, 1.0, 0.0), n_top)
    words[topical] = topics[labels[doc[topical]], pick]
    X = sp.csr_matrix((np.ones(len(doc), dtype=np.float32), (doc, words)), shape=(N, V))
    X.sum_duplicates()
    X.sort_indices()
    return X, labels


def tfidf(counts_train, counts_test):
    """Sublinear tf-idf with the training set's smooth idf, rows L2-normalised (float32 CSR)."""
    n = counts_train.shape[0]
    df = np.bincount(counts_train.indices, minlength=counts_train.shape[1])
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    out = []
    for X in (counts_train, counts_test):
        X = X.copy()
        w = (1.0 + np.log(X.data.astype(np.float64))) * idf[X.indices]
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        norms = np.sqrt(np.bincount(rows, weights=w * w, minlength=X.shape[0]))
        X.data = (w / norms[rows]).astype(np.float32)
        out.append(X)
    return out


def make_bow(spec):
    """``(X_train, y_train, X_test, y_test)``: float32 tf-idf CSR matrices and int64 labels."""
    X, y = make_counts(spec)
    k = spec.n_docs - spec.n_test
    X_train, X_test = tfidf(X[:k], X[k:])
    return X_train, y[:k], X_test, y[k:]


def stats(X_train, X_test):
    """Shape, non-zeros and density of the generated matrices, for the record."""
    nnz_row = np.diff(X_train.indptr)
    return {"train_shape": list(X_train.shape), "test_shape": list(X_test.shape),
            "nnz_train": int(X_train.nnz), "nnz_test": int(X_test.nnz),
            "density": X_train.nnz / max(1, X_train.shape[0] * X_train.shape[1]),
            "mean_distinct_words_per_doc": float(nnz_row.mean()),
            "vocab_words_used": int(np.count_nonzero(np.bincount(X_train.indices,
                                                                 minlength=X_train.shape[1]))),
            "csr_bytes_train": int(X_train.data.nbytes + X_train.indices.nbytes + X_train.indptr.nbytes),
            "dense_float32_bytes_train": int(X_train.shape[0]) * int(X_train.shape[1]) * 4,
            "weights": "float32 tf-idf: (1 + log count) * smooth idf of the training set, L2 rows"}
