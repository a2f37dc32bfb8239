"""`borrowed(arr)`: the same array without its reference-counted owner, for hot numba loops.

Every call between numba functions that are not inlined increments and decrements the reference
count of each array argument, with atomic instructions: about 6-10 ns per array per call here,
which made a grid decision (a dozen calls, 3-9 arrays each) cost over a microsecond. The simulator's
loop passes borrowed views instead: same data pointer, shape and strides, but a null owner, so the
runtime skips the atomics. Safe only while the owner outlives every use: the loop borrows its own
arguments for the duration of the call and nothing stores them.
"""

from __future__ import annotations

from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def borrowed(typingctx, arr):  # type: ignore[no-untyped-def]
    sig = arr(arr)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        src = cgutils.create_struct_proxy(signature.args[0])(context, builder, value=args[0])
        dst = cgutils.create_struct_proxy(signature.return_type)(context, builder, value=src._getvalue())
        dst.meminfo = cgutils.get_null_value(dst.meminfo.type)
        return dst._getvalue()

    return sig, codegen
