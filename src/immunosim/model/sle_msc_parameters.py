"""Parameters of ``sle_msc`` (Model 2): unit, default, plausible range and source of each.

The order of :data:`PARAMETERS` is the order of the parameter vector ``p`` that the compiled
right-hand side reads (``sle_msc.rhs_at`` unpacks it by position; ``tests/test_sle_msc.py``
checks the positions against a name-based twin of the equations).

Sources: ``LITERATURE.md`` is ``shared/science/LITERATURE.md``, the project's evidence digest.
``assumed: <reason>`` marks a value that no measurement fixes; "(mice)" marks a value measured
in mice. Ranges of the uncertain parameters are wide on purpose: the calibration fits them.
"""

from __future__ import annotations

from dataclasses import replace

from ._parameters import FRACTION, NONNEGATIVE, POSITIVE, Parameter, ParameterTable

_LIT = "LITERATURE.md"

_MSC = (
    Parameter("msc_half_life", 1.0, "d", 0.5, 2.0,
              "mice: Lee RH et al., Cell Stem Cell 2009;5:54; Eggenhofer E et al., Front Immunol "
              "2012;3:297 (viable MSCs only in lung, up to 24 h); human: donor DNA rarely found "
              "beyond ~50 d (von Bahr L et al., Stem Cells 2012) (" + _LIT + ")",
              "Half-life of IV MSCs trapped in the lung"),
    Parameter("msc_ec50", 0.5, "1e6 cells/kg", 0.1, 3.0,
              "assumed: no human exposure-response data; puts the clinical 1e6 cells/kg near "
              "the top of the direct-effect curve and 1e5 cells/kg near its foot",
              "MSC pool giving half the maximal direct effect"),
    Parameter("potency_bm", 1.0, "1", 0.5, 2.0,
              "assumed: reference cell source (bone marrow), Liang J et al., Ann Rheum Dis 2010",
              "Potency factor of bone-marrow MSCs"),
    Parameter("potency_uc", 1.0, "1", 0.5, 2.0,
              "assumed: Wang D et al., Cell Transplant 2013 pooled BM and UC MSCs with similar "
              "outcomes, so the same potency as BM by default",
              "Potency factor of umbilical-cord MSCs"),
    Parameter("msc_response", 1.0, "1", 0.0, 3.0,
              "assumed: patients differ in how they respond to MSCs; some do not respond at "
              "any dose (autologous MSCs raised Tregs without remission, Carrion F et al. 2010 "
              "[secondary], " + _LIT + "); 0 = non-responder",
              "Patient's responsiveness to the MSC signal (multiplies it)"),
    Parameter("msc_signal_k50", 1.0, "1", 0.3, 3.0,
              "assumed: half-maximal MSC action at the signal of one 1e6 cells/kg infusion's "
              "peak; every MSC action saturates (Emax)",
              "MSC signal giving half of each action's maximum"),
    Parameter("reg_induction", 0.6, "1/d", 0.2, 2.0,
              "assumed: one 1e6 cells/kg infusion raises regulatory activity about two-fold "
              "(Treg rise after MSC: Sun L et al., Arthritis Rheum 2010, " + _LIT + ")",
              "Induction rate of the regulatory state by MSCs (PGE2, TGF-beta1, IDO)"),
    Parameter("reg_max", 2.0, "1", 0.5, 5.0,
              "assumed: the induced regulatory state saturates (finite Treg/Breg niche)",
              "Ceiling of the MSC-induced regulatory state"),
    Parameter("reg_half_life", 150.0, "d", 30.0, 365.0,
              "assumed: hit and run, clinical benefit lasts 6-12+ months after MSCs are "
              "cleared (" + _LIT + " section 2)",
              "Half-life of the MSC-induced regulatory state"),
    Parameter("emax_prolif", 0.7, "1", 0.0, 1.0,
              "assumed strength; mechanism: G0/G1 arrest of B cells, Corcione A et al., Blood "
              "2006;107:367 (in vitro, human cells)",
              "Maximal MSC suppression of GC B-cell proliferation (fraction)"),
    Parameter("emax_activation", 0.5, "1", 0.0, 1.0,
              "assumed strength; mechanism: Corcione A et al., Blood 2006;107:367",
              "Maximal MSC suppression of B-cell activation (fraction)"),
    Parameter("emax_differentiation", 0.5, "1", 0.0, 1.0,
              "assumed strength; mechanism: Rafei M et al., Blood 2008;112:4991 (mice; "
              "context-dependent, Luk F et al., Front Immunol 2017)",
              "Maximal MSC suppression of plasma-cell differentiation (fraction)"),
    Parameter("emax_secretion", 0.3, "1", 0.0, 1.0,
              "assumed strength; mechanism: Rafei M et al., Blood 2008;112:4991 (mice)",
              "Maximal MSC suppression of plasmablast antibody output (not of LLPC)"),
    Parameter("emax_tfh", 0.5, "1", 0.0, 1.0,
              "assumed strength; mechanism: Tfh/IL-21 inhibition in lupus mice, Cell Transplant "
              "2017;26:1031 (" + _LIT + ")",
              "Maximal MSC inhibition of T follicular helper cells (fraction)"),
    Parameter("emax_repair", 0.5, "1", 0.0, 2.0,
              "assumed: MSC-assisted tissue repair is stated in the seed only ("
              + _LIT + "); kept small so that it does not carry the MSC effect",
              "Maximal MSC enhancement of renal repair (fold - 1)",
              domain=NONNEGATIVE),  # a fold increase minus 1, not a suppression
)

_T_CELLS = (
    Parameter("cd4_recovery_half_life", 180.0, "d", 60.0, 540.0,
              "assumed from CD4 T-cell counts recovering over 1-2 years after ATG-based "
              "autologous HSCT (Alexander T et al., Blood 2009;113:214 [secondary]); human",
              "Half-life of CD4 T-cell pool recovery towards normal after depletion"),
    Parameter("tfh_turnover", 0.1, "1/d", 0.05, 0.3,
              "assumed: effector/memory CD4 T-cell turnover of days to weeks",
              "Tfh loss rate (sets how fast Tfh follow antigen)"),
    Parameter("tfh_expansion", 3.0, "1", 1.0, 6.0,
              "circulating Tfh expanded 2-4x in active SLE, Simpson N et al., Arthritis Rheum "
              "2010;62:234 [secondary]; human",
              "Maximal antigen-driven Tfh expansion above healthy"),
    Parameter("tfh_help_k50", 1.0, "1", 0.5, 2.0,
              "assumed: half-maximal help at the healthy Tfh level",
              "Tfh level giving half-maximal B-cell help"),
)

_B_CELLS = (
    Parameter("naive_turnover", 0.02, "1/d", 0.01, 0.04,
              "Pan S et al., Br J Clin Pharmacol 2019;85:1790 (B-cell turnover 0.02/d; human: "
              "39 children with autoimmune diseases, PK/PD model)",
              "Naive B-cell production and death rate"),
    Parameter("activation_rate", 0.05, "1/d", 0.01, 0.5,
              "assumed: germinal centres form 7-10 d after antigen (MacLennan, Annu Rev Immunol "
              "1994;12:117), maximal activation a few percent of the pool a day; the range spans "
              "healthy-only to diseased-only patients",
              "Maximal antigen- and help-driven activation rate of naive B cells"),
    Parameter("antigen_k50", 2.0, "1", 1.5, 3.0,
              "assumed: threshold of the damage-antigen loop (Arazi A, Neumann AU, J Theor Biol "
              "2010;267:426)",
              "Self-antigen level giving half-maximal B-cell stimulation"),
    Parameter("antigen_hill", 3.0, "1", 2.0, 4.0,
              "assumed: cooperative BCR/TLR9 stimulation; sigmoid as in Arazi & Neumann 2010",
              "Hill coefficient of antigen stimulation"),
    Parameter("gc_renewal", 1.0, "1", 0.6, 1.0,
              "assumed: GC proliferation replaces at most the cells leaving the GC, so GCs "
              "amplify but never sustain themselves and wane in ~3 weeks (MacLennan 1994)",
              "Maximal GC proliferation as a fraction of the GC exit rate"),
    Parameter("gc_death", 0.6, "1/d", 0.4, 0.9,
              "assumed: GC selection death, GCs last ~3 weeks (MacLennan 1994)",
              "Death rate of activated / GC B cells"),
    Parameter("gc_to_pc", 0.3, "1/d", 0.15, 0.5,
              "assumed", "Differentiation rate of GC B cells to plasma cells"),
    Parameter("gc_to_memory", 0.05, "1/d", 0.02, 0.1,
              "assumed", "Differentiation rate of GC B cells to memory B cells"),
    Parameter("gc_capacity", 100.0, "1", 30.0, 300.0,
              "assumed: crowding limit that keeps GC expansion bounded",
              "Carrying capacity of activated / GC B cells"),
    Parameter("memory_turnover", 0.01, "1/d", 0.003, 0.03,
              "assumed: net loss (death minus self-renewal) is not measured; memory B cells "
              "divide at 2.66%/d in humans (Macallan DC et al., Blood 2005;105:3633), which "
              "bounds turnover, not net loss",
              "Net loss rate of memory B cells"),
    Parameter("memory_reactivation", 0.1, "1/d", 0.03, 0.3,
              "assumed: memory B cells respond faster than naive ones",
              "Maximal antigen-driven reactivation rate of memory B cells"),
    Parameter("plasmablast_lifespan", 3.0, "d", 2.0, 5.0,
              "standard immunology: short-lived plasmablasts live days (" + _LIT + ")",
              "Mean lifespan of short-lived plasmablasts"),
    Parameter("llpc_fraction", 0.003, "1", 0.001, 0.01,
              "assumed: no measurement of the share of plasma-cell output that wins a survival "
              "niche (the ~40% LLPC share of splenic antibody-secreting cells in NZB/W mice, "
              "Hoyer BF et al., J Exp Med 2004;199:1577, is a pool share, not this fraction)",
              "Fraction of differentiating cells that become long-lived plasma cells"),
    Parameter("llpc_half_life", 365.0, "d", 180.0, 3650.0,
              "assumed: autoreactive LLPC taken shorter-lived than vaccine-specific ones; > 6 "
              "months in NZB/W mice (Hoyer 2004); antibody half-lives of 11-200 years for "
              "vaccine antigens in humans (Amanna IJ et al., NEJM 2007;357:1903) bound the range",
              "Half-life of long-lived plasma cells"),
    Parameter("llpc_capacity", 5.0, "1", 1.0, 20.0,
              "assumed: survival-niche limit", "Niche capacity for long-lived plasma cells"),
    Parameter("secretion_pb", 65.0, "IU/mL/d", 20.0, 150.0,
              "assumed: scaled so the diseased state has anti-dsDNA of a few hundred IU/mL",
              "Anti-dsDNA output per plasmablast unit"),
    Parameter("secretion_llpc", 65.0, "IU/mL/d", 20.0, 150.0,
              "assumed: same per-cell output as plasmablasts",
              "Anti-dsDNA output per long-lived plasma cell unit"),
)

_LOOP = (
    Parameter("igg_half_life", 21.0, "d", 17.0, 26.0,
              "standard IgG pharmacokinetics [secondary] (" + _LIT + ")",
              "Serum half-life of anti-dsDNA IgG"),
    Parameter("ic_formation", 0.002, "1/d", 0.0005, 0.006,
              "assumed: scaled so immune complexes deposit at a few hundred IU/mL anti-dsDNA",
              "Rate constant of immune-complex formation (per antigen unit)"),
    Parameter("antigen_clearance", 0.5, "1/d", 0.2, 1.0,
              "assumed: apoptotic debris cleared within days (Arazi & Neumann 2010)",
              "Clearance rate of self-antigen"),
    Parameter("damage_antigen_release", 10.0, "1", 5.0, 18.0,
              "assumed: strength of damage -> self-antigen feedback (Arazi & Neumann 2010)",
              "Fold increase of antigen release per unit renal damage"),
    Parameter("inflammation_antigen_release", 0.5, "1", 0.0, 2.0,
              "assumed strength; mechanism: NETosis and apoptosis in systemic inflammation "
              "release nuclear antigen (Garcia-Romo GS et al., Sci Transl Med 2011;3:73ra20; "
              "Lande R et al., Sci Transl Med 2011;3:73ra19)",
              "Antigen release per unit systemic inflammation (fold)"),
    Parameter("antigen_consumption", 0.0, "1", 0.0, 0.5,
              "assumed: antigen bound into complexes is negligible against release",
              "Antigen units removed per immune-complex unit formed"),
    Parameter("ic_clearance", 0.5, "1/d", 0.2, 1.0,
              "assumed: complement- and Fc-receptor-mediated clearance within days",
              "Maximal clearance rate of immune complexes"),
    Parameter("ic_clearance_c3_independent", 0.3, "1", 0.1, 0.6,
              "assumed: share of IC clearance that does not need complement",
              "Fraction of immune-complex clearance independent of C3"),
    Parameter("c3_normal", 120.0, "mg/dL", 90.0, 180.0,
              "standard reference range of serum C3 (90-180 mg/dL)",
              "C3 level without immune complexes"),
    Parameter("c3_turnover", 0.4, "1/d", 0.2, 0.8,
              "assumed from C3 fractional catabolic rate of about 2%/h",
              "C3 synthesis / catabolic rate"),
    Parameter("c3_consumption", 0.05, "1/d", 0.02, 0.1,
              "assumed: scaled so the diseased state has C3 near 60 mg/dL",
              "C3 consumption per immune-complex unit"),
    Parameter("damage_rate", 0.03, "1/d", 0.015, 0.06,
              "assumed: nephritis develops over weeks", "Maximal rate of IC-driven damage"),
    Parameter("ic_k50", 3.0, "1", 1.5, 6.0,
              "assumed: immune-complex level giving half-maximal injury",
              "Immune-complex level giving half-maximal renal injury"),
    Parameter("repair_rate", 0.02, "1/d", 0.01, 0.04,
              "assumed: proteinuria halves over months after remission (Liang J et al., Ann "
              "Rheum Dis 2010: 2.5 to 0.86 g/24h in 12 months)",
              "Renal repair rate"),
    Parameter("inflammation_rate", 0.2, "1/d", 0.05, 0.5,
              "assumed: systemic flares (arthritis, rash, serositis) settle over days to weeks",
              "Rate at which systemic inflammation follows its immune-complex drive"),
)

_READOUTS = (
    Parameter("std_therapy", 0.0, "1", 0.0, 0.9,
              "assumed: legacy constant suppression of B-cell activation and proliferation "
              "(0 = none); regimens of named drugs are the realistic alternative",
              "Constant background suppression"),
    Parameter("proteinuria_base", 0.1, "g/24h", 0.05, 0.15,
              "normal urinary protein < 0.15 g/24h", "Proteinuria without renal damage"),
    Parameter("proteinuria_max", 4.0, "g/24h", 2.5, 6.0,
              "assumed: nephrotic range at full damage; Liang 2010 baseline 2.5 g/24h",
              "Proteinuria added at full renal damage"),
    Parameter("renal_susceptibility", 1.0, "1", 0.2, 3.0,
              "assumed: patients with the same immune complexes differ in nephritis (class, "
              "Fc-receptor and complement genetics); spreads baseline activity",
              "Patient's renal-inflammation susceptibility (scales renal items)"),
    Parameter("extrarenal_susceptibility", 0.5, "1", 0.05, 3.0,
              "assumed: patients differ in which organs lupus affects; spreads baseline activity",
              "Patient's susceptibility of skin, joints, serosa, blood (scales extra-renal items)"),
)

_DRUGS = (
    Parameter("gc_effect_half_life", 1.0, "d", 0.3, 3.0,
              "assumed: prednisolone plasma half-life is 2-4 h, genomic effects last about a "
              "day after a dose", "Half-life of the glucocorticoid effect compartment"),
    Parameter("gc_ec50", 30.0, "mg/d", 10.0, 100.0,
              "assumed: glucocorticoid receptor effects near-saturated at 100 mg/d prednisone "
              "equivalent, pulses of 500-1000 mg methylprednisolone supramaximal",
              "Prednisone-equivalent dose giving half-maximal glucocorticoid effect"),
    Parameter("gc_emax_inflammation", 0.9, "1", 0.5, 1.0,
              "assumed: glucocorticoids suppress systemic inflammation within days",
              "Maximal glucocorticoid suppression of the inflammation drive"),
    Parameter("gc_emax_renal", 0.6, "1", 0.2, 0.9,
              "assumed: glucocorticoids reduce immune-complex nephritis activity",
              "Maximal glucocorticoid suppression of renal inflammation and injury"),
    Parameter("gc_emax_lymphocyte", 0.3, "1", 0.0, 0.6,
              "assumed: glucocorticoids blunt T-cell help and B-cell activation modestly",
              "Maximal glucocorticoid suppression of Tfh and B-cell activation"),
    Parameter("cyc_effect_half_life", 1.0, "d", 0.3, 2.0,
              "assumed: cyclophosphamide plasma half-life 3-12 h; DNA cross-linking hits "
              "dividing cells over about a day", "Half-life of the cyclophosphamide effect"),
    Parameter("cyc_ec50", 10.0, "mg/kg", 3.0, 30.0,
              "assumed: an NIH pulse (0.5-1 g/m2, ~13-27 mg/kg) near the half-maximal kill, "
              "HSCT conditioning (50 mg/kg/d) supramaximal",
              "Cyclophosphamide exposure giving half-maximal kill"),
    Parameter("cyc_kmax", 2.0, "1/d", 0.5, 5.0,
              "assumed: one pulse removes most dividing lymphocytes (nadir 7-14 d)",
              "Maximal cyclophosphamide kill rate of proliferating cells"),
    Parameter("mmf_effect_half_life", 2.0, "d", 0.5, 7.0,
              "assumed: mycophenolic acid half-life ~17 h; antiproliferative effect follows "
              "over days", "Half-life of the mycophenolate effect compartment"),
    Parameter("mmf_ec50", 1.0, "g/d", 0.3, 3.0,
              "assumed: 2-3 g/d (ALMS, Appel GB et al., J Am Soc Nephrol 2009;20:1103) near "
              "maximal effect", "Mycophenolate dose giving half-maximal effect"),
    Parameter("mmf_emax", 0.25, "1", 0.1, 0.9,
              "assumed strength, moderate because the target patients are refractory to "
              "standard therapy; mechanism: IMPDH inhibition, lymphocyte proliferation",
              "Maximal mycophenolate suppression of lymphocyte proliferation and activation"),
    Parameter("hcq_half_life", 40.0, "d", 20.0, 60.0,
              "terminal blood half-life of hydroxychloroquine ~40-50 d (Tett SE et al., Br J "
              "Clin Pharmacol 1988/1989) [secondary]; human",
              "Half-life of hydroxychloroquine accumulation"),
    Parameter("hcq_ec50", 200.0, "mg/d", 100.0, 400.0,
              "assumed: 200-400 mg/d is the clinical range", "HCQ dose giving half its effect"),
    Parameter("hcq_emax", 0.3, "1", 0.0, 0.6,
              "assumed strength; mechanism: TLR7/9 inhibition lowers nuclear-antigen sensing",
              "Maximal HCQ suppression of antigen stimulation"),
    Parameter("rtx_half_life", 19.0, "d", 10.0, 30.0,
              "Pan S et al., Br J Clin Pharmacol 2019;85:1790 (rituximab effect decays at "
              "0.036/d, half-life 19 d; human: children with autoimmune diseases, drug levels "
              "not measured); serum half-life of rituximab itself 18.5-23 d [secondary]",
              "Half-life of the rituximab effect"),
    Parameter("rtx_kill_fold", 35.0, "1", 10.0, 60.0,
              "Pan S et al., Br J Clin Pharmacol 2019;85:1790 (rituximab multiplies B-cell death "
              "35x; human: children with autoimmune diseases)",
              "Fold increase of CD20+ B-cell death at full rituximab effect"),
    Parameter("rtx_ec50", 0.05, "1", 0.01, 0.3,
              "assumed: effect in units of one 1000 mg infusion; half-maximal at 5% of it",
              "Rituximab level giving half-maximal kill"),
    Parameter("car_expansion", 1.5, "1/d", 0.3, 3.0,
              "assumed from CD19 CAR-T cellular kinetics in lymphoma/leukaemia: peak about day "
              "7-14 (Mueller KT et al., Blood 2017;130:2317 [secondary])",
              "Maximal target-driven CAR-T expansion rate"),
    Parameter("car_contraction", 0.08, "1/d", 0.03, 0.3,
              "assumed: CAR-T contract over weeks to months after the peak (Mueller 2017 "
              "[secondary])",
              "CAR-T contraction rate"),
    Parameter("car_target_k50", 1.0, "1", 0.2, 3.0,
              "assumed: CD19+ B cells (healthy pool = 1) giving half-maximal CAR-T expansion",
              "B-cell level giving half-maximal CAR-T expansion"),
    Parameter("car_kill", 0.5, "1/d", 0.1, 3.0,
              "assumed: CD19 CAR-T deplete circulating and tissue B cells within about a week, "
              "while expanding 100-1000-fold on them (Mueller 2017 [secondary])",
              "Maximal CAR-T kill rate of CD19+ B-lineage cells"),
    Parameter("car_kill_k50", 0.05, "1e6 cells/kg", 0.01, 0.5,
              "assumed: CAR-T level giving half-maximal kill; aplasia ends when CAR-T contract "
              "below it", "CAR-T level giving half-maximal kill"),
)

#: Parameters that act only under treatment (flagged, so that sweeps know they leave the
#: untreated steady state alone; ``tests/test_sle_msc.py`` checks that they do).
_TREATMENT = {p.name for p in _MSC + _DRUGS} | {"cd4_recovery_half_life", "std_therapy"}

#: Hard domains that the name and unit do not give (``_parameters.default_domain``): divisors,
#: the relaxation rates that make each state settle (0 freezes it: no steady state), shares
#: multiplying a ``1 - x``, and the few special cases. Listed in ``docs/parameters.md``.
_DOMAINS = {
    "reg_max": POSITIVE, "c3_normal": POSITIVE, "antigen_hill": POSITIVE,
    **dict.fromkeys(("naive_turnover", "tfh_turnover", "antigen_clearance", "c3_turnover",
                     "ic_clearance", "inflammation_rate"), POSITIVE),
    "gc_renewal": FRACTION,  # GC proliferation never exceeds the exit rate
    "ic_clearance_c3_independent": FRACTION,
    "std_therapy": (0.0, 1.0, False, True),  # 1 would stop all activation and proliferation
    "rtx_kill_fold": (1.0, float("inf"), False, True),  # below 1 rituximab would feed B cells
}

PARAMETERS = ParameterTable(tuple(
    replace(p, treatment=p.name in _TREATMENT, domain=_DOMAINS.get(p.name, p.domain))
    for p in _MSC + _T_CELLS + _B_CELLS + _LOOP + _READOUTS + _DRUGS))
