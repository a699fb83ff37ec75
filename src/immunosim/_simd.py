r"""SIMD data movement for Numba kernels: an 8 x 8 block transpose of float64 by vector shuffles.

Why this module exists
----------------------
The lane driver (:mod:`immunosim.engines.ode._lanes`) keeps 16 trajectories interleaved (element
``i`` of lane ``l`` at ``i * 16 + l``) so that its arithmetic vectorises across trajectories, but
each trajectory's saves are written contiguously over states. Every step with a save therefore
moves the dense-output polynomial (5 rows of 13 states per lane) from the lane layout to the
plain one. Written as loops, that is one strided load and one store per number: LLVM neither
vectorises the stride-16 loads nor turns them into shuffles, and the move took about a seventh of
the whole kernel. :func:`transpose8` emits the transpose of an 8 x 8 block as LLVM IR directly:
eight vector loads, three stages of two-input ``shufflevector`` (24 shuffles, which the x86
backend lowers to single ``vunpck``/``vperm`` instructions with AVX-512 and to short sequences
otherwise) and eight vector stores. It moves data only, so results are bitwise those of the
scalar loop (tested).

The three stages are the textbook transpose network: interleave rows pairwise one element at a
time, then two elements at a time, then four. After stage ``s`` each vector holds ``2**s``-row
columns of its part of the block; after the third it holds one whole column.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["transpose8"]

# Two-input shuffle masks (indices 0-7 pick from the first vector, 8-15 from the second).
_EVEN1 = (0, 8, 2, 10, 4, 12, 6, 14)  # stage 1: a0 b0 a2 b2 a4 b4 a6 b6
_ODD1 = (1, 9, 3, 11, 5, 13, 7, 15)  # a1 b1 a3 b3 a5 b5 a7 b7
_LO2 = (0, 1, 8, 9, 4, 5, 12, 13)  # stage 2: pairs 0 and 2 of a, then of b
_HI2 = (2, 3, 10, 11, 6, 7, 14, 15)  # pairs 1 and 3
_LO4 = (0, 1, 2, 3, 8, 9, 10, 11)  # stage 3: low halves of a and b
_HI4 = (4, 5, 6, 7, 12, 13, 14, 15)  # high halves


def _network(builder, rows):
    """Transpose eight ``<8 x double>`` values: ``cols[j][i] = rows[i][j]``."""
    def shuf(a, b, mask):
        return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(ir.IntType(32), 8),
                                                        list(mask)))

    t = []  # t[2p], t[2p+1]: rows 2p and 2p+1 interleaved, even and odd columns
    for p in range(4):
        a, b = rows[2 * p], rows[2 * p + 1]
        t += [shuf(a, b, _EVEN1), shuf(a, b, _ODD1)]
    u = [None] * 8  # u[q + c]: columns c and c + 4 of rows q .. q + 3 (c = 0..3)
    for q in (0, 4):
        for odd in (0, 1):
            a, b = t[q + odd], t[q + 2 + odd]
            u[q + odd] = shuf(a, b, _LO2)
            u[q + 2 + odd] = shuf(a, b, _HI2)
    cols = [None] * 8
    for c in range(4):
        cols[c] = shuf(u[c], u[4 + c], _LO4)
        cols[c + 4] = shuf(u[c], u[4 + c], _HI4)
    return cols


@intrinsic
def transpose8(typingctx, src, src_off, src_stride, dst, dst_off, dst_stride):
    """Transpose one 8 x 8 block of float64 between two C-contiguous arrays.

    ``dst.flat[dst_off + j * dst_stride + i] = src.flat[src_off + i * src_stride + j]`` for
    ``i, j`` in ``0 .. 7`` (flat indices into each array's data, whatever its shape).

    Parameters
    ----------
    src : ndarray of float64, C-contiguous
        Source; row ``i`` of the block is the 8 contiguous values at ``src_off + i * src_stride``.
    src_off, src_stride : int
        Flat offset of the block and distance between its rows (elements).
    dst : ndarray of float64, C-contiguous
        Destination; row ``j`` of the result goes to ``dst_off + j * dst_stride``.
    dst_off, dst_stride : int
        As for ``src``.

    Notes
    -----
    No bounds checking: the caller guarantees that every index above lies inside its array (the
    lane driver sizes its buffers for whole blocks). ``src`` and ``dst`` must not overlap.
    Unaligned loads and stores are used (alignment 8).
    """
    f64c = (types.Array(types.float64, 1, "C"), types.Array(types.float64, 2, "C"),
            types.Array(types.float64, 3, "C"))
    if src not in f64c or dst not in f64c:
        return None
    sig = types.void(src, types.intp, types.intp, dst, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        s_arr, s_off, s_str, d_arr, d_off, d_str = args
        s_data = context.make_array(signature.args[0])(context, builder, s_arr).data
        d_data = context.make_array(signature.args[3])(context, builder, d_arr).data
        vec_ptr = ir.VectorType(ir.DoubleType(), 8).as_pointer()
        i64 = ir.IntType(64)
        rows = []
        for i in range(8):
            off = builder.add(s_off, builder.mul(s_str, ir.Constant(i64, i)))
            ptr = builder.bitcast(builder.gep(s_data, [off]), vec_ptr)
            rows.append(builder.load(ptr, align=8))
        for j, col in enumerate(_network(builder, rows)):
            off = builder.add(d_off, builder.mul(d_str, ir.Constant(i64, j)))
            builder.store(col, builder.bitcast(builder.gep(d_data, [off]), vec_ptr), align=8)
        return context.get_dummy_value()

    return sig, codegen
