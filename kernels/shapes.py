"""Shape checks of the Linear ops, shared by the CPU and CUDA wrappers (any array with ``.shape``)."""


def _dims(name, a, nd):
    if len(a.shape) != nd:
        raise ValueError(f"{name} must be {nd}-D, got shape {tuple(a.shape)}")


def linear_forward(x, W, b=None):
    """x (B, in), W (in, out), b (out,) or None."""
    _dims("x", x, 2)
    _dims("W", W, 2)
    if x.shape[1] != W.shape[0]:
        raise ValueError(f"x has {x.shape[1]} columns but W has {W.shape[0]} rows")
    if b is not None and tuple(b.shape) != (W.shape[1],):
        raise ValueError(f"b has shape {tuple(b.shape)} but W has {W.shape[1]} columns: b must be ({W.shape[1]},)")


def linear_backward_input(dy, W):
    """dy (B, out), W (in, out)."""
    _dims("dy", dy, 2)
    _dims("W", W, 2)
    if dy.shape[1] != W.shape[1]:
        raise ValueError(f"dy has {dy.shape[1]} columns but W has {W.shape[1]} outputs")


def linear_backward_weight(x, dy):
    """x (B, in), dy (B, out)."""
    _dims("x", x, 2)
    _dims("dy", dy, 2)
    if x.shape[0] != dy.shape[0]:
        raise ValueError(f"x has {x.shape[0]} rows but dy has {dy.shape[0]}")


def linear_backward_bias(dy):
    """dy (B, out)."""
    _dims("dy", dy, 2)
