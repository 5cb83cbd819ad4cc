"""Sparse-row kernels written as Numba intrinsics (LLVM vector IR) for the per-sample loop.

LLVM vectorises only innermost loops, so a plain ``@njit`` loop that sums rows
``W[i]`` into ``h`` loads and stores ``h`` once per row. These kernels keep a
block of ``h`` (or of ``d``) in vector registers while they walk the rows:

* :func:`axpy_rows` -- ``h[:n] = sum_k v[k] * W[rows[k], :n]``, in ``k`` order;
* :func:`sgd_rows` -- ``W[rows[k], :n] -= lr * (v[k] * d[:n])`` for every ``k``;
* :func:`nonzeros` -- indices and values of a row's non-zeros (vector compares);
* :func:`prefetch` -- a cache hint for the next shuffled row.

The arithmetic is strict IEEE, element by element the same as the scalar loops
they replace (a multiply, then an add in ``k`` order; no FMA, no reassociation),
so results do not change, only the number of loads, stores and branches.

Vectors are 256 bits (8 float32 or 4 float64 lanes, :data:`LANES`). Blocks of
:data:`BLOCK` vectors run together; the rest (up to BLOCK vectors, the last one
partial when ``n`` is not a multiple of the lane count, through masked loads and
stores) gets one more pass. Shapes are the callers' job (this is an inner loop):
the kernels read ``n`` from ``h``/``d`` and never touch columns past it, and
``rows`` must index rows of ``W``.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: Lanes of one 256-bit vector, by dtype name.
LANES = {"float32": 8, "float64": 4}
#: Vectors summed together per pass over the rows (4 accumulators + 1 broadcast + loads
#: stay well inside the 16 ymm registers).
BLOCK = 4


def _contig(a, ndim):
    """Whether the Numba type ``a`` is an array of ``ndim`` dimensions that may be used as
    contiguous along its last one: layout "C"; for 2-D also "A", a block of columns such as
    ``W[:, j0:j1]``, whose rows the *caller* guarantees are contiguous (a step-1 column
    slice; these are inner-loop kernels, and Numba types such slices "A")."""
    return isinstance(a, types.Array) and a.ndim == ndim and (a.layout == "C" or (ndim == 2 and a.layout == "A"))


def _index(rows):
    """Whether ``rows`` holds row numbers the kernels read: int64, or int32 (CSR indices)."""
    return rows.dtype in (types.int64, types.int32)


def _load_index(builder, rows, k):
    """``rows[k]`` as a 64-bit integer."""
    i = builder.load(builder.gep(rows.data, [k]))
    return builder.sext(i, ir.IntType(64)) if i.type.width < 64 else i


def _vec(context, dtype):
    lanes = LANES[str(dtype)]
    return ir.VectorType(context.get_value_type(dtype), lanes), lanes


def _splat(builder, vt, x):
    """A vector of type ``vt`` with every lane ``x``."""
    v = builder.insert_element(ir.Constant(vt, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(v, ir.Constant(vt, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), vt.count), None))


def _vptr(builder, base, j, vt):
    """Pointer to the vector at element ``j`` of the element pointer ``base``."""
    return builder.bitcast(builder.gep(base, [j]), vt.as_pointer())


def _row_ptr(builder, W, i, stride0):
    """Element pointer to row ``i`` of the 2-D array ``W`` (byte stride ``stride0``)."""
    raw = builder.bitcast(W.data, ir.IntType(8).as_pointer())
    return builder.bitcast(builder.gep(raw, [builder.mul(i, stride0)]), W.data.type)


def _for_rows(builder, Wa, rows, v, m, vt, j0, body):
    """For ``k < m``: ``body(row, x)``, ``row`` pointing at ``W[rows[k], j0]`` and ``x``
    a vector of ``v[k]`` (``Wa``, ``rows``, ``v``: Numba array structs)."""
    stride0 = cgutils.unpack_tuple(builder, Wa.strides, 2)[0]
    with cgutils.for_range(builder, m) as loop:
        k = loop.index
        i = _load_index(builder, rows, k)
        x = _splat(builder, vt, builder.load(builder.gep(v.data, [k])))
        body(builder.gep(_row_ptr(builder, Wa, i, stride0), [j0]), x)


def _masked(builder, name, vt, args):
    """Call the LLVM masked load/store intrinsic ``name`` ("load"/"store") on vectors ``vt``.

    Named with the typed-pointer mangling (``.p0v8f32``), which LLVM 14 needs (numba
    0.59-0.60) and later LLVMs upgrade to their opaque-pointer names."""
    i1v = ir.VectorType(ir.IntType(1), vt.count)
    suffix = f"v{vt.count}{'f32' if vt.element == ir.FloatType() else 'f64'}"
    if name == "load":
        fnty = ir.FunctionType(vt, [vt.as_pointer(), ir.IntType(32), i1v, vt])
    else:
        fnty = ir.FunctionType(ir.VoidType(), [vt, vt.as_pointer(), ir.IntType(32), i1v])
    fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.masked.{name}.{suffix}.p0{suffix}")
    return builder.call(fn, args)


def _load(builder, p, vt, mask):
    """The vector at ``p``; with ``mask``, only its lanes that are set (others read as 0)."""
    if mask is None:
        return builder.load(p, align=1)
    return _masked(builder, "load", vt, [p, ir.Constant(ir.IntType(32), 1), mask, ir.Constant(vt, None)])


def _store(builder, x, p, vt, mask):
    """Store the vector ``x`` at ``p``; with ``mask``, only its lanes that are set."""
    if mask is None:
        builder.store(x, p, align=1)
    else:
        _masked(builder, "store", vt, [x, p, ir.Constant(ir.IntType(32), 1), mask])


def _blocks(builder, n, lanes, emit):
    """Cover ``[0, n)`` with vectors: ``emit(j0, nv, mask)`` for blocks of BLOCK whole
    vectors from ``j0``, then once for the rest: up to BLOCK vectors, the last one
    partial (only the lanes of ``mask`` set) when ``n`` is not a multiple of ``lanes``."""
    intp = n.type
    nfull = builder.udiv(n, ir.Constant(intp, lanes))
    rem = builder.urem(n, ir.Constant(intp, lanes))
    nblk = builder.udiv(nfull, ir.Constant(intp, BLOCK))
    with cgutils.for_range(builder, nblk) as loop:
        emit(builder.mul(loop.index, ir.Constant(intp, BLOCK * lanes)), BLOCK, None)
    tail = builder.urem(nfull, ir.Constant(intp, BLOCK))
    j0 = builder.mul(nblk, ir.Constant(intp, BLOCK * lanes))
    lane = ir.Constant(ir.VectorType(intp, lanes), [ir.Constant(intp, i) for i in range(lanes)])
    remv = builder.insert_element(ir.Constant(lane.type, ir.Undefined), rem, ir.Constant(ir.IntType(32), 0))
    remv = builder.shuffle_vector(remv, ir.Constant(lane.type, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), lanes), None))
    mask = builder.icmp_unsigned("<", lane, remv)
    whole = builder.icmp_unsigned("==", rem, ir.Constant(intp, 0))
    for nv in range(BLOCK):
        hit = builder.icmp_unsigned("==", tail, ir.Constant(intp, nv))
        if nv:
            with builder.if_then(builder.and_(hit, whole)):
                emit(j0, nv, None)
        with builder.if_then(builder.and_(hit, builder.not_(whole))):
            emit(j0, nv + 1, mask)


@intrinsic
def axpy_rows(typingctx, h, W, rows, v, m):
    """``h[:n] = sum_{k < m} v[k] * W[rows[k], :n]`` (n = len(h)), summed in ``k`` order.

    h (n,), W (F, >= n), rows int64 or int32 (>= m,), v (>= m,) in W's dtype, all contiguous
    along their last dimension (see :func:`_contig`).
    Each term is rounded, then added (the scalar loop's arithmetic); ``m == 0`` gives zeros.
    """
    if not (_contig(h, 1) and _contig(W, 2) and _contig(rows, 1) and _contig(v, 1)
            and h.dtype == W.dtype == v.dtype and _index(rows) and str(h.dtype) in LANES):
        return None
    sig = types.void(h, W, rows, v, m)

    def codegen(context, builder, signature, args):
        ha = context.make_array(signature.args[0])(context, builder, args[0])
        Wa = context.make_array(signature.args[1])(context, builder, args[1])
        ra = context.make_array(signature.args[2])(context, builder, args[2])
        va = context.make_array(signature.args[3])(context, builder, args[3])
        m_ = args[4]
        vt, lanes = _vec(context, signature.args[0].dtype)
        n = cgutils.unpack_tuple(builder, ha.shape, 1)[0]
        # accumulators: allocas in the entry block, which LLVM promotes to registers
        accs = [cgutils.alloca_once(builder, vt) for _ in range(BLOCK)]

        def emit(j0, nv, mask):
            for b in range(nv):
                builder.store(ir.Constant(vt, None), accs[b])

            def body(row, x):
                for b in range(nv):
                    w = _load(builder, _vptr(builder, row, ir.Constant(j0.type, b * lanes), vt), vt,
                              mask if b == nv - 1 else None)
                    builder.store(builder.fadd(builder.load(accs[b]), builder.fmul(x, w)), accs[b])

            _for_rows(builder, Wa, ra, va, m_, vt, j0, body)
            out = builder.gep(ha.data, [j0])
            for b in range(nv):
                _store(builder, builder.load(accs[b]),
                       _vptr(builder, out, ir.Constant(j0.type, b * lanes), vt), vt,
                       mask if b == nv - 1 else None)

        _blocks(builder, n, lanes, emit)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def sgd_rows(typingctx, W, rows, v, m, d, lr):
    """``W[rows[k], :n] -= lr * (v[k] * d[:n])`` for ``k < m`` (n = len(d)), in place.

    W (F, >= n), rows int64 or int32 (>= m,), v and d in W's dtype (all contiguous along their
    last dimension, see :func:`_contig`), lr a scalar of
    W's dtype. The same roundings as the scalar ``w[j] -= lr * (a * d[j])``.
    """
    if not (_contig(W, 2) and _contig(rows, 1) and _contig(v, 1) and _contig(d, 1)
            and W.dtype == v.dtype == d.dtype == lr and _index(rows)
            and str(W.dtype) in LANES):
        return None
    sig = types.void(W, rows, v, m, d, lr)

    def codegen(context, builder, signature, args):
        Wa = context.make_array(signature.args[0])(context, builder, args[0])
        ra = context.make_array(signature.args[1])(context, builder, args[1])
        va = context.make_array(signature.args[2])(context, builder, args[2])
        m_ = args[3]
        da = context.make_array(signature.args[4])(context, builder, args[4])
        vt, lanes = _vec(context, signature.args[0].dtype)
        lrv = _splat(builder, vt, args[5])
        n = cgutils.unpack_tuple(builder, da.shape, 1)[0]

        def emit(j0, nv, mask):
            dsrc = builder.gep(da.data, [j0])
            ds = [_load(builder, _vptr(builder, dsrc, ir.Constant(j0.type, b * lanes), vt), vt,
                        mask if b == nv - 1 else None) for b in range(nv)]

            def body(row, x):
                for b in range(nv):
                    p = _vptr(builder, row, ir.Constant(j0.type, b * lanes), vt)
                    mk = mask if b == nv - 1 else None
                    w = _load(builder, p, vt, mk)
                    _store(builder, builder.fsub(w, builder.fmul(lrv, builder.fmul(x, ds[b]))), p, vt, mk)

            _for_rows(builder, Wa, ra, va, m_, vt, j0, body)

        _blocks(builder, n, lanes, emit)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def nonzeros(typingctx, idx, val, x):
    """Indices (int64) and values of the non-zeros of ``x`` (n,) into ``idx``, ``val``
    (>= n,), in index order; returns their count (int64).

    One vector compare per 8 (float32) or 4 (float64) entries; the set bits of its
    mask are walked with count-trailing-zeros, so zero stretches cost one compare.
    """
    if not (_contig(x, 1) and _contig(idx, 1) and _contig(val, 1) and str(x.dtype) in LANES
            and val.dtype == x.dtype and idx.dtype == types.int64):
        return None
    sig = types.int64(idx, val, x)

    def codegen(context, builder, signature, args):
        ia = context.make_array(signature.args[0])(context, builder, args[0])
        va = context.make_array(signature.args[1])(context, builder, args[1])
        xa = context.make_array(signature.args[2])(context, builder, args[2])
        vt, lanes = _vec(context, signature.args[2].dtype)
        i64 = ir.IntType(64)
        n = cgutils.unpack_tuple(builder, xa.shape, 1)[0]
        m = cgutils.alloca_once_value(builder, ir.Constant(i64, 0))
        bits_p = cgutils.alloca_once(builder, i64)
        zero_v = ir.Constant(vt, None)
        nvec = builder.udiv(n, ir.Constant(n.type, lanes))
        mask_t = ir.IntType(lanes)

        def put(j):
            k = builder.load(m)
            builder.store(j, builder.gep(ia.data, [k]))
            builder.store(builder.load(builder.gep(xa.data, [j])), builder.gep(va.data, [k]))
            builder.store(builder.add(k, ir.Constant(i64, 1)), m)

        with cgutils.for_range(builder, nvec) as loop:
            c = builder.mul(loop.index, ir.Constant(n.type, lanes))
            v = builder.load(_vptr(builder, xa.data, c, vt), align=1)
            mask = builder.bitcast(builder.fcmp_unordered("!=", v, zero_v), mask_t)
            builder.store(builder.zext(mask, i64), bits_p)
            head = builder.append_basic_block("nz.head")
            body = builder.append_basic_block("nz.body")
            done = builder.append_basic_block("nz.done")
            builder.branch(head)
            builder.position_at_end(head)
            bits = builder.load(bits_p)
            builder.cbranch(builder.icmp_unsigned("!=", bits, ir.Constant(i64, 0)), body, done)
            builder.position_at_end(body)
            t = builder.cttz(bits, ir.Constant(ir.IntType(1), 1))
            put(builder.add(c, t))
            builder.store(builder.and_(bits, builder.sub(bits, ir.Constant(i64, 1))), bits_p)
            builder.branch(head)
            builder.position_at_end(done)
        with cgutils.for_range(builder, builder.sub(n, builder.mul(nvec, ir.Constant(n.type, lanes)))) as loop:
            j = builder.add(builder.mul(nvec, ir.Constant(n.type, lanes)), loop.index)
            with builder.if_then(builder.fcmp_unordered("!=", builder.load(builder.gep(xa.data, [j])),
                                                        ir.Constant(vt.element, 0))):
                put(j)
        return builder.load(m)

    return sig, codegen


@intrinsic
def prefetch(typingctx, x):
    """Ask the CPU to start loading the 1-D array ``x`` into cache (one hint per 64-byte line).

    A hint only: no effect on results. Used on the next sample's row while the current
    one trains, so that the shuffled row is not waited for.
    """
    if not (isinstance(x, types.Array) and x.ndim == 1):
        return None
    sig = types.void(x)

    def codegen(context, builder, signature, args):
        xa = context.make_array(signature.args[0])(context, builder, args[0])
        n = cgutils.unpack_tuple(builder, xa.shape, 1)[0]
        size = context.get_abi_sizeof(context.get_value_type(signature.args[0].dtype))
        nbytes = builder.mul(n, ir.Constant(n.type, size))
        i8p = ir.IntType(8).as_pointer()
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, ir.IntType(32), ir.IntType(32), ir.IntType(32)]),
            "llvm.prefetch.p0i8")
        raw = builder.bitcast(xa.data, i8p)
        nlines = builder.udiv(builder.add(nbytes, ir.Constant(n.type, 63)), ir.Constant(n.type, 64))
        with cgutils.for_range(builder, nlines) as loop:
            p = builder.gep(raw, [builder.mul(loop.index, ir.Constant(n.type, 64))])
            builder.call(fn, [p, ir.Constant(ir.IntType(32), 0), ir.Constant(ir.IntType(32), 3),
                              ir.Constant(ir.IntType(32), 1)])
        return context.get_dummy_value()

    return sig, codegen
