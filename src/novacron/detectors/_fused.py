"""Compiled kernels for the calibrated ensemble: every member, calibration and the rank in one pass.

The object path (:class:`~novacron.detectors.ensemble.Ensemble` over :class:`Likelihood`
wrappers) costs a dozen Python calls per point. When numba is installed (the ``fast``
extra) and every member is a robust z-score, Holt-Winters residual or CUSUM (the default
pipelines), the ensemble keeps its whole state in two numpy arrays instead and runs one
compiled function per point (streaming) or per batch. The arithmetic is the object
path's, operation for operation, so scores agree to rounding error
(``tests/detectors/test_fused.py``).

Layout. ``ints`` starts with a header (``I_*``), then ``_IM`` slots per member: its kind,
the offset of its parameters and state in ``floats``, the offset of its calibration
rings, and its integer state. ``floats`` starts with a header (``F_*``), then each
member's block, its calibration rings, and the rank window (arrival order and sorted).
Cumulative sums are kept in rings indexed by how many values were learned, so a window
sum is two reads.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri

from novacron.detectors.base import VALUE_LIMIT, Detector, FloatArray
from novacron.detectors.changepoint import CUSUM
from novacron.detectors.robust import RobustZScore
from novacron.detectors.smoothing import HoltWinters

__all__ = ["AVAILABLE", "Fused", "supported"]

IntArray = npt.NDArray[np.int64]
_F = TypeVar("_F", bound=Callable[..., Any])

_numba: Any = importlib.import_module("numba") if importlib.util.find_spec("numba") is not None else None
AVAILABLE = _numba is not None


def _jit(fn: _F) -> _F:
    """A helper of the kernels, compiled with them when numba is installed."""
    if _numba is None:
        return fn
    return cast(_F, _numba.njit(cache=True, error_model="numpy")(fn))


def _inline(fn: _F) -> _F:
    """A small helper called per value in the batch passes: inlined into its caller.

    A call between compiled functions costs numba a reference count up and down per array
    argument; for a helper run several times per value that is most of its cost.
    """
    if _numba is None:
        return fn
    return cast(_F, _numba.njit(cache=True, error_model="numpy", inline="always")(fn))


def _kernel(fn: _F) -> _F:
    """An entry point: compiled with numba (cached on disk) when it is installed."""
    if _numba is None:
        return fn
    return cast(_F, _numba.njit(cache=True, nogil=True, error_model="numpy")(fn))


# Integer header.
I_NMEM, I_QUIET, I_N, I_HIST, I_SHORT, I_MINHIST, I_FAMC, I_REFRACT = range(8)
I_RANK_SIZE, I_RANK_MIN, I_RANK_LEN, I_RANK_HEAD, I_RANK_ORDER, I_RANK_BLOCKS, I_CACHED = range(8, 15)
# Ring positions of the learned count n: n % (short + 1), n % (history + 1), n % history.
I_POS_SHORT, I_POS_BIG, I_POS_SEEN = range(15, 18)
# The rank window's sorted blocks: blocks in use, blocks laid out, the most there is room
# for; where, in value order, each block's slot and size live in ``ints`` and its largest
# value in ``floats``.
I_RB_COUNT, I_RB_USED, I_RB_MAX, I_RB_ORDER, I_RB_SIZES, I_RB_TOPS = range(18, 24)
_IH = 24
# Values per rank block: inserting or removing moves at most this many values instead of
# a third of the window, and finding the block reads one value per block.
_RB = 128
# Float header.
F_MIN_STD, F_DECADES, F_FAMCAP, F_ALARM, F_ESCALATE, F_LEVEL, F_CACHE_X, F_CACHE_S, F_Z_GUARD = range(9)
F_TAIL_GUARD = 9
_FH = 10
# Per member ints: kind, float block, calibration rings, then four state counters.
_IM = 8
M_KIND, M_FB, M_LB, M_A, M_B, M_C = range(6)
KIND_Z, KIND_H, KIND_C = 0, 1, 2
_SIDE = {"both": 0, "up": 1, "down": 2}
_MAD_TO_STD = 1.4826
_MEANAD_TO_STD = 1.2533
_RAW_CAP = 1e6
_SCORE_LIMIT = 1e12
_SQRT2 = math.sqrt(2.0)

# Float block layouts (parameters first, then state).
# z-score: window, refresh, min_points, min_scale, rel_scale, side, med, scale, buffer[window],
# scratch[window]
ZW, ZREF, ZMIN, ZMS, ZRS, ZSIDE, ZMED, ZSCALE, ZBUF = range(9)
# Holt-Winters: alpha, gamma, beta, daily, weekly, warmup, min_scale, rel_scale, side,
# level, residual mean, residual var, daily[...], weekly[...]
HA, HG, HB, HPD, HPW, HWARM, HMS, HRS, HSIDE, HLEVEL, HMEAN, HVAR, HPROF = range(13)
# CUSUM: alpha, k, z_clip, warmup, min_scale, rel_scale, side, mean, var, up, down
CA, CK, CCLIP, CWARM, CMS, CRS, CSIDE, CMEAN, CVAR, CUP, CDOWN = range(11)
_BLOCK_HEAD = {KIND_Z: ZBUF, KIND_H: HPROF, KIND_C: CDOWN + 1}


def supported(members: Sequence[Detector]) -> bool:
    """Whether the compiled path can run these members (exact types, not subclasses)."""
    return AVAILABLE and all(type(m) in (RobustZScore, HoltWinters, CUSUM) for m in members)


# ---------------------------------------------------------------- members


@_inline
def _one_sided(d: float, side: int) -> float:
    if side == 1:
        return max(d, 0.0)
    if side == 2:
        return max(-d, 0.0)
    return abs(d)


@_inline
def _finish(s: float) -> float:
    if math.isnan(s) or s < 0.0:
        return 0.0
    return min(s, _SCORE_LIMIT)


@_inline
def _ew(mean: float, var: float, n: int, x: float, alpha: float) -> tuple[float, float]:
    """Exponentially weighted mean and variance after ``x`` (weight ``max(alpha, 1/(n+1))``)."""
    a = alpha if alpha * (n + 1) >= 1.0 else 1.0 / (n + 1)
    d = x - mean
    return mean + a * d, (1.0 - a) * (var + a * d * d)


@_jit
def _ew_update(f: FloatArray, mean_at: int, n: int, x: float, alpha: float) -> None:
    f[mean_at], f[mean_at + 1] = _ew(f[mean_at], f[mean_at + 1], n, x, alpha)


@_jit
def _z_score(f: FloatArray, ints: IntArray, mb: int, fb: int, x: float) -> float:
    if ints[mb + M_A + 1] == 0:  # not ready
        return 0.0
    d = _one_sided(x - f[fb + ZMED], int(f[fb + ZSIDE]))
    return float(min(d / f[fb + ZSCALE], _SCORE_LIMIT))


@_jit
def _z_refresh(f: FloatArray, fb: int, width: int) -> None:
    """Median and floored scale of the window; deviations go to the block's scratch area."""
    buf, scratch = fb + ZBUF, fb + ZBUF + int(f[fb + ZW])
    med = np.median(f[buf : buf + width])
    total = 0.0
    for j in range(width):
        d = abs(f[buf + j] - med)
        f[scratch + j] = d
        total += d
    mean_s = _MEANAD_TO_STD * (total / width)
    mad_s = _MAD_TO_STD * np.median(f[scratch : scratch + width])
    f[fb + ZMED] = med
    f[fb + ZSCALE] = max(mad_s, mean_s, f[fb + ZMS], f[fb + ZRS] * abs(med))


@_jit
def _z_learn(f: FloatArray, ints: IntArray, mb: int, fb: int, x: float) -> None:
    w = int(f[fb + ZW])
    n = ints[mb + M_A]
    f[fb + ZBUF + n % w] = x
    n += 1
    ints[mb + M_A] = n
    if n % int(f[fb + ZREF]) == 0 and n >= int(f[fb + ZMIN]):
        _z_refresh(f, fb, min(n, w))
        ints[mb + M_A + 1] = 1


@_jit
def _h_season(f: FloatArray, fb: int, t: int) -> tuple[float, int, int]:
    pd, pw = int(f[fb + HPD]), int(f[fb + HPW])
    cd = t % pd if pd else -1
    cw = t % pw if pw else -1
    total, k = 0.0, 0
    if cd >= 0 and not math.isnan(f[fb + HPROF + cd]):
        total += f[fb + HPROF + cd]
        k += 1
    if cw >= 0 and not math.isnan(f[fb + HPROF + pd + cw]):
        total += f[fb + HPROF + pd + cw]
        k += 1
    return (total / k if k else 0.0), cd, cw


@_jit
def _h_score(f: FloatArray, ints: IntArray, mb: int, fb: int, x: float) -> float:
    if ints[mb + M_A + 1] < f[fb + HWARM] or ints[mb + M_A + 2] == 0:
        return 0.0
    season, _, _ = _h_season(f, fb, ints[mb + M_A])
    level = f[fb + HLEVEL]
    r = x - level - season
    scale = max(math.sqrt(f[fb + HVAR]), f[fb + HMS], f[fb + HRS] * abs(level))
    return _finish(_one_sided(r - f[fb + HMEAN], int(f[fb + HSIDE])) / scale)


@_inline
def _h_smooth(f: FloatArray, at: int, e: float, g: float) -> None:
    old = f[at]
    f[at] = e if math.isnan(old) else old + g * (e - old)


@_jit
def _h_learn(f: FloatArray, ints: IntArray, mb: int, fb: int, x: float) -> None:
    if ints[mb + M_A + 2] == 0:
        f[fb + HLEVEL] = x
        ints[mb + M_A + 2] = 1
    t = ints[mb + M_A]
    season, cd, cw = _h_season(f, fb, t)
    level = f[fb + HLEVEL]
    _ew_update(f, fb + HMEAN, ints[mb + M_A + 1], x - level - season, f[fb + HB])
    ints[mb + M_A + 1] += 1
    e = x - level
    g = f[fb + HG]
    if cd >= 0:
        _h_smooth(f, fb + HPROF + cd, e, g)
    if cw >= 0:
        _h_smooth(f, fb + HPROF + int(f[fb + HPD]) + cw, e, g)
    f[fb + HLEVEL] = level + f[fb + HA] * (x - level)
    ints[mb + M_A] = t + 1


@_jit
def _c_z(f: FloatArray, ints: IntArray, mb: int, fb: int, x: float) -> float:
    if ints[mb + M_A] < f[fb + CWARM]:
        return 0.0
    mean = f[fb + CMEAN]
    scale = max(math.sqrt(f[fb + CVAR]), f[fb + CMS], f[fb + CRS] * abs(mean))
    clip = f[fb + CCLIP]
    return float(max(-clip, min(clip, (x - mean) / scale)))


@_jit
def _c_score(f: FloatArray, ints: IntArray, mb: int, fb: int, x: float) -> float:
    z = _c_z(f, ints, mb, fb, x)
    k = f[fb + CK]
    up = max(0.0, f[fb + CUP] + z - k)
    down = max(0.0, f[fb + CDOWN] - z - k)
    side = int(f[fb + CSIDE])
    stat = up if side == 1 else down if side == 2 else max(up, down)
    return _finish(stat)


@_jit
def _c_learn(f: FloatArray, ints: IntArray, mb: int, fb: int, x: float) -> None:
    z = _c_z(f, ints, mb, fb, x)
    k = f[fb + CK]
    f[fb + CUP] = max(0.0, f[fb + CUP] + z - k)
    f[fb + CDOWN] = max(0.0, f[fb + CDOWN] - z - k)
    _ew_update(f, fb + CMEAN, ints[mb + M_A], x, f[fb + CA])
    ints[mb + M_A] += 1


@_jit
def _member_score(f: FloatArray, ints: IntArray, m: int, x: float) -> float:
    mb = _IH + _IM * m
    kind, fb = ints[mb + M_KIND], ints[mb + M_FB]
    if kind == KIND_Z:
        return _z_score(f, ints, mb, fb, x)
    if kind == KIND_H:
        return _h_score(f, ints, mb, fb, x)
    return _c_score(f, ints, mb, fb, x)


@_jit
def _member_learn(f: FloatArray, ints: IntArray, m: int, x: float) -> None:
    mb = _IH + _IM * m
    kind, fb = ints[mb + M_KIND], ints[mb + M_FB]
    if kind == KIND_Z:
        _z_learn(f, ints, mb, fb, x)
    elif kind == KIND_H:
        _h_learn(f, ints, mb, fb, x)
    else:
        _c_learn(f, ints, mb, fb, x)


# ---------------------------------------------------------------- calibration


@_jit
def _short_avg(f: FloatArray, ints: IntArray, raw: int, r: float) -> float:
    """Mean of the last ``short - 1`` learned raw scores and ``r`` (fewer while warming up)."""
    short, n, cur = ints[I_SHORT], ints[I_N], ints[I_POS_SHORT]
    if n + 1 >= short:
        start = cur + 2 - (short + 1) if cur + 2 > short else cur + 2
        return float((f[raw + cur] + r - f[raw + start]) / short)
    return float((f[raw + cur] + r - f[raw]) / (n + 1))


@_jit
def _z(f: FloatArray, ints: IntArray, sums: int, squares: int, value: float) -> float:
    """Standardised distance of ``value`` from the mean of the window's learned values."""
    hist, n, cur = ints[I_HIST], ints[I_N], ints[I_POS_BIG]
    if n >= hist:
        h, start = hist, (cur + 1 if cur < hist else 0)
    else:
        h, start = n, 0
    mean = (f[sums + cur] - f[sums + start]) / h
    var = (f[squares + cur] - f[squares + start]) / h - mean * mean
    std = max(math.sqrt(max(var, 0.0)), f[F_MIN_STD])
    return float((value - mean) / std)


@_jit
def _tail(z: float) -> float:
    return 0.5 * math.erfc(z / _SQRT2)


@_inline
def _familiar(f: FloatArray, seen: int, width: int, need: int, cap: float, value: float, p: float) -> float:
    """``p`` raised to the frequency of values as large as ``value`` among the ``width`` seen.

    Only when at least ``need`` were, and never above ``cap``.
    """
    if p >= cap or need == 0:
        return p
    cnt = 0
    for j in range(width):
        if f[seen + j] >= value:
            cnt += 1
            # Enough to know the answer: familiar, and frequent enough to reach the cap.
            if cnt >= need and (1 + cnt) / (width + 1) >= cap:
                return cap
    if cnt < need:
        return p
    return max(p, min((1 + cnt) / (width + 1), cap))


@_inline
def _offsets(ints: IntArray, lb: int) -> tuple[int, int, int, int, int, int, int]:
    """Ring offsets: raw, avg, avg², point, point², seen averages, seen points."""
    hist, short = ints[I_HIST], ints[I_SHORT]
    avg = lb + short + 1
    big = hist + 1
    return lb, avg, avg + big, avg + 2 * big, avg + 3 * big, avg + 4 * big, avg + 4 * big + hist


@_jit
def _member_p(f: FloatArray, ints: IntArray, m: int, r: float, z_top: float) -> tuple[float, float]:
    """The member's calibration of raw score ``r`` (log scale), evaluated lazily.

    Returns ``(p, z)``: ``p`` is the smallest tail probability among the two looks
    (10-point average, the point itself) that may fall below the familiarity cap, ``z``
    the largest standardised distance among the others (and ``z_top``). Tails are
    monotone in ``z``, so the ensemble computes one tail for all the ordinary looks.
    """
    raw, avg, avg_sq, pt, pt_sq, seen_avg, seen_pt = _offsets(ints, ints[_IH + _IM * m + M_LB])
    guard, cap, need, width = f[F_Z_GUARD], f[F_FAMCAP], ints[I_FAMC], min(ints[I_N], ints[I_HIST])
    a = _short_avg(f, ints, raw, r)
    p = 1.0
    z_avg = _z(f, ints, avg, avg_sq, a)
    if z_avg > guard:
        p = _familiar(f, seen_avg, width, need, cap, a, _tail(z_avg))
    else:
        z_top = max(z_top, z_avg)
    z_pt = _z(f, ints, pt, pt_sq, r)
    if z_pt > guard:
        p = min(p, _familiar(f, seen_pt, width, need, cap, r, _tail(z_pt)))
    else:
        z_top = max(z_top, z_pt)
    return p, z_top


@_jit
def _calibration_learn(f: FloatArray, ints: IntArray, m: int, r: float) -> None:
    raw = ints[_IH + _IM * m + M_LB]  # the short ring comes first
    cur_s, cur = ints[I_POS_SHORT], ints[I_POS_BIG]
    nxt_s = 0 if cur_s == ints[I_SHORT] else cur_s + 1
    nxt = 0 if cur == ints[I_HIST] else cur + 1
    _rings_learn(f, ints, m, (cur_s, nxt_s, cur, nxt, ints[I_POS_SEEN]), r, _short_avg(f, ints, raw, r))


@_inline
def _rings_learn(f: FloatArray, ints: IntArray, m: int, at: tuple[int, int, int, int, int], r: float, a: float) -> None:
    """Add member ``m``'s raw score ``r`` and short average ``a`` to its calibration rings.

    ``at``: the short ring's position and next, the long rings' position and next, and
    the slot of the seen values.
    """
    raw, avg, avg_sq, pt, pt_sq, seen_avg, seen_pt = _offsets(ints, ints[_IH + _IM * m + M_LB])
    cur_s, nxt_s, cur, nxt, seen = at
    f[raw + nxt_s] = f[raw + cur_s] + r
    f[avg + nxt] = f[avg + cur] + a
    f[avg_sq + nxt] = f[avg_sq + cur] + a * a
    f[pt + nxt] = f[pt + cur] + r
    f[pt_sq + nxt] = f[pt_sq + cur] + r * r
    f[seen_avg + seen] = a
    f[seen_pt + seen] = r


@_jit
def _advance(ints: IntArray) -> None:
    """One more value learned: move the ring positions."""
    ints[I_N] += 1
    ints[I_POS_SHORT] = 0 if ints[I_POS_SHORT] == ints[I_SHORT] else ints[I_POS_SHORT] + 1
    ints[I_POS_BIG] = 0 if ints[I_POS_BIG] == ints[I_HIST] else ints[I_POS_BIG] + 1
    ints[I_POS_SEEN] = 0 if ints[I_POS_SEEN] == ints[I_HIST] - 1 else ints[I_POS_SEEN] + 1


@_jit
def _raw(f: FloatArray, ints: IntArray, m: int, x: float) -> float:
    return math.log1p(min(_member_score(f, ints, m, x), _RAW_CAP))


# ---------------------------------------------------------------- rank and combination


@_jit
def _bisect(f: FloatArray, lo: int, hi: int, x: float, right: bool) -> int:
    """First index in sorted ``f[lo:hi]`` whose value is >= ``x`` (> ``x`` when ``right``).

    Branch-free halving (the comparison picks the half with a conditional move): on values
    in random order a branchy search mispredicts every other step.
    """
    n = hi - lo
    if n == 0:
        return lo
    base = lo
    while n > 1:
        half = n >> 1
        v = f[base + half - 1]
        base = base + half if (v < x or (right and v == x)) else base
        n -= half
    v = f[base]
    return base + 1 if (v < x or (right and v == x)) else base


@_jit
def _rb_find(f: FloatArray, ints: IntArray, x: float, right: bool) -> tuple[int, int, int]:
    """Where ``x`` falls in the rank window: (block in order, index in it, values before it).

    The index is the first value ``>= x`` (``> x`` when ``right``); past the last block
    it is ``(count, 0, all values)``. Blocks are found by bisection over their maxima.
    """
    count, tops, sizes = ints[I_RB_COUNT], ints[I_RB_TOPS], ints[I_RB_SIZES]
    b = _bisect(f, tops, tops + count, x, right) - tops
    before = int(ints[sizes : sizes + b].sum())
    if b == count:
        return b, 0, before
    lo = ints[I_RANK_BLOCKS] + ints[ints[I_RB_ORDER] + b] * _RB
    return b, _bisect(f, lo, lo + ints[sizes + b], x, right) - lo, before


@_jit
def _rb_rebuild(f: FloatArray, ints: IntArray) -> None:
    """Lay the window out again in half-full blocks (when every block slot has been used)."""
    blocks, order, sizes = ints[I_RANK_BLOCKS], ints[I_RB_ORDER], ints[I_RB_SIZES]
    values = np.empty(ints[I_RANK_LEN])
    k = 0
    for b in range(ints[I_RB_COUNT]):
        lo = blocks + ints[order + b] * _RB
        for j in range(ints[sizes + b]):
            values[k] = f[lo + j]
            k += 1
    _rb_layout(f, ints, values)


@_jit
def _rb_layout(f: FloatArray, ints: IntArray, values: FloatArray) -> None:
    """Lay the window's sorted ``values`` (the first ``I_RANK_LEN``) out in half-full blocks."""
    blocks, order, sizes, tops = ints[I_RANK_BLOCKS], ints[I_RB_ORDER], ints[I_RB_SIZES], ints[I_RB_TOPS]
    k = ints[I_RANK_LEN]
    half = _RB // 2
    count = (k + half - 1) // half
    for b in range(count):
        take = min(half, k - b * half)
        for j in range(take):
            f[blocks + b * _RB + j] = values[b * half + j]
        ints[order + b] = b
        ints[sizes + b] = take
        f[tops + b] = values[b * half + take - 1]
    ints[I_RB_COUNT] = count
    ints[I_RB_USED] = count


@_jit
def _rb_insert(f: FloatArray, ints: IntArray, x: float) -> None:
    blocks, order, sizes, tops = ints[I_RANK_BLOCKS], ints[I_RB_ORDER], ints[I_RB_SIZES], ints[I_RB_TOPS]
    count = ints[I_RB_COUNT]
    if count == 0:
        ints[order], ints[sizes], f[blocks], f[tops] = 0, 1, x, x
        ints[I_RB_COUNT], ints[I_RB_USED] = 1, 1
        return
    b, at, _ = _rb_find(f, ints, x, True)
    if b == count:  # above every value: the end of the last block
        b = count - 1
        at = ints[sizes + b]
        f[tops + b] = x
    lo = blocks + ints[order + b] * _RB
    size = ints[sizes + b]
    for j in range(lo + size, lo + at, -1):
        f[j] = f[j - 1]
    f[lo + at] = x
    ints[sizes + b] = size + 1
    if size + 1 == _RB:
        _rb_split(f, ints, b)


@_jit
def _rb_split(f: FloatArray, ints: IntArray, b: int) -> None:
    """Move the upper half of full block ``b`` into a new block right after it."""
    if ints[I_RB_USED] == ints[I_RB_MAX]:
        _rb_rebuild(f, ints)  # every block is half full again: nothing left to split
        return
    blocks, order, sizes, tops = ints[I_RANK_BLOCKS], ints[I_RB_ORDER], ints[I_RB_SIZES], ints[I_RB_TOPS]
    new = ints[I_RB_USED]
    half = _RB // 2
    src, dst = blocks + ints[order + b] * _RB, blocks + new * _RB
    for j in range(_RB - half):
        f[dst + j] = f[src + half + j]
    count = ints[I_RB_COUNT]
    for j in range(count, b + 1, -1):
        ints[order + j] = ints[order + j - 1]
        ints[sizes + j] = ints[sizes + j - 1]
        f[tops + j] = f[tops + j - 1]
    ints[order + b + 1], ints[sizes + b + 1], f[tops + b + 1] = new, _RB - half, f[tops + b]
    ints[sizes + b], f[tops + b] = half, f[src + half - 1]
    ints[I_RB_COUNT], ints[I_RB_USED] = count + 1, new + 1


@_jit
def _rb_remove(f: FloatArray, ints: IntArray, x: float) -> None:
    """Remove one value equal to ``x`` (it is in the window)."""
    blocks, order, sizes, tops = ints[I_RANK_BLOCKS], ints[I_RB_ORDER], ints[I_RB_SIZES], ints[I_RB_TOPS]
    b, at, _ = _rb_find(f, ints, x, False)
    lo = blocks + ints[order + b] * _RB
    size = ints[sizes + b] - 1
    for j in range(lo + at, lo + size):
        f[j] = f[j + 1]
    ints[sizes + b] = size
    if size > 0:
        f[tops + b] = f[lo + size - 1]
        return
    count = ints[I_RB_COUNT] - 1  # drop the empty block; its slot waits for a rebuild
    for j in range(b, count):
        ints[order + j] = ints[order + j + 1]
        ints[sizes + j] = ints[sizes + j + 1]
        f[tops + j] = f[tops + j + 1]
    ints[I_RB_COUNT] = count


@_jit
def _rank_p(f: FloatArray, ints: IntArray, x: float) -> float:
    if ints[I_RANK_SIZE] == 0 or ints[I_N] < ints[I_RANK_MIN]:
        return 1.0
    size = ints[I_RANK_LEN]
    _, at, before = _rb_find(f, ints, x, False)
    ge = size - (before + at)  # values >= x
    # Values <= x: a second search rather than a walk over ties (a flat metric repeats
    # one value thousands of times).
    _, at, before = _rb_find(f, ints, x, True)
    le = before + at
    return float(min(1.0, 2.0 * (min(ge, le) + 1) / (size + 1)))


@_jit
def _rank_learn(f: FloatArray, ints: IntArray, x: float) -> None:
    cap = ints[I_RANK_SIZE]
    if cap == 0:
        return
    order, size, head = ints[I_RANK_ORDER], ints[I_RANK_LEN], ints[I_RANK_HEAD]
    if size == cap:
        _rb_remove(f, ints, f[order + head])
        _rb_insert(f, ints, x)
        f[order + head] = x
        ints[I_RANK_HEAD] = head + 1 if head + 1 < cap else 0
        return
    f[order + head + size] = x
    ints[I_RANK_LEN] = size + 1
    _rb_insert(f, ints, x)


@_jit
def _combined(f: FloatArray, ints: IntArray, x: float, p_rank: float) -> float:
    members = ints[I_NMEM]
    p = 1.0
    if ints[I_N] >= ints[I_MINHIST]:
        p_rare, z_top = 1.0, -math.inf
        for m in range(members):
            p_m, z_top = _member_p(f, ints, m, _raw(f, ints, m, x), z_top)
            p_rare = min(p_rare, p_m)
        p = min(1.0, members * min(1.0, 2.0 * min(p_rare, _tail(z_top))))
    if ints[I_RANK_SIZE] > 0:
        p = math.sqrt(p * p_rank)
    return float(min(1.0, max(0.0, -math.log10(max(p, 1e-300)) / f[F_DECADES])))


@_jit
def _shown(f: FloatArray, ints: IntArray, s: float) -> float:
    if ints[I_QUIET] == 0 or (s >= f[F_ALARM] and s >= f[F_LEVEL] + f[F_ESCALATE]):
        return s
    return 0.0


@_jit
def _learn(f: FloatArray, ints: IntArray, x: float, s: float) -> None:
    """Learn finite, clipped ``x`` whose combined score before learning was ``s``."""
    quiet, alarm = ints[I_QUIET], f[F_ALARM]
    breaks = s >= alarm and s >= f[F_LEVEL] + f[F_ESCALATE]
    if (quiet == 0 and s >= alarm) or (quiet > 0 and breaks):
        ints[I_QUIET], f[F_LEVEL] = ints[I_REFRACT], s
    elif quiet > 0:
        ints[I_QUIET] = quiet - 1
    for m in range(ints[I_NMEM]):
        r = _raw(f, ints, m, x)
        _calibration_learn(f, ints, m, r)
        _member_learn(f, ints, m, x)
    _rank_learn(f, ints, x)
    _advance(ints)
    ints[I_CACHED] = 0


@_jit
def _clip(x: float) -> float:
    return max(-VALUE_LIMIT, min(VALUE_LIMIT, x))


@_kernel
def step(f: FloatArray, ints: IntArray, pending: float, x: float) -> float:
    """Learn ``pending`` (NaN = nothing pending), then return the shown score of ``x``."""
    if not math.isnan(pending):
        pending = _clip(pending)
        if ints[I_CACHED] == 1 and f[F_CACHE_X] == pending:
            s = f[F_CACHE_S]
        else:
            s = _combined(f, ints, pending, _rank_p(f, ints, pending))
        _learn(f, ints, pending, s)
    if not math.isfinite(x):
        return 0.0
    x = _clip(x)
    s = _combined(f, ints, x, _rank_p(f, ints, x))
    f[F_CACHE_X], f[F_CACHE_S], ints[I_CACHED] = x, s, 1
    return _shown(f, ints, s)


# ---------------------------------------------------------------- building the state


def _member_block(m: Detector) -> tuple[int, list[float]]:
    if isinstance(m, RobustZScore):
        head = [m.window, m.refresh, m.min_points, m.min_scale, m.rel_scale, _SIDE[m.side], 0.0, 0.0]
        return KIND_Z, head + [0.0] * (2 * m.window)  # the window, then scratch for medians
    if isinstance(m, HoltWinters):
        h = [m.alpha, m.gamma, m.beta, m.period_daily, m.period_weekly, m.warmup, m.min_scale, m.rel_scale]
        h += [_SIDE[m.side], 0.0, 0.0, 0.0]
        return KIND_H, h + [math.nan] * (m.period_daily + m.period_weekly)
    assert isinstance(m, CUSUM)
    c = [m.alpha, m.k, m.z_clip, m.warmup, m.min_scale, m.rel_scale, _SIDE[m.side], 0.0, 0.0, 0.0, 0.0]
    return KIND_C, c


class Fused:
    """The compiled ensemble's state: two arrays, plus the value whose learning is pending.

    ``score_one`` runs one compiled step that first learns the value the previous
    ``learn_one`` handed over, so a streaming point costs one call into compiled code.
    Batches run on the same state in :mod:`novacron.detectors._fused_batch`.
    """

    __slots__ = ("floats", "ints", "pending")

    def __init__(self, members: Sequence[Detector], calib: dict[str, float], rank_history: int) -> None:
        hist, short = int(calib["history"]), int(calib["short"])
        ints: list[int] = [0] * _IH
        floats: list[float] = [0.0] * _FH
        ints[I_NMEM], ints[I_HIST], ints[I_SHORT] = len(members), hist, short
        ints[I_MINHIST], ints[I_FAMC] = int(calib["min_history"]), int(calib["familiar_count"])
        ints[I_REFRACT] = int(calib["refractory"])
        ints[I_RANK_SIZE], ints[I_RANK_MIN] = rank_history, int(calib["min_history"])
        floats[F_MIN_STD], floats[F_DECADES] = calib["min_std"], calib["decades"]
        floats[F_FAMCAP] = calib["familiar_cap"]
        floats[F_ALARM], floats[F_ESCALATE] = calib["alarm"], calib["escalate"]
        # Below this z a Gaussian tail is surely above the familiarity cap (ndtri is exact
        # to far better than the margin), so familiarity cannot apply there.
        floats[F_Z_GUARD] = float(-ndtri(calib["familiar_cap"])) - 0.01
        # At or below this z the ordinary looks' tail is surely above 1/(2k) for k
        # members, so it cannot bring the combined probability below 1.
        floats[F_TAIL_GUARD] = float(-ndtri(0.5 / len(members))) - 0.01
        rings = (short + 1) + 4 * (hist + 1) + 2 * hist
        for m in members:
            kind, block = _member_block(m)
            ints += [kind, len(floats), len(floats) + len(block), 0, 0, 0, 0, 0]
            floats += block + [0.0] * rings
        # Rank window: arrival order, then the sorted blocks. After a rebuild the blocks
        # are half full, so there is room for as many splits again before the next one.
        most = 4 * (rank_history // _RB + 1) + 2
        ints[I_RANK_ORDER] = len(floats)
        ints[I_RANK_BLOCKS] = len(floats) + rank_history
        ints[I_RB_TOPS] = len(floats) + rank_history + most * _RB
        floats += [0.0] * (rank_history + most * _RB + most)
        ints[I_RB_MAX], ints[I_RB_ORDER], ints[I_RB_SIZES] = most, len(ints), len(ints) + most
        ints += [0] * (2 * most)
        self.floats: FloatArray = np.asarray(floats, dtype=np.float64)
        self.ints: IntArray = np.asarray(ints, dtype=np.int64)
        self.pending = math.nan

    def score(self, x: float) -> float:
        """Shown score of ``x`` (after learning what is pending)."""
        s = float(step(self.floats, self.ints, self.pending, x))
        self.pending = math.nan
        return s

    def learn(self, x: float) -> None:
        """Hand ``x`` over for learning at the next call (flushing an earlier one first)."""
        self.flush()
        self.pending = x

    def flush(self) -> None:
        """Learn the value that is pending, if any (before a batch works on the state)."""
        if not math.isnan(self.pending):
            step(self.floats, self.ints, self.pending, math.nan)
        self.pending = math.nan
