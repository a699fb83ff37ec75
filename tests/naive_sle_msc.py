"""A slow, obviously correct twin of ``sle_msc.rhs``: the equations of docs/model.md written with
parameter and state *names* (no positional unpacking, no strided layout, ``**`` for powers)."""

from __future__ import annotations

import math

import numpy as np

from immunosim.model import sle_msc as m


def rhs_by_name(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    q = dict(zip(m.PARAMETER_NAMES, map(float, p)))
    s = dict(zip(m.STATE_NAMES, map(float, y)))
    ln2 = math.log(2.0)
    pos = {k: max(v, 0.0) for k, v in s.items()}

    e_msc = s["msc"] / (s["msc"] + q["msc_ec50"]) if s["msc"] > 0 else 0.0
    z = q["msc_response"] * (e_msc + pos["reg"])
    sz = z / (z + q["msc_signal_k50"])
    f = {k: 1.0 - q[f"emax_{k}"] * sz for k in ("prolif", "activation", "differentiation",
                                                 "secretion", "tfh")}
    e_gc = pos["gc"] / (pos["gc"] + q["gc_ec50"])
    e_mmf = q["mmf_emax"] * pos["mmf"] / (pos["mmf"] + q["mmf_ec50"])
    e_hcq = q["hcq_emax"] * pos["hcq"] / (pos["hcq"] + q["hcq_ec50"])
    kill_cyc = q["cyc_kmax"] * pos["cyc"] / (pos["cyc"] + q["cyc_ec50"])
    kill_rtx = ((q["rtx_kill_fold"] - 1) * q["naive_turnover"] * pos["rtx"]
                / (pos["rtx"] + q["rtx_ec50"]))
    kill_car = q["car_kill"] * pos["cart"] / (pos["cart"] + q["car_kill_k50"])
    lymph = (1 - q["gc_emax_lymphocyte"] * e_gc) * (1 - e_mmf)
    drug = (1 - q["std_therapy"]) * lymph

    sensed = pos["antigen"] * (1 - e_hcq)
    stim = sensed ** q["antigen_hill"] / (sensed ** q["antigen_hill"]
                                         + q["antigen_k50"] ** q["antigen_hill"])
    help_ = pos["tfh"] / (pos["tfh"] + q["tfh_help_k50"])
    act = q["activation_rate"] * stim * help_ * f["activation"] * drug
    react = q["memory_reactivation"] * stim * help_ * f["activation"] * drug
    exits = q["gc_death"] + q["gc_to_pc"] + q["gc_to_memory"]
    prolif = (q["gc_renewal"] * exits * help_ * f["prolif"] * (1 - q["std_therapy"])
              * (1 - e_mmf) * (1 - s["b_gc"] / q["gc_capacity"]))
    diff = q["gc_to_pc"] * s["b_gc"] * f["differentiation"]
    form = q["ic_formation"] * s["anti_dsdna"] * s["antigen"]
    icr = pos["immune_complex"] * q["renal_susceptibility"] * (1 - q["gc_emax_renal"] * e_gc)
    injury = icr**2 / (icr**2 + q["ic_k50"] ** 2)
    targets = pos["b_naive"] + pos["b_mem"]
    k = {name: ln2 / q[f"{name}_half_life"] for name in ("msc", "reg", "llpc", "igg")}

    d = {
        "msc": -k["msc"] * s["msc"],
        "reg": q["reg_induction"] * e_msc * (1 - s["reg"] / q["reg_max"]) - k["reg"] * s["reg"],
        "cd4": ln2 / q["cd4_recovery_half_life"] * (1 - s["cd4"]),
        "tfh": q["tfh_turnover"] * pos["cd4"] * (1 + q["tfh_expansion"] * stim) * f["tfh"]
        * lymph - (q["tfh_turnover"] + kill_cyc) * s["tfh"],
        "b_naive": q["naive_turnover"] * (1 - s["b_naive"]) - (act + kill_rtx + kill_car)
        * s["b_naive"],
        "b_gc": act * s["b_naive"] + react * s["b_mem"]
        + (prolif - exits - kill_cyc - kill_rtx - kill_car) * s["b_gc"],
        "b_mem": q["gc_to_memory"] * s["b_gc"]
        - (q["memory_turnover"] + react + kill_rtx + kill_car) * s["b_mem"],
        "plasmablast": (1 - q["llpc_fraction"]) * diff
        - (1 / q["plasmablast_lifespan"] + kill_cyc + kill_car) * s["plasmablast"],
        "llpc": q["llpc_fraction"] * diff * (1 - s["llpc"] / q["llpc_capacity"])
        - k["llpc"] * s["llpc"],
        "anti_dsdna": q["secretion_pb"] * s["plasmablast"] * f["secretion"]
        + q["secretion_llpc"] * s["llpc"] - k["igg"] * s["anti_dsdna"] - form,
        "antigen": q["antigen_clearance"] * (1 + q["damage_antigen_release"] * s["damage"]
                                             + q["inflammation_antigen_release"]
                                             * pos["inflammation"] - s["antigen"])
        - q["antigen_consumption"] * form,
        "immune_complex": form - q["ic_clearance"] * (
            q["ic_clearance_c3_independent"] + (1 - q["ic_clearance_c3_independent"])
            * s["c3"] / q["c3_normal"]) * s["immune_complex"],
        "c3": q["c3_turnover"] * (q["c3_normal"] - s["c3"])
        - q["c3_consumption"] * s["immune_complex"] * s["c3"],
        "damage": q["damage_rate"] * injury * (1 - s["damage"])
        - q["repair_rate"] * (1 + q["emax_repair"] * sz) * s["damage"],
        "inflammation": q["inflammation_rate"] * (
            pos["immune_complex"] / q["ic_k50"] * (1 - q["gc_emax_inflammation"] * e_gc)
            - s["inflammation"]),
        "gc_dose": 0.0,
        "gc": ln2 / q["gc_effect_half_life"] * (s["gc_dose"] - s["gc"]),
        "cyc": -ln2 / q["cyc_effect_half_life"] * s["cyc"],
        "mmf_dose": 0.0,
        "mmf": ln2 / q["mmf_effect_half_life"] * (s["mmf_dose"] - s["mmf"]),
        "hcq_dose": 0.0,
        "hcq": ln2 / q["hcq_half_life"] * (s["hcq_dose"] - s["hcq"]),
        "rtx": -ln2 / q["rtx_half_life"] * s["rtx"],
        "cart": (q["car_expansion"] * targets / (targets + q["car_target_k50"])
                 - q["car_contraction"]) * s["cart"],
    }
    return np.array([d[name] for name in m.STATE_NAMES])
