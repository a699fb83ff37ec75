"""A slow, obviously-correct twin of ``immunosim.experiments.clinical.classify`` (one run at a time,
items as sets of names, every criterion spelled out from its definition in docs/outcomes.md)."""

from __future__ import annotations

import math

import numpy as np

from immunosim.experiments.clinical import OUTCOMES, OutcomeOptions


def naive_run(t, score, items, sero, pred, origin, death, horizon, landmarks, o: OutcomeOptions):
    """Outcomes of one run as a dict of Python scalars / lists."""
    table = o.items
    t, score, sero, pred = (list(map(float, a)) for a in (t, score, sero, pred))
    names = [{table.names[k] for k in range(len(table.names)) if (int(b) >> k) & 1}
             for b in items]
    major_organ, serology = set(table.major_organ), set(table.serology)

    def alive_on(day):
        return math.isnan(death) or day < death

    b = max(i for i in range(len(t)) if t[i] <= origin)
    base, base_items = score[b], names[b]
    follow = [i for i in range(len(t))
              if origin <= t[i] <= origin + horizon and alive_on(t[i])]
    died = not math.isnan(death) and death <= origin + horizon
    fu = death - origin if died else horizon

    def sri4(i):
        new_organ_items = names[i] - base_items - serology
        return base - score[i] >= o.response_drop and not new_organ_items

    def major(i):
        return score[i] <= o.major_response_max and not names[i] & major_organ

    def partial(i):
        return score[i] < base and base - score[i] >= o.partial_response_fraction * base

    def first(criterion):
        return next((i for i in follow if criterion(i)), None)

    def sustained_from(i):
        """Score <= threshold from assessment i on for at least the minimum duration."""
        for k in follow[follow.index(i):]:
            if score[k] > o.remission_threshold:
                return False
            if t[k] - t[i] >= o.remission_min_duration:
                return True
        return False

    def when(i):
        return fu if i is None else t[i] - origin

    rem, resp, maj, par = first(sustained_from), first(sri4), first(major), first(partial)
    res = {"baseline_activity": base,
           "min_activity": min([base] + [score[i] for i in follow]),
           "follow_up": fu,
           "remission": rem is not None, "time_to_remission": when(rem),
           "response": resp is not None, "time_to_response": when(resp),
           "major_response": maj is not None, "time_to_major_response": when(maj),
           "partial_response": par is not None, "time_to_partial_response": when(par),
           "death": died, "time_to_death": fu}

    def flare_after(start, extra):
        """First assessment from ``start`` on whose score is >= flare_rise above the lowest
        score since ``start`` and satisfies ``extra``."""
        at_risk = [i for i in follow if i >= start]
        for n, i in enumerate(at_risk):
            nadir = min(score[k] for k in at_risk[: n + 1])
            if score[i] - nadir >= o.flare_rise and extra(i):
                return i
        return None

    onsets = [i for i in (resp, maj, par) if i is not None]
    for name, start, extra in (
            ("flare", min(onsets) if onsets else None, lambda i: True),
            ("severe_flare", min(onsets) if onsets else None,
             lambda i: score[i] > o.severe_flare_score),
            ("relapse", rem, lambda i: score[i] > o.remission_threshold)):
        hit = None if start is None else flare_after(start, extra)
        res[name] = hit is not None
        res[f"time_to_{name}"] = math.nan if start is None else when(hit)

    lm = {k: [] for k in ("activity_at", "remission_at", "sri4_at", "doris_at", "lldas_at")}
    previous_visit_items = base_items
    for day in origin + np.asarray(landmarks, dtype=float):
        if not alive_on(day):
            for k in lm:
                lm[k].append(math.nan if k == "activity_at" else False)
            continue
        i = max(k for k in range(len(t)) if t[k] <= day)
        ref = previous_visit_items if o.lldas_new_since == "previous_visit" else base_items
        lm["activity_at"].append(score[i])
        lm["remission_at"].append(score[i] <= o.remission_threshold)
        lm["sri4_at"].append(sri4(i))
        lm["doris_at"].append(score[i] - sero[i] == 0 and pred[i] <= o.doris_prednisone_max)
        lm["lldas_at"].append(score[i] <= o.lldas_score_max and not names[i] & major_organ
                              and not names[i] - ref and pred[i] <= o.lldas_prednisone_max)
        previous_visit_items = names[i]
    res.update(lm)
    return res


def naive_classify(t, score, *, items, serology_points, prednisone, origin, death, horizon,
                   landmarks, options=None):
    """Same interface and result as ``clinical.classify``; failed (NaN) rows give NaN / False."""
    o = options or OutcomeOptions()
    n = score.shape[0]
    origin, death = np.broadcast_to(origin, (n,)), np.broadcast_to(death, (n,))
    rows = []
    for r in range(n):
        if not (np.isfinite(score[r]).all() and np.isfinite(serology_points[r]).all()
                and np.isfinite(prednisone[r]).all()):
            rows.append(None)
            continue
        rows.append(naive_run(t, score[r], items[r], serology_points[r], prednisone[r],
                              float(origin[r]), float(death[r]), horizon, landmarks, o))
    out = {}
    for name, (per_landmark, kind, _) in OUTCOMES.items():
        fill = False if kind == "bool" else math.nan
        shape = (len(landmarks),) if per_landmark else ()
        out[name] = np.array([np.full(shape, fill) if row is None else row[name] for row in rows],
                             dtype=bool if kind == "bool" else float)
    return out
