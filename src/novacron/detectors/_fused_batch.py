"""The compiled ensemble's batch path: one pass per part over a chunk, not every part per point.

Streaming must interleave the parts point by point (score ``x``, then learn it), but in a
batch the parts do not depend on each other's outputs: a member's raw scores depend only
on the values, a member's calibration only on its raw scores, the rank only on the
values, and the combined score and the hold only on the parts' outputs. So a chunk of
values is run through each part in turn, each in its own tight loop with its state in
local variables (no call between compiled helpers per point, which costs numba two
reference counts per array argument), and the outputs are combined at the end. Every
operation is the streaming path's, in the same order on the same values, so the scores
are the same to the last bit (``tests/detectors/test_fused.py``), and the state left
behind is the one streaming would have left: streaming and batch calls can alternate.

The rank window is counted against a sorted copy of the window taken at the start of each
chunk, corrected for the values that entered and left it since (the same exact counts as
the blocked window of the streaming path), and laid out in blocks again at the end.

The parts also touch disjoint state: the rank only its window, a member and its
calibration only their own values (the calibrations' ring positions follow from the count
learned before the batch, which moves only at the end). So a long batch runs the rank,
with the members that balance the work, on a second thread while the calling
thread runs the other members; the kernels release the GIL. The combination is split
between the two threads by values, and the hold, which carries from value to value, runs
last on one.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait

import numpy as np

from novacron.detectors._fused import (
    _IH,
    _IM,
    _MAD_TO_STD,
    _MEANAD_TO_STD,
    _RAW_CAP,
    _SCORE_LIMIT,
    _SQRT2,
    AVAILABLE,
    CA,
    CCLIP,
    CDOWN,
    CK,
    CMEAN,
    CMS,
    CRS,
    CSIDE,
    CUP,
    CVAR,
    CWARM,
    F_ALARM,
    F_DECADES,
    F_ESCALATE,
    F_FAMCAP,
    F_LEVEL,
    F_MIN_STD,
    F_TAIL_GUARD,
    F_Z_GUARD,
    HA,
    HB,
    HG,
    HLEVEL,
    HMEAN,
    HMS,
    HPD,
    HPROF,
    HPW,
    HRS,
    HSIDE,
    HVAR,
    HWARM,
    I_CACHED,
    I_FAMC,
    I_HIST,
    I_MINHIST,
    I_N,
    I_NMEM,
    I_POS_BIG,
    I_POS_SEEN,
    I_POS_SHORT,
    I_QUIET,
    I_RANK_HEAD,
    I_RANK_LEN,
    I_RANK_MIN,
    I_RANK_ORDER,
    I_RANK_SIZE,
    I_REFRACT,
    I_SHORT,
    KIND_C,
    KIND_H,
    KIND_Z,
    M_A,
    M_FB,
    M_KIND,
    M_LB,
    ZBUF,
    ZMED,
    ZMIN,
    ZMS,
    ZREF,
    ZRS,
    ZSCALE,
    ZSIDE,
    ZW,
    Fused,
    IntArray,
    _bisect,
    _ew,
    _familiar,
    _finish,
    _h_smooth,
    _inline,
    _jit,
    _kernel,
    _offsets,
    _one_sided,
    _rb_layout,
)
from novacron.detectors.base import VALUE_LIMIT, FloatArray
from novacron.errors import InputError

__all__ = ["AVAILABLE", "PARALLEL_MIN", "THREADS_ENV", "batch_threads", "score_many"]

# Values per block: each part runs over a block in turn, and their outputs for a block
# stay in the CPU cache.
_BLOCK = 4096
# Arrays up to this long are sorted by insertion.
_SHORT_SORT = 48
# Values per rank chunk: each value is counted against the sorted window as the chunk
# began, corrected by up to this many values come and gone; the sorted window is merged
# anew once per chunk.
_CHUNK = 400
# Batches of at least this many values run on two threads (when allowed): below it the
# hand-over to the second thread and back (~50 us) is more than a few percent.
PARALLEL_MIN = 20_000
# The environment variable that sets how many threads a batch may use (1 or 2).
THREADS_ENV = "NOVACRON_BATCH_THREADS"
# CPU per value of each part, in ns (each member with its calibration; the rank with the
# sorting of its chunks), measured alone on the bench's series: to balance the two sides
# of a batch on two threads.
_COST = {KIND_Z: 103, KIND_H: 56, KIND_C: 43}
_COST_RANK = 86


# ---------------------------------------------------------------- members: raw scores


@_jit
def _z_pass(f: FloatArray, ints: IntArray, mb: int, xs: FloatArray, raw: FloatArray, pre: FloatArray) -> None:
    """Robust z-score: raw score of each value, then learn it (refreshing every ``refresh``).

    The window is also kept sorted here, brought up to date at each refresh by one merge
    of the values come and gone since, so a refresh reads its median instead of selecting
    it (the streaming path selects twice per refresh, most of its cost). The ring slot and
    the refresh phase are counters, not a division per value. When refreshes tile the
    window, the values leaving at a refresh are the ones that came ``window / refresh``
    refreshes before, sorted then: they are kept and not sorted again. ``pre`` holds the
    block's values with each whole refresh group sorted (:func:`group_sorted`, numpy's
    sort before the kernel; empty: sorted here).
    """
    fb = ints[mb + M_FB]
    w, ref, least, side = int(f[fb + ZW]), int(f[fb + ZREF]), int(f[fb + ZMIN]), int(f[fb + ZSIDE])
    n, ready = ints[mb + M_A], ints[mb + M_A + 1]
    med, scale = f[fb + ZMED], f[fb + ZSCALE]
    buf = fb + ZBUF
    cnt = min(n, w)
    # Two spare slots each for the merge's end markers.
    zs = np.empty(w + 2)
    zs[:cnt] = np.sort(f[buf : buf + cnt])
    spare = np.empty(w + 2)
    came, gone = np.empty(w + 2), np.empty(w + 2)
    at = np.empty(w + 2, np.int64)  # the merge's counts, unused here
    groups = w // ref if w % ref == 0 else 0  # refreshes per window, when they tile it
    kept = np.empty((max(groups, 1), ref + 2))
    kept_id = np.full(max(groups, 1), -1, np.int64)
    n_came = n_gone = 0
    slot, phase = n % w, n % ref
    for j in range(xs.shape[0]):
        x = xs[j]
        s = 0.0 if ready == 0 else min(_one_sided(x - med, side) / scale, _SCORE_LIMIT)
        raw[j] = math.log1p(min(s, _RAW_CAP))
        if n >= w:
            gone[n_gone] = f[buf + slot]
            n_gone += 1
        came[n_came] = x
        n_came += 1
        f[buf + slot] = x
        n += 1
        slot = 0 if slot == w - 1 else slot + 1
        phase = 0 if phase == ref - 1 else phase + 1
        refresh = phase == 0 and n >= least
        if refresh or n_came == w:
            # A whole refresh group came when it ends at a refresh, ``ref`` values after the last.
            whole = groups > 0 and phase == 0 and n_came == ref
            _z_sorted(came, n_came, gone, n_gone, kept, kept_id, pre[: j + 1] if whole else pre[:0], n)
            _merge(zs, cnt, gone, n_gone, came, n_came, spare, at)
            cnt = min(n, w)
            zs, spare = spare, zs
            n_came = n_gone = 0
        if refresh:
            med, scale = _z_baseline(f, fb, cnt, zs)
            f[fb + ZMED], f[fb + ZSCALE], ready = med, scale, 1
    ints[mb + M_A], ints[mb + M_A + 1] = n, ready


@_inline
def _z_sorted(
    came: FloatArray,
    n_came: int,
    gone: FloatArray,
    n_gone: int,
    kept: FloatArray,
    kept_id: IntArray,
    pre: FloatArray,
    n: int,
) -> None:
    """Sort the values come since the last merge and those gone, in place.

    ``pre`` is non-empty when they are one whole refresh group (ending at ``pre``'s end,
    ``n`` values learned): then they are read sorted from it when it holds the whole
    group, and kept; the values gone are the group that came ``len(kept)`` refreshes
    before, when it is kept.
    """
    ref, groups = kept.shape[1] - 2, kept.shape[0]
    end = pre.shape[0]
    if end >= ref:
        came[:ref] = pre[end - ref : end]
    else:
        _sort(came[:n_came])
    if end == 0:
        _sort(gone[:n_gone])
        return
    g = n // ref - 1
    row = g % groups  # the group leaving now came into this row ``groups`` refreshes ago
    if n_gone == ref and kept_id[row] == g - groups:
        gone[:ref] = kept[row, :ref]
    else:
        _sort(gone[:n_gone])
    kept[row, :ref] = came[:ref]
    kept_id[row] = g


@_inline
def _sort(a: FloatArray) -> None:
    """Sort ``a`` in place: by insertion when short (a refresh's few values), else numba's sort.

    On a few dozen values insertion costs about half of numba's quicksort.
    """
    if a.shape[0] > _SHORT_SORT:
        a.sort()
        return
    for i in range(1, a.shape[0]):
        v = a[i]
        j = i - 1
        while j >= 0 and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v


@_jit
def _z_baseline(f: FloatArray, fb: int, width: int, zs: FloatArray) -> tuple[float, float]:
    """The streaming refresh's median and floored scale, from the sorted window.

    The same values: the median of the sorted window is the selected one (numba's median
    averages the two middle values of an even count, as here), the deviations below the
    median are ``med - v``, which is exactly ``|v - med|``, and the middle deviations are
    picked from the two sorted sides of the median; the mean deviation is summed in the
    window's own order.
    """
    half = width >> 1
    med = (zs[half - 1] + zs[half]) / 2 if width % 2 == 0 else zs[half]
    total = 0.0
    for j in range(width):
        total += abs(f[fb + ZBUF + j] - med)
    mean_s = _MEANAD_TO_STD * (total / width)
    below = _bisect(zs, 0, width, med, False)
    d = _kth_deviation(zs, below, width, med, half)
    mad = (_kth_deviation(zs, below, width, med, half - 1) + d) / 2 if width % 2 == 0 else d
    mad_s = _MAD_TO_STD * mad
    return med, max(mad_s, mean_s, f[fb + ZMS], f[fb + ZRS] * abs(med))


@_jit
def _kth_deviation(zs: FloatArray, below: int, width: int, med: float, k: int) -> float:
    """The ``k``-th smallest (from 0) of the deviations ``|v - med|`` over sorted ``zs[:width]``.

    The deviations of the ``below`` values under the median rise going down from it, those
    of the others going up; the answer is found by halving how many of the first ``k + 1``
    come from below, as in selecting from two sorted arrays, instead of walking ``k`` steps.
    """
    lo, hi = max(0, k + 1 - (width - below)), min(k + 1, below)
    while lo < hi:
        i = (lo + hi) >> 1
        if med - zs[below - 1 - i] < zs[below + k - i] - med:
            lo = i + 1
        else:
            hi = i
    top = -math.inf if lo == 0 else med - zs[below - lo]
    return max(top, -math.inf if lo == k + 1 else zs[below + k - lo] - med)


@_jit
def _h_pass(f: FloatArray, ints: IntArray, mb: int, xs: FloatArray, raw: FloatArray) -> None:
    """Holt-Winters residual: raw score of each value, then learn it."""
    fb = ints[mb + M_FB]
    alpha, gamma, beta = f[fb + HA], f[fb + HG], f[fb + HB]
    pd, pw, warm, side = int(f[fb + HPD]), int(f[fb + HPW]), f[fb + HWARM], int(f[fb + HSIDE])
    ms, rs = f[fb + HMS], f[fb + HRS]
    t, nres, started = ints[mb + M_A], ints[mb + M_A + 1], ints[mb + M_A + 2]
    level, rmean, rvar = f[fb + HLEVEL], f[fb + HMEAN], f[fb + HVAR]
    prof = fb + HPROF
    # The phases in each season are counters, not two divisions per value.
    cd = t % pd if pd else -1
    cw = t % pw if pw else -1
    for j in range(xs.shape[0]):
        x = xs[j]
        total, k = 0.0, 0
        if cd >= 0 and not math.isnan(f[prof + cd]):
            total += f[prof + cd]
            k += 1
        if cw >= 0 and not math.isnan(f[prof + pd + cw]):
            total += f[prof + pd + cw]
            k += 1
        # total / k for k = 1 or 2, without a division: halving is exact either way.
        season = total if k == 1 else total * 0.5 if k == 2 else 0.0
        s = 0.0
        if not (nres < warm or started == 0):
            r = x - level - season
            sc = max(math.sqrt(rvar), ms, rs * abs(level))
            s = _finish(_one_sided(r - rmean, side) / sc)
        raw[j] = math.log1p(min(s, _RAW_CAP))
        if started == 0:
            level, started = x, 1
        rmean, rvar = _ew(rmean, rvar, nres, x - level - season, beta)
        nres += 1
        e = x - level
        if cd >= 0:
            _h_smooth(f, prof + cd, e, gamma)
        if cw >= 0:
            _h_smooth(f, prof + pd + cw, e, gamma)
        level = level + alpha * (x - level)
        t += 1
        if cd >= 0:
            cd = 0 if cd == pd - 1 else cd + 1
        if cw >= 0:
            cw = 0 if cw == pw - 1 else cw + 1
    ints[mb + M_A], ints[mb + M_A + 1], ints[mb + M_A + 2] = t, nres, started
    f[fb + HLEVEL], f[fb + HMEAN], f[fb + HVAR] = level, rmean, rvar


@_jit
def _c_pass(f: FloatArray, ints: IntArray, mb: int, xs: FloatArray, raw: FloatArray) -> None:
    """CUSUM: raw score of each value, then learn it."""
    fb = ints[mb + M_FB]
    alpha, k, clip, warm = f[fb + CA], f[fb + CK], f[fb + CCLIP], f[fb + CWARM]
    ms, rs, side = f[fb + CMS], f[fb + CRS], int(f[fb + CSIDE])
    mean, var, up, down = f[fb + CMEAN], f[fb + CVAR], f[fb + CUP], f[fb + CDOWN]
    n = ints[mb + M_A]
    for j in range(xs.shape[0]):
        x = xs[j]
        z = 0.0
        if not n < warm:
            scale = max(math.sqrt(var), ms, rs * abs(mean))
            z = max(-clip, min(clip, (x - mean) / scale))
        up = max(0.0, up + z - k)
        down = max(0.0, down - z - k)
        stat = up if side == 1 else down if side == 2 else max(up, down)
        raw[j] = math.log1p(min(_finish(stat), _RAW_CAP))
        mean, var = _ew(mean, var, n, x, alpha)
        n += 1
    ints[mb + M_A] = n
    f[fb + CMEAN], f[fb + CVAR], f[fb + CUP], f[fb + CDOWN] = mean, var, up, down


# ---------------------------------------------------------------- calibration


@_jit
def _calibrate_pass(
    f: FloatArray,
    ints: IntArray,
    m: int,
    n0: int,
    raw: FloatArray,
    p_out: FloatArray,
    z_out: FloatArray,
    tmp: FloatArray,
) -> None:
    """Each raw score's rare-tail probability and largest ordinary z, then learn it.

    ``n0``: values learned before ``raw``'s first; the ring positions follow from it (the
    header's ``I_N`` and ``I_POS_*`` move only once the whole batch is learned).

    ``p_out`` is min'ed and ``z_out`` max'ed into, so the members' outputs combine in place.
    In three loops over the block, the streaming path's operations on the same values: the
    prefix-sum rings first (each point's window sums read before its own are added), then
    the two looks' standardised distances, which depend on nothing before them, so their
    six divisions and two square roots per value run several values to a vector
    instruction, then the familiarity of the rare looks and the seen values' rings in
    order (a familiarity count reads the seen values as they were at its point).
    ``tmp``: scratch of at least 7 rows of the block's length.
    """
    k = raw.shape[0]
    a, d_avg, q_avg, d_pt, q_pt, z_avg, z_pt = tmp[0], tmp[1], tmp[2], tmp[3], tmp[4], tmp[5], tmp[6]
    _calibrate_sums(f, ints, m, n0, raw, a, d_avg, q_avg, d_pt, q_pt)
    hist, min_std = ints[I_HIST], f[F_MIN_STD]
    for j in range(k):
        h = min(n0 + j, hist)
        mean = d_avg[j] / h
        var = q_avg[j] / h - mean * mean
        z_avg[j] = (a[j] - mean) / max(math.sqrt(max(var, 0.0)), min_std)
        mean = d_pt[j] / h
        var = q_pt[j] / h - mean * mean
        z_pt[j] = (raw[j] - mean) / max(math.sqrt(max(var, 0.0)), min_std)
    _calibrate_rare(f, ints, m, n0, raw, a, z_avg, z_pt, p_out, z_out)


@_inline
def _calibrate_sums(
    f: FloatArray,
    ints: IntArray,
    m: int,
    n: int,
    raw: FloatArray,
    a_out: FloatArray,
    d_avg: FloatArray,
    q_avg: FloatArray,
    d_pt: FloatArray,
    q_pt: FloatArray,
) -> None:
    """Short averages, each point's window sums (before it is added) and the sum rings."""
    rawr, avg, avg_sq, pt, pt_sq, _, _ = _offsets(ints, ints[_IH + _IM * m + M_LB])
    hist, short = ints[I_HIST], ints[I_SHORT]
    cur_s, cur = n % (short + 1), n % (hist + 1)
    # The sums at the current positions, carried in registers: each is the one just
    # written to its ring (reading it back would wait on the store).
    s_raw, s_avg, s_avg_sq, s_pt, s_pt_sq = f[rawr + cur_s], f[avg + cur], f[avg_sq + cur], f[pt + cur], f[pt_sq + cur]
    for j in range(raw.shape[0]):
        r = raw[j]
        if n + 1 >= short:
            start_s = cur_s + 2 - (short + 1) if cur_s + 2 > short else cur_s + 2
            a = (s_raw + r - f[rawr + start_s]) / short
        else:
            a = (s_raw + r - f[rawr]) / (n + 1)
        a_out[j] = a
        start = (cur + 1 if cur < hist else 0) if n >= hist else 0
        d_avg[j] = s_avg - f[avg + start]
        q_avg[j] = s_avg_sq - f[avg_sq + start]
        d_pt[j] = s_pt - f[pt + start]
        q_pt[j] = s_pt_sq - f[pt_sq + start]
        nxt_s = 0 if cur_s == short else cur_s + 1
        nxt = 0 if cur == hist else cur + 1
        s_raw, s_avg, s_avg_sq, s_pt, s_pt_sq = s_raw + r, s_avg + a, s_avg_sq + a * a, s_pt + r, s_pt_sq + r * r
        f[rawr + nxt_s] = s_raw
        f[avg + nxt] = s_avg
        f[avg_sq + nxt] = s_avg_sq
        f[pt + nxt] = s_pt
        f[pt_sq + nxt] = s_pt_sq
        n += 1
        cur_s, cur = nxt_s, nxt


@_inline
def _calibrate_rare(
    f: FloatArray,
    ints: IntArray,
    m: int,
    n: int,
    raw: FloatArray,
    a: FloatArray,
    z_avg: FloatArray,
    z_pt: FloatArray,
    p_out: FloatArray,
    z_out: FloatArray,
) -> None:
    """Rare looks' familiar tail probabilities, ordinary looks' largest z; the seen rings."""
    _, _, _, _, _, seen_avg, seen_pt = _offsets(ints, ints[_IH + _IM * m + M_LB])
    hist, least = ints[I_HIST], ints[I_MINHIST]
    need, cap, guard = ints[I_FAMC], f[F_FAMCAP], f[F_Z_GUARD]
    seen = n % hist
    for j in range(raw.shape[0]):
        if n >= least:
            width = min(n, hist)
            p = 1.0
            z_top = z_out[j]
            z = z_avg[j]
            if z > guard:
                p = _familiar(f, seen_avg, width, need, cap, a[j], 0.5 * math.erfc(z / _SQRT2))
            else:
                z_top = max(z_top, z)
            z = z_pt[j]
            if z > guard:
                p = min(p, _familiar(f, seen_pt, width, need, cap, raw[j], 0.5 * math.erfc(z / _SQRT2)))
            else:
                z_top = max(z_top, z)
            p_out[j] = min(p_out[j], p)
            z_out[j] = z_top
        f[seen_avg + seen] = a[j]
        f[seen_pt + seen] = raw[j]
        n += 1
        seen = 0 if seen == hist - 1 else seen + 1


# ---------------------------------------------------------------- rank


@_jit
def _rank_chunk(
    f: FloatArray,
    ints: IntArray,
    n: int,
    xs: FloatArray,
    order: IntArray,
    p_out: FloatArray,
    window: FloatArray,
    out: FloatArray,
    gone_sorted: FloatArray,
) -> FloatArray:
    """Each value's two-sided conformal rank p among the window before it, then learn the chunk.

    ``window`` holds the sorted window as the chunk starts (``n`` values learned so far);
    ``out`` receives it brought up to date. ``order`` sorts the chunk's values (numpy's
    sort, before the kernel), so one merge of them into the window counts, for all of them,
    the window's values at or below each; each count is then corrected by the chunk's
    values before it, which have entered the window, and by those that have left it.
    ``gone_sorted`` are the values that leave, sorted, when the caller has them (empty:
    sorted here); the chunk's values sorted are returned (with the merge's two spare slots).
    """
    cap, least, size0 = ints[I_RANK_SIZE], ints[I_RANK_MIN], ints[I_RANK_LEN]
    k = xs.shape[0]
    gone = _gone(f, ints, xs)
    left = gone.shape[0]
    came = np.empty(k + 2)
    for b in range(k):
        came[b] = xs[order[b]]
    if gone_sorted.shape[0] != left + 2:
        gone_sorted = np.empty(left + 2)
        gone_sorted[:left] = np.sort(gone)
    at = np.empty(k + 2, np.int64)
    _merge(window, size0, gone_sorted, left, came, k, out, at)
    lt0, le0 = np.empty(k, np.int64), np.empty(k, np.int64)
    # Whether a value of the chunk equals another or one of the window (so maybe one
    # leaving): if none does, ``<`` and ``<=`` count the same values come and gone.
    tied = False
    for b in range(k):
        le = lt = at[b]
        if le > 0 and window[le - 1] == came[b]:  # ties: the window's values below it
            lt = _bisect(window, 0, le, came[b], False)
            tied = True
        tied = tied or (b > 0 and came[b - 1] == came[b])
        lt0[order[b]], le0[order[b]] = lt, le
    for j in range(k):
        x = xs[j]
        if n + j < least:
            p_out[j] = 1.0
            continue
        left = max(0, size0 + j - cap)
        size = size0 + j - left
        lt, le = lt0[j], le0[j]
        # One loop over a value come and one gone, with integer counts: it vectorises.
        if tied:
            for i in range(left):
                lt += np.int64(xs[i] < x) - np.int64(gone[i] < x)
                le += np.int64(xs[i] <= x) - np.int64(gone[i] <= x)
            for i in range(left, j):
                lt += np.int64(xs[i] < x)
                le += np.int64(xs[i] <= x)
        else:
            d = np.int64(0)
            for i in range(left):
                d += np.int64(xs[i] < x) - np.int64(gone[i] < x)
            for i in range(left, j):
                d += np.int64(xs[i] < x)
            lt += d
            le += d
        p_out[j] = min(1.0, 2.0 * (min(size - lt, le) + 1) / (size + 1))
    order_at, head = ints[I_RANK_ORDER], ints[I_RANK_HEAD]
    size = size0
    for j in range(k):
        if size == cap:
            f[order_at + head] = xs[j]
            head = head + 1 if head + 1 < cap else 0
        else:
            f[order_at + head + size] = xs[j]
            size += 1
    ints[I_RANK_LEN], ints[I_RANK_HEAD] = size, head
    return came


@_jit
def chunk_length(cap: int) -> tuple[int, bool]:
    """The rank's chunk length for a window of ``cap``, and whether chunks tile the window.

    When they do, chunks are cut at multiples of it counted from the first value ever
    learned, so once the window is full the values leaving during a chunk are exactly an
    earlier chunk's.
    """
    chunks = (cap + _CHUNK - 1) // _CHUNK
    reuse = cap % chunks == 0
    return (cap // chunks if reuse else _CHUNK), reuse


def chunk_orders(xs: FloatArray, n0: int, cap: int) -> IntArray:
    """For each rank chunk of a batch (the kernel's cuts), the order that sorts its values.

    numpy's sort (vectorised on this hardware) sorts all the full chunks at once, about five
    times faster than the compiled kernel's own sort of each.
    """
    total = xs.shape[0]
    orders = np.empty(total, np.int64)
    if cap == 0 or total == 0:
        return orders
    c = int(chunk_length(cap)[0])
    first = min(total, c - n0 % c)
    orders[:first] = np.argsort(xs[:first])
    whole = (total - first) // c
    rest = first + whole * c
    if whole:
        orders[first:rest] = np.argsort(xs[first:rest].reshape(whole, c), axis=1).ravel()
    if rest < total:
        orders[rest:] = np.argsort(xs[rest:])
    return orders


@_kernel
def _rank_all(f: FloatArray, ints: IntArray, n0: int, xs: FloatArray, orders: IntArray, p_out: FloatArray) -> None:
    """The rank p of every value of a batch, in chunks; the window is laid out in blocks after.

    ``n0``: values learned before the batch (the header's count moves only once the whole
    batch is learned). ``orders`` sorts each chunk (:func:`chunk_orders`).
    When chunks tile the window, a leaving chunk's values, sorted when they came, are kept
    and not sorted again. Reads and writes only the rank's own state.
    """
    cap, total = ints[I_RANK_SIZE], xs.shape[0]
    chunks = (cap + _CHUNK - 1) // _CHUNK
    c, reuse = chunk_length(cap)
    # Two spare slots each for the merge's end markers.
    window, scratch = np.empty(cap + c + 2), np.empty(cap + c + 2)
    _sorted_window(f, ints, window)
    kept = np.empty((chunks, c + 2))
    kept_id = np.full(chunks, -1, np.int64)
    none = np.empty(0)
    pos = 0
    while pos < total:
        g = (n0 + pos) // c
        end = min(total, (g + 1) * c - n0)
        full = reuse and end - pos == c
        was = g - chunks
        known = full and ints[I_RANK_LEN] == cap and was >= 0 and kept_id[was % chunks] == was
        gone = kept[was % chunks] if known else none
        came = _rank_chunk(f, ints, n0 + pos, xs[pos:end], orders[pos:end], p_out[pos:end], window, scratch, gone)
        if full:
            kept[g % chunks] = came
            kept_id[g % chunks] = g
        window, scratch = scratch, window
        pos = end
    _rb_layout(f, ints, window)


@_jit
def _gone(f: FloatArray, ints: IntArray, xs: FloatArray) -> FloatArray:
    """The values that leave the window while ``xs`` is learned, oldest first."""
    cap, order, size0, head0 = ints[I_RANK_SIZE], ints[I_RANK_ORDER], ints[I_RANK_LEN], ints[I_RANK_HEAD]
    gone = np.empty(max(0, size0 + xs.shape[0] - cap))
    for i in range(gone.shape[0]):
        gone[i] = f[order + (head0 + i) % cap] if i < size0 else xs[i - size0]
    return gone


@_jit
def _merge(
    window: FloatArray,
    size0: int,
    gone: FloatArray,
    left: int,
    came: FloatArray,
    k: int,
    out: FloatArray,
    at: IntArray,
) -> None:
    """``out`` = sorted ``window[:size0]`` with sorted ``came[:k]``, less sorted ``gone[:left]``.

    ``at[b]`` receives how many of the window's values are at or below ``came[b]``. The
    values are cut at three of the window's quartile values into four ranges, each merged
    forward on its own: four independent chains of loads and compares, which the processor
    overlaps (one chain waits on each step's load), interleaved in one loop. A range starts
    after the values below its lower cut (counted by bisection in each array) and needs no
    end marker: the first value past it in any array is at least its upper cut, so above
    every value of the range, and equal to none. Each side is picked by a comparison used
    as a number, not a branch (on values in random order a branchy merge mispredicts at
    every switch of side), and the indices are unsigned, so numba reads the arrays without
    the check for negative indices. After the last range's values come infinity in the
    window and in ``came`` and NaN (equal to nothing) in ``gone``: each needs a spare slot
    after its values, as do ``at`` and ``out``, whose last slot receives the writes of
    steps that have nothing to write. Values are finite (clipped before the kernel). Equal
    values: the window's come first, and a value gone removes the first equal one.
    """
    window[size0], came[k], gone[left] = math.inf, math.inf, math.nan
    # Where each range starts: how many values of each array are below its lower cut.
    a1, b1, c1 = _range_start(window, size0 >> 2, came, k, gone, left)
    a2, b2, c2 = _range_start(window, size0 >> 1, came, k, gone, left)
    a3, b3, c3 = _range_start(window, (3 * size0) >> 2, came, k, gone, left)
    steps = (a1 + b1, a2 + b2 - a1 - b1, a3 + b3 - a2 - b2, size0 + k - a3 - b3)
    together = min(steps[0], steps[1], steps[2], steps[3])
    u = np.uint64
    junk, junk_out = u(at.shape[0] - 1), u(out.shape[0] - 1)
    s0 = (u(0), u(0), u(0), u(0))
    s1 = (u(a1), u(b1), u(c1), u(a1 + b1 - c1))
    s2 = (u(a2), u(b2), u(c2), u(a2 + b2 - c2))
    s3 = (u(a3), u(b3), u(c3), u(a3 + b3 - c3))
    for _ in range(together):
        s0 = _merge_step(window, came, gone, out, at, s0, junk, junk_out)
        s1 = _merge_step(window, came, gone, out, at, s1, junk, junk_out)
        s2 = _merge_step(window, came, gone, out, at, s2, junk, junk_out)
        s3 = _merge_step(window, came, gone, out, at, s3, junk, junk_out)
    for _ in range(steps[0] - together):
        s0 = _merge_step(window, came, gone, out, at, s0, junk, junk_out)
    for _ in range(steps[1] - together):
        s1 = _merge_step(window, came, gone, out, at, s1, junk, junk_out)
    for _ in range(steps[2] - together):
        s2 = _merge_step(window, came, gone, out, at, s2, junk, junk_out)
    for _ in range(steps[3] - together):
        s3 = _merge_step(window, came, gone, out, at, s3, junk, junk_out)


@_inline
def _range_start(
    window: FloatArray, i: int, came: FloatArray, k: int, gone: FloatArray, left: int
) -> tuple[int, int, int]:
    """Where the merge's range cut at ``window[i]`` starts: the values below it in each array.

    The cut value may repeat: the window's count is found by stepping back over its copies.
    """
    cut = window[i]
    while i > 0 and window[i - 1] == cut:
        i -= 1
    return i, _bisect(came, 0, k, cut, False), _bisect(gone, 0, left, cut, False)


@_inline
def _merge_step(
    window: FloatArray,
    came: FloatArray,
    gone: FloatArray,
    out: FloatArray,
    at: IntArray,
    state: tuple[np.uint64, np.uint64, np.uint64, np.uint64],
    junk: np.uint64,
    junk_out: np.uint64,
) -> tuple[np.uint64, np.uint64, np.uint64, np.uint64]:
    """One value of a forward merge; ``state``: next index in window, came, gone and out."""
    a, b, c, o = state
    one = np.uint64(1)
    wa, cb = window[a], came[b]
    take = np.uint64(wa <= cb)
    v = wa if wa <= cb else cb
    skip = np.uint64(gone[c] == v)
    out[junk_out if skip else o] = v
    at[junk if take else b] = np.int64(a)  # every window value at or below came[b] is out
    return a + take, b + one - take, c + skip, o + one - skip


@_jit
def _sorted_window(f: FloatArray, ints: IntArray, window: FloatArray) -> None:
    """The window's values in order, from the arrival ring."""
    order, size, head, cap = ints[I_RANK_ORDER], ints[I_RANK_LEN], ints[I_RANK_HEAD], ints[I_RANK_SIZE]
    for i in range(size):
        window[i] = f[order + (head + i) % cap]
    window[:size].sort()


# ---------------------------------------------------------------- members over a batch


@_kernel
def _members_all(
    f: FloatArray,
    ints: IntArray,
    n0: int,
    which: IntArray,
    xs: FloatArray,
    pre: FloatArray,
    p_rare: FloatArray,
    z_top: FloatArray,
) -> None:
    """Members ``which`` (indices, ascending) over a batch: each one's raw scores, then their calibration.

    Block by block, each member in turn: ``p_rare`` receives the smallest rare-tail
    probability of each value, ``z_top`` the largest ordinary z (1 and minus infinity when
    none). ``n0``: values learned before the batch (the calibrations' ring positions follow
    from it; the header's count is advanced by the caller once the batch is done). Reads
    and writes only these members' state. ``pre``: a row per z-score member of the
    ensemble, in member order (:func:`group_sorted`; rows of other members are not read).
    """
    total = xs.shape[0]
    raw = np.empty(_BLOCK)
    tmp = np.empty((7, _BLOCK))  # the calibrations' scratch
    for lo in range(0, total, _BLOCK):
        hi = min(total, lo + _BLOCK)
        k = hi - lo
        block = xs[lo:hi]
        p_rare[lo:hi] = 1.0
        z_top[lo:hi] = -math.inf
        for m in which:
            mb = _IH + _IM * m
            kind = ints[mb + M_KIND]
            if kind == KIND_Z:
                z_row = 0  # z-score members before this one
                for before in range(m):
                    z_row += int(ints[_IH + _IM * before + M_KIND] == KIND_Z)
                _z_pass(f, ints, mb, block, raw, pre[z_row, lo:hi])
            elif kind == KIND_H:
                _h_pass(f, ints, mb, block, raw)
            else:
                _c_pass(f, ints, mb, block, raw)
            _calibrate_pass(f, ints, m, n0 + lo, raw[:k], p_rare[lo:hi], z_top[lo:hi], tmp)


# ---------------------------------------------------------------- combination and hold


@_kernel
def _combine(
    f: FloatArray,
    ints: IntArray,
    n0: int,
    lo: int,
    hi: int,
    parts: FloatArray,
    p_rank: FloatArray,
    out: FloatArray,
) -> None:
    """Combined score (before the hold) of values ``lo`` to ``hi - 1`` of the batch.

    ``parts``: rows of (smallest rare p, largest ordinary z) of each side's members. The
    members' chain of minima and maxima, split between sides and joined here, gives the
    same value: the probabilities are never NaN, and a maximum chained from minus infinity
    never takes a NaN (numba's ``max(a, nan)`` is ``a``), so it is the largest of the
    others whichever way it is grouped (a zero's sign aside, which the tail ignores).

    The ordinary looks' tail (a call to ``erfc``) is computed only for the values where
    it may bring the members' probability below 1: where the largest z is at most the
    tail guard and the smallest rare probability at least ``1/(2k)`` (with a margin), the
    product is at least 1, so the probability is exactly 1 either way. The values that
    need the tail are listed first and visited after, so no branch guesses at each value.
    """
    members, least, rank, decades = ints[I_NMEM], ints[I_MINHIST], ints[I_RANK_SIZE] > 0, f[F_DECADES]
    guard, floor = f[F_TAIL_GUARD], (1.0 + 1e-9) / (2.0 * members)
    sides = parts.shape[0] // 2
    k = hi - lo
    p_members, z_tops, p_rares = np.ones(k), np.empty(k), np.empty(k)
    todo = np.empty(k, np.int64)
    count = 0
    for j in range(lo, hi):
        p_rare, z_top = parts[0, j], parts[1, j]
        for side in range(1, sides):
            p_rare = min(p_rare, parts[2 * side, j])
            z_top = max(z_top, parts[2 * side + 1, j])
        p_rares[j - lo], z_tops[j - lo] = p_rare, z_top
        todo[count] = j - lo
        count += int(n0 + j >= least and (z_top > guard or p_rare < floor))
    for t in range(count):
        i = todo[t]
        tail = 0.5 * math.erfc(z_tops[i] / _SQRT2)
        p_members[i] = min(1.0, members * min(1.0, 2.0 * min(p_rares[i], tail)))
    for j in range(lo, hi):
        p = p_members[j - lo]
        if rank:
            p = math.sqrt(p * p_rank[j])
        out[j] = min(1.0, max(0.0, -math.log10(max(p, 1e-300)) / decades))


@_kernel
def _hold(f: FloatArray, ints: IntArray, out: FloatArray) -> None:
    """The hold after alarms over combined scores ``out`` (in place); the batch is learned."""
    alarm, escalate, refract = f[F_ALARM], f[F_ESCALATE], ints[I_REFRACT]
    quiet, level = ints[I_QUIET], f[F_LEVEL]
    for j in range(out.shape[0]):
        s = out[j]
        breaks = s >= alarm and s >= level + escalate
        out[j] = s if quiet == 0 or breaks else 0.0
        if (quiet == 0 and s >= alarm) or (quiet > 0 and breaks):
            quiet, level = refract, s
        elif quiet > 0:
            quiet -= 1
    ints[I_QUIET], f[F_LEVEL] = quiet, level
    n = ints[I_N] + out.shape[0]
    ints[I_N] = n
    ints[I_POS_SHORT] = n % (ints[I_SHORT] + 1)
    ints[I_POS_BIG] = n % (ints[I_HIST] + 1)
    ints[I_POS_SEEN] = n % ints[I_HIST]
    ints[I_CACHED] = 0


# ---------------------------------------------------------------- the batch, on one or two threads


def score_many(fused: Fused, good: FloatArray, threads: int = 1) -> FloatArray:
    """Score-then-learn finite values on the state of a :class:`~novacron.detectors._fused.Fused`.

    With ``threads`` > 1 and at least :data:`PARALLEL_MIN` values, the rank opinion (with
    the members that balance the work) runs on a second thread while this one runs the
    other members; the combination is then split between the two. The parts touch
    disjoint state, so the scores and the state left are the same as on one thread.
    """
    fused.flush()
    xs = np.clip(good, -VALUE_LIMIT, VALUE_LIMIT)
    f, ints = fused.floats, fused.ints
    n0, total, members = int(ints[I_N]), xs.shape[0], int(ints[I_NMEM])
    cap = int(ints[I_RANK_SIZE])
    parallel = threads > 1 and total >= PARALLEL_MIN
    here, there = _sides(ints) if parallel else (list(range(members)), [])
    two = parallel and (cap > 0 or len(there) > 0)
    p_rank = np.empty(total if cap else 0)
    parts = np.empty((4 if there else 2, total))
    pre = np.empty((_z_members(ints, range(members)), total))
    out = np.empty(total)

    def members_side(which: list[int], rows: FloatArray) -> None:
        _presort(xs, f, ints, which, pre)
        _members_all(f, ints, n0, np.asarray(which, np.int64), xs, pre, rows[0], rows[1])

    def rank_side() -> None:
        if there:
            members_side(there, parts[2:])
        if cap:
            _rank_all(f, ints, n0, xs, chunk_orders(xs, n0, cap), p_rank)

    if not two:
        members_side(here, parts[:2])
        rank_side()
        _combine(f, ints, n0, 0, total, parts, p_rank, out)
    else:
        pool = _pool()
        _together(pool.submit(rank_side), lambda: members_side(here, parts[:2]))
        half = total // 2
        _together(
            pool.submit(_combine, f, ints, n0, 0, half, parts, p_rank, out),
            lambda: _combine(f, ints, n0, half, total, parts, p_rank, out),
        )
    _hold(f, ints, out)
    return out


def _together(worker: Future[None], here: Callable[[], None]) -> None:
    """Run ``here`` while ``worker`` runs on the other thread; return when both are done.

    The worker is waited for even when ``here`` fails (whose error is then the one
    raised): it writes into the same state.
    """
    try:
        here()
    finally:
        wait([worker])
    worker.result()


def _sides(ints: IntArray) -> tuple[list[int], list[int]]:
    """Which members run on the calling thread and which join the rank on the second.

    Each member, the costliest first, goes to the side with less estimated work so far
    (the calling thread's on a tie, so it always has one); the rank side starts with the
    rank's cost.
    """
    members = range(int(ints[I_NMEM]))
    cost = {m: _COST[int(ints[_IH + _IM * m + M_KIND])] for m in members}
    load = [0, _COST_RANK if ints[I_RANK_SIZE] > 0 else 0]
    sides: tuple[list[int], list[int]] = ([], [])
    for m in sorted(members, key=lambda m: -cost[m]):
        side = 0 if load[0] <= load[1] else 1
        sides[side].append(m)
        load[side] += cost[m]
    return sorted(sides[0]), sorted(sides[1])


def _z_members(ints: IntArray, which: Iterable[int]) -> int:
    """How many of members ``which`` are robust z-scores."""
    return sum(int(ints[_IH + _IM * m + M_KIND]) == KIND_Z for m in which)


def _presort(xs: FloatArray, f: FloatArray, ints: IntArray, which: list[int], pre: FloatArray) -> None:
    """Fill the rows of ``pre`` of members ``which`` (z-scores only; a row per z-score member)."""
    for m in which:
        mb = _IH + _IM * m
        if ints[mb + M_KIND] == KIND_Z:
            row = _z_members(ints, range(m))
            group_sorted(xs, int(ints[mb + M_A]), int(f[int(ints[mb + M_FB]) + ZREF]), pre[row])


def batch_threads(setting: int = 0) -> int:
    """Threads a batch runs on: ``setting`` when positive, else ``$NOVACRON_BATCH_THREADS``, else
    2 when the machine has more than one CPU. A batch has two sides, so more than 2 is 2.
    """
    if setting <= 0:
        raw = os.environ.get(THREADS_ENV, "").strip()
        if raw:
            try:
                setting = int(raw)
            except ValueError:
                setting = 0
            if setting < 1:
                raise InputError(f"must be a whole number >= 1, got {raw!r}", where=THREADS_ENV)
        else:
            setting = 2 if (os.cpu_count() or 1) > 1 else 1
    return min(setting, 2)


_pool_lock = threading.Lock()
_pools: dict[int, ThreadPoolExecutor] = {}


def _pool() -> ThreadPoolExecutor:
    """The batches' second thread, started once per process and kept (starting one costs 0.1–0.3 ms).

    Keyed by process: a child forked after it started does not have the thread, so it
    starts its own.
    """
    with _pool_lock:
        pid = os.getpid()
        if pid not in _pools:
            _pools[pid] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="novacron-batch")
        return _pools[pid]


def group_sorted(xs: FloatArray, n0: int, ref: int, out: FloatArray) -> None:
    """``out`` = ``xs`` with each whole group of ``ref`` values between z-score refreshes sorted.

    Refreshes fall where the member's count is a multiple of ``ref`` (``n0`` before the
    batch); values outside whole groups are left as they are (the kernel sorts those). One
    copy, then the groups sorted in place.
    """
    out[:] = xs
    first = min(xs.shape[0], (ref - n0 % ref) % ref)
    whole = (xs.shape[0] - first) // ref
    if whole:
        out[first : first + whole * ref].reshape(whole, ref).sort(axis=1)
