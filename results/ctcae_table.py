# ruff: noqa: E501  -- the "text" values are the CTCAE v5.0 criteria verbatim; they stay on one line each.
"""CTCAE v5.0 laboratory grading criteria as data (read by ``results.ctcae``; no grading logic here).

Source: the 40 lab-gradable terms of the reference file ``ctcae_v5_terms.json`` (NCI CTCAE v5.0 criteria text
per grade; the same table as pharmaverse/admiral's CTCAE v5 grading metadata). ``text`` is that criteria text,
verbatim; the test suite compares it with the reference file. Everything else is our reading of the text.

Criterion mini-language (parsed and validated when ``results.ctcae`` is imported)::

    <op> <number> x ULN | LLN | baseline     multiple of a reference limit or of the patient's baseline
    <op> ULN + <number> <unit>               offset above the ULN ("Hemoglobin increased")
    <op> <number> <unit> [| <number> <unit>]  absolute threshold, one number per unit the CTCAE text gives
    <op> <number>                            dimensionless absolute threshold (INR, pH)

``<op>`` is ``<``, ``<=``, ``>`` or ``>=`` and states the lower end of the grade's band ("H" terms) or the upper
end ("L" terms) exactly as the text does: ">3.0 - 5.0 x ULN" becomes ``> 3.0 x ULN`` (grade 2 starts just above
3.0 x ULN), "1.5 - 3.0 x baseline" becomes ``>= 1.5 x baseline``. A value gets the highest grade whose criterion
it meets, so the upper ends need not be written. Absolute thresholds are compared in the unit the text gives
them in when the value arrives in that unit (CTCAE's SI and conventional numbers are rounded independently, e.g.
Hgb 8.0 g/dL vs 4.9 mmol/L); a value in another unit of the analyte is converted to the listed unit of the same
kind when there is one (mg/L -> mg/dL, /uL -> 10*9/L: exact), else to the first unit listed, with the factor of
``results.units.ANALYTES`` (CTCAE's own where its text implies one: calcium 4 mg/dL per mmol/L).

Per grade:

- ``any``: criteria that apply to every patient.
- ``if_baseline_normal`` / ``if_baseline_abnormal``: criteria that apply only when the baseline was within /
  beyond the reference limit on the term's side (above the ULN for "H" terms, below the LLN for "L" terms). A
  missing baseline counts as normal.
- ``assuming`` + ``assumption``: criteria that hold only under a clinical condition a lab value cannot show;
  following the reference file's COMMENTs we take the worst case (assume the condition) and flag the grade
  ``assumed`` (and ``lab_only``).
- ``clinical``: the grade's text also has a clinical element (symptoms, intervention, hospitalisation,
  transfusion, bleeding, life-threatening consequences, anticoagulation). A grade at or below the highest such
  grade is reported ``lab_only``: the clinical grade may be higher than what the value shows.

A baseline multiple in ``any`` or ``assuming`` (creatinine, INR) is skipped when no baseline is given; a missing
ULN or LLN, or a missing unit for an absolute threshold, makes that criterion unknown, and the grader returns a
grade only when no unknown criterion could raise it.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict


class GradeRow(TypedDict):
    text: str
    any: NotRequired[list[str]]
    if_baseline_normal: NotRequired[list[str]]
    if_baseline_abnormal: NotRequired[list[str]]
    assuming: NotRequired[list[str]]
    assumption: NotRequired[str]
    clinical: NotRequired[bool]


class TermRow(TypedDict):
    direction: Literal["H", "L"]
    analyte: str
    # UCUM unit per unit system: the reference file's UNIT_CHECK where it has one, else the usual unit.
    units: dict[str, str]  # keys "SI" and "USCV"
    grades: dict[int, GradeRow]
    note: NotRequired[str]


# ``analyte`` names an entry of ``results.units.ANALYTES`` (the one unit-conversion table): it decides which units a
# value may come in and how they convert. Terms graded only against ULN/LLN/baseline use it to refuse a wrong
# analyte; the limits are taken to be in the value's unit (any factor cancels).
# Analytes whose values are pure numbers: no unit needed.
DIMENSIONLESS: frozenset[str] = frozenset({"inr", "ph"})

# Shared criteria of the liver terms (ALT, AST, ALP, GGT, bilirubin) whose CTCAE text switches to baseline
# multiples when the baseline was abnormal (above the ULN). Grade 1 "1.5 - 3.0 x baseline" includes 1.5 (no ">"), bilirubin's "> 1.0" does not.


def _liver(
    g1: str, g2: str, g3: str, g4: str, uln: tuple[str, str, str, str], base: tuple[str, str, str, str]
) -> dict[int, GradeRow]:
    texts = (g1, g2, g3, g4)
    return {
        n: {"text": texts[n - 1], "if_baseline_normal": [uln[n - 1]], "if_baseline_abnormal": [base[n - 1]]}
        for n in (1, 2, 3, 4)
    }


_ALT_AST_TEXT = (
    ">ULN - 3.0 x ULN if baseline was normal; 1.5 - 3.0 x baseline if baseline was abnormal",
    ">3.0 - 5.0 x ULN if baseline was normal; >3.0 - 5.0 x baseline if baseline was abnormal",
    ">5.0 - 20.0 x ULN if baseline was normal; >5.0 - 20.0 x baseline if baseline was abnormal",
    ">20.0 x ULN if baseline was normal; >20.0 x baseline if baseline was abnormal",
)
_ALT_AST_ULN = ("> 1 x ULN", "> 3.0 x ULN", "> 5.0 x ULN", "> 20.0 x ULN")
_ALT_AST_BASE = (">= 1.5 x baseline", "> 3.0 x baseline", "> 5.0 x baseline", "> 20.0 x baseline")

_ALP_GGT_TEXT = (
    ">ULN - 2.5 x ULN if baseline was normal; 2.0 - 2.5 x baseline if baseline was abnormal",
    ">2.5 - 5.0 x ULN if baseline was normal; >2.5 - 5.0 x baseline if baseline was abnormal",
    ">5.0 - 20.0 x ULN if baseline was normal; >5.0 - 20.0 x baseline if baseline was abnormal",
    ">20.0 x ULN if baseline was normal; >20.0 x baseline if baseline was abnormal",
)
_ALP_GGT_ULN = ("> 1 x ULN", "> 2.5 x ULN", "> 5.0 x ULN", "> 20.0 x ULN")
_ALP_GGT_BASE = (">= 2.0 x baseline", "> 2.5 x baseline", "> 5.0 x baseline", "> 20.0 x baseline")

_PANCREAS_GRADES: dict[int, GradeRow] = {
    1: {"text": ">ULN - 1.5 x ULN", "any": ["> 1 x ULN"]},
    # ">2.0 - 5.0 x ULN and asymptomatic" never wins: grade 3 assumes signs or symptoms (worst case).
    2: {"text": ">1.5 - 2.0 x ULN; >2.0 - 5.0 x ULN and asymptomatic", "any": ["> 1.5 x ULN"], "clinical": True},
    3: {
        "text": ">2.0 - 5.0 x ULN with signs or symptoms; >5.0 x ULN and asymptomatic",
        "assuming": ["> 2.0 x ULN"],
        "assumption": "with signs or symptoms",
        "clinical": True,
    },
    4: {
        "text": ">5.0 x ULN and with signs or symptoms",
        "assuming": ["> 5.0 x ULN"],
        "assumption": "with signs or symptoms",
        "clinical": True,
    },
}

_CALCIUM_HIGH_TEXT = (
    "Corrected serum calcium of >ULN - 11.5 mg/dL; >ULN - 2.9 mmol/L;  Ionized calcium  >ULN - 1.5 mmol/L",
    "Corrected serum calcium of >11.5 - 12.5 mg/dL; >2.9 - 3.1 mmol/L;  Ionized calcium >1.5 - 1.6 mmol/L; symptomatic",
    "Corrected serum calcium of >12.5 - 13.5 mg/dL;>3.1 - 3.4 mmol/L;  Ionized calcium  >1.6 - 1.8 mmol/L; hospitalization indicated",
    "Corrected serum calcium of >13.5 mg/dL; >3.4 mmol/L;  Ionized calcium  >1.8 mmol/L; life-threatening consequences",
)
_CALCIUM_LOW_TEXT = (
    "Corrected serum calcium of <LLN - 8.0 mg/dL; <LLN - 2.0 mmol/L; Ionized calcium  <LLN - 1.0 mmol/L",
    "Corrected serum calcium of <8.0 - 7.0 mg/dL; <2.0 - 1.75 mmol/L; Ionized calcium  <1.0 - 0.9 mmol/L; symptomatic",
    "Corrected serum calcium of <7.0 - 6.0 mg/dL; <1.75 - 1.5 mmol/L;  Ionized calcium  <0.9 - 0.8 mmol/L; hospitalization indicated",
    "Corrected serum calcium of  <6.0 mg/dL; <1.5 mmol/L;  Ionized calcium  <0.8 mmol/L; life-threatening consequences",
)

_BLOOD = {"SI": "10*9/L", "USCV": "10*3/uL"}
_ENZYME = {"SI": "U/L", "USCV": "U/L"}


TERMS_V5: dict[str, TermRow] = {
    # ---------------------------------------------------------------- Blood and lymphatic system disorders
    "Anemia": {
        "direction": "L",
        "analyte": "hemoglobin",
        "units": {"SI": "g/L", "USCV": "g/dL"},
        "grades": {
            1: {"text": "Hemoglobin (Hgb) <LLN - 10.0 g/dL; <LLN - 6.2 mmol/L; <LLN - 100 g/L", "any": ["< 1 x LLN"]},
            2: {
                "text": "Hgb <10.0 - 8.0 g/dL; <6.2 - 4.9 mmol/L; <100 - 80g/L",
                "any": ["< 100 g/L | 10.0 g/dL | 6.2 mmol/L"],
            },
            3: {
                "text": "Hgb <8.0 g/dL; <4.9 mmol/L; <80 g/L; transfusion indicated",
                "any": ["< 80 g/L | 8.0 g/dL | 4.9 mmol/L"],
                "clinical": True,
            },
            4: {"text": "Life-threatening consequences; urgent intervention indicated", "clinical": True},
        },
        "note": "Lab grades stop at 3; every grade is lab_only (transfusion / life-threatening consequences are clinical).",
    },
    "Leukocytosis": {
        "direction": "H",
        "analyte": "cells",
        "units": _BLOOD,
        "grades": {
            1: {"text": "-"},
            2: {"text": "-"},
            3: {"text": ">100,000/mm3", "any": ["> 100 10*9/L | 100000 /mm3"]},
            4: {"text": "Clinical manifestations of leucostasis; urgent intervention indicated", "clinical": True},
        },
        "note": "Only grade 3 is defined by a value: up to 100 x 10^9/L is grade 0 (no ULN needed); grade 3 is lab_only.",
    },
    # -------------------------------------------------------------------------------------- Investigations
    "Activated partial thromboplastin time prolonged": {
        "direction": "H",
        "analyte": "seconds",
        "units": {"SI": "s", "USCV": "s"},
        "grades": {
            1: {"text": ">ULN - 1.5 x ULN", "any": ["> 1 x ULN"]},
            2: {"text": ">1.5 - 2.5 x ULN", "any": ["> 1.5 x ULN"]},
            3: {"text": ">2.5 x ULN; bleeding", "any": ["> 2.5 x ULN"], "clinical": True},
            4: {"text": "-"},
        },
    },
    "Alanine aminotransferase increased": {
        "direction": "H",
        "analyte": "enzyme",
        "units": _ENZYME,
        "grades": _liver(*_ALT_AST_TEXT, uln=_ALT_AST_ULN, base=_ALT_AST_BASE),
        "note": "Abnormal baseline = baseline > ULN; then graded on baseline multiples only (1.0-1.5 x baseline is grade 0).",
    },
    "Alkaline phosphatase increased": {
        "direction": "H",
        "analyte": "enzyme",
        "units": _ENZYME,
        "grades": _liver(*_ALP_GGT_TEXT, uln=_ALP_GGT_ULN, base=_ALP_GGT_BASE),
    },
    "Aspartate aminotransferase increased": {
        "direction": "H",
        "analyte": "enzyme",
        "units": _ENZYME,
        "grades": _liver(*_ALT_AST_TEXT, uln=_ALT_AST_ULN, base=_ALT_AST_BASE),
    },
    "Blood bilirubin increased": {
        "direction": "H",
        "analyte": "bilirubin",
        "units": {"SI": "umol/L", "USCV": "mg/dL"},
        "grades": _liver(
            ">ULN - 1.5 x ULN if baseline was normal; > 1.0 - 1.5 x baseline if baseline was abnormal",
            ">1.5 - 3.0 x ULN if baseline was normal; >1.5 - 3.0 x baseline if baseline was abnormal",
            ">3.0 - 10.0 x ULN if baseline was normal; >3.0 - 10.0 x baseline if baseline was abnormal",
            ">10.0 x ULN if baseline was normal; >10.0 x baseline if baseline was abnormal",
            uln=("> 1 x ULN", "> 1.5 x ULN", "> 3.0 x ULN", "> 10.0 x ULN"),
            base=("> 1.0 x baseline", "> 1.5 x baseline", "> 3.0 x baseline", "> 10.0 x baseline"),
        ),
        "note": "With an abnormal baseline any rise above the baseline is grade 1 ('> 1.0 x baseline').",
    },
    "Blood lactate dehydrogenase increased": {
        "direction": "H",
        "analyte": "enzyme",
        "units": _ENZYME,
        "grades": {1: {"text": ">ULN", "any": ["> 1 x ULN"]}, 2: {"text": "-"}, 3: {"text": "-"}, 4: {"text": "-"}},
    },
    "CD4 lymphocytes decreased": {
        "direction": "L",
        "analyte": "cells",
        "units": {"SI": "10*9/L", "USCV": "/uL"},
        "grades": {
            1: {"text": "<LLN - 500/mm3; <LLN - 0.5 x 10e9 /L", "any": ["< 1 x LLN"]},
            2: {"text": "<500 - 200/mm3; <0.5 - 0.2 x 10e9 /L", "any": ["< 0.5 10*9/L | 500 /mm3"]},
            # The SI half of the text is garbled ("<0.2 x 0.05 - 10e9 /L"); read as <0.2 - 0.05 x 10e9/L, which the
            # /mm3 half confirms.
            3: {"text": "<200 - 50/mm3; <0.2 x 0.05 - 10e9 /L", "any": ["< 0.2 10*9/L | 200 /mm3"]},
            4: {"text": "<50/mm3; <0.05 x 10e9 /L", "any": ["< 0.05 10*9/L | 50 /mm3"]},
        },
    },
    "Cholesterol high": {
        "direction": "H",
        "analyte": "cholesterol",
        "units": {"SI": "mmol/L", "USCV": "mg/dL"},
        "grades": {
            1: {"text": ">ULN - 300 mg/dL; >ULN - 7.75 mmol/L", "any": ["> 1 x ULN"]},
            2: {"text": ">300 - 400 mg/dL; >7.75 - 10.34 mmol/L", "any": ["> 7.75 mmol/L | 300 mg/dL"]},
            3: {"text": ">400 - 500 mg/dL; >10.34 - 12.92 mmol/L", "any": ["> 10.34 mmol/L | 400 mg/dL"]},
            4: {"text": ">500 mg/dL; >12.92 mmol/L", "any": ["> 12.92 mmol/L | 500 mg/dL"]},
        },
    },
    "CPK increased": {
        "direction": "H",
        "analyte": "enzyme",
        "units": _ENZYME,
        "grades": {
            1: {"text": ">ULN - 2.5 x ULN", "any": ["> 1 x ULN"]},
            2: {"text": ">2.5 x ULN - 5 x ULN", "any": ["> 2.5 x ULN"]},
            3: {"text": ">5 x ULN - 10 x ULN", "any": ["> 5 x ULN"]},
            4: {"text": ">10 x ULN", "any": ["> 10 x ULN"]},
        },
    },
    "Creatinine increased": {
        "direction": "H",
        "analyte": "creatinine",
        "units": {"SI": "umol/L", "USCV": "mg/dL"},
        "grades": {
            1: {"text": ">ULN - 1.5 x ULN", "any": ["> 1 x ULN"]},
            2: {"text": ">1.5 - 3.0 x baseline; >1.5 - 3.0 x ULN", "any": ["> 1.5 x ULN", "> 1.5 x baseline"]},
            3: {"text": ">3.0 baseline; >3.0 - 6.0 x ULN", "any": ["> 3.0 x ULN", "> 3.0 x baseline"]},
            4: {"text": ">6.0 x ULN", "any": ["> 6.0 x ULN"]},
        },
        "note": (
            "Baseline multiples are alternatives to the ULN ones for any baseline (not only an abnormal one) and apply "
            "even below the ULN (a 1.5 x rise is acute kidney injury); without a baseline only the ULN ones are used. "
            "Grade 3 '>3.0 baseline' is read as > 3.0 x baseline."
        ),
    },
    "Fibrinogen decreased": {
        "direction": "L",
        "analyte": "fibrinogen",
        "units": {"SI": "g/L", "USCV": "mg/dL"},
        "grades": {
            1: {
                "text": "<1.0 - 0.75 x LLN; if abnormal, <25% decrease from baseline",
                "any": ["< 1.0 x LLN"],
                "if_baseline_abnormal": ["< 1 x baseline"],
            },
            2: {
                "text": "<0.75 - 0.5 x LLN; if abnormal, 25 - <50% decrease from baseline",
                "any": ["< 0.75 x LLN"],
                "if_baseline_abnormal": ["<= 0.75 x baseline"],
            },
            3: {
                "text": "<0.5 - 0.25 x LLN; if abnormal, 50 - <75% decrease from baseline",
                "any": ["< 0.5 x LLN"],
                "if_baseline_abnormal": ["<= 0.5 x baseline"],
            },
            4: {
                "text": "<0.25 x LLN; if abnormal, 75% decrease from baseline; absolute value <50 mg/dL",
                "any": ["< 50 mg/dL", "< 0.25 x LLN"],
                "if_baseline_abnormal": ["<= 0.25 x baseline"],
            },
        },
        "note": (
            "'if abnormal' is read as 'if the baseline was abnormal' (below the LLN). Worst case, as for a safety "
            "signal: the LLN multiples apply always and, with an abnormal baseline, the decrease from baseline too; "
            "the grade is the worse of the two (a value at an abnormal baseline of 0.9 x LLN is grade 1 by the LLN, "
            "0 by the baseline: 1). Any decrease is grade 1 (no change is 0), 25 % / 50 % / 75 % decreases start "
            "grades 2 / 3 / 4. '< 50 mg/dL' is grade 4 whatever the baseline and needs a unit."
        ),
    },
    "GGT increased": {
        "direction": "H",
        "analyte": "enzyme",
        "units": _ENZYME,
        "grades": _liver(*_ALP_GGT_TEXT, uln=_ALP_GGT_ULN, base=_ALP_GGT_BASE),
    },
    "Haptoglobin decreased": {
        "direction": "L",
        "analyte": "haptoglobin",
        "units": {"SI": "g/L", "USCV": "mg/dL"},
        "grades": {1: {"text": "<LLN", "any": ["< 1 x LLN"]}, 2: {"text": "-"}, 3: {"text": "-"}, 4: {"text": "-"}},
        "note": "Only grade 1 exists: needs the LLN, otherwise no grade (None).",
    },
    "Hemoglobin increased": {
        "direction": "H",
        "analyte": "hemoglobin",
        "units": {"SI": "g/L", "USCV": "g/dL"},
        "grades": {
            1: {"text": "Increase in >0 - 2 g/Dl above ULN", "any": ["> 1 x ULN"]},
            2: {"text": "Increase in >2 - 4 g/dL above ULN", "any": ["> ULN + 2 g/dL"]},
            3: {"text": "Increase in >4 g/dL above ULN", "any": ["> ULN + 4 g/dL"]},
            4: {"text": "-"},
        },
        "note": "Offsets are in g/dL (20 / 40 g/L); the ULN is taken in the value's unit and converted with it.",
    },
    "INR increased": {
        "direction": "H",
        "analyte": "inr",
        "units": {"SI": "{INR}", "USCV": "{INR}"},
        "grades": {
            1: {
                "text": ">1.2 - 1.5; >1 - 1.5 x baseline if on anticoagulation; monitoring only indicated",
                "any": ["> 1.2"],
                "assuming": ["> 1 x baseline"],
                "assumption": "on anticoagulation",
                "clinical": True,
            },
            2: {
                "text": ">1.5 - 2.5; >1.5 - 2.5 x baseline if on anticoagulation; dose adjustment indicated",
                "any": ["> 1.5"],
                "assuming": ["> 1.5 x baseline"],
                "assumption": "on anticoagulation",
                "clinical": True,
            },
            3: {
                "text": ">2.5; >2.5 times above baseline if on anticoagulation",
                "any": ["> 2.5"],
                "assuming": ["> 2.5 x baseline"],
                "assumption": "on anticoagulation",
                "clinical": True,
            },
            4: {"text": "-"},
        },
        "note": (
            "Reference COMMENT: take the worst case and assume 'on anticoagulation', so with a baseline its multiples "
            "apply too (any rise above baseline is grade 1); without one only the absolute INR is graded. "
            "'2.5 times above baseline' is read as > 2.5 x baseline. Every grade mentions treatment: lab_only."
        ),
    },
    "Lipase increased": {
        "direction": "H",
        "analyte": "enzyme",
        "units": _ENZYME,
        "grades": _PANCREAS_GRADES,
        "note": "Reference COMMENT: worst case, assume signs or symptoms: > 2 x ULN is grade 3, > 5 x ULN grade 4 (lab_only).",
    },
    "Lymphocyte count decreased": {
        "direction": "L",
        "analyte": "cells",
        "units": _BLOOD,
        "grades": {
            1: {"text": "<LLN - 800/mm3; <LLN - 0.8 x 10e9/L", "any": ["< 1 x LLN"]},
            2: {"text": "<800 - 500/mm3; <0.8 - 0.5 x 10e9 /L", "any": ["< 0.8 10*9/L | 800 /mm3"]},
            3: {"text": "<500 - 200/mm3; <0.5 - 0.2 x 10e9 /L", "any": ["< 0.5 10*9/L | 500 /mm3"]},
            4: {"text": "<200/mm3; <0.2 x 10e9 /L", "any": ["< 0.2 10*9/L | 200 /mm3"]},
        },
    },
    "Lymphocyte count increased": {
        "direction": "H",
        "analyte": "cells",
        "units": _BLOOD,
        "grades": {
            1: {"text": "-"},
            2: {"text": ">4000/mm3 - 20,000/mm3", "any": ["> 4 10*9/L | 4000 /mm3"]},
            3: {"text": ">20,000/mm3", "any": ["> 20 10*9/L | 20000 /mm3"]},
            4: {"text": "-"},
        },
        "note": "No grade 1: up to 4 x 10^9/L is grade 0, whatever the ULN.",
    },
    "Neutrophil count decreased": {
        "direction": "L",
        "analyte": "cells",
        "units": _BLOOD,
        "grades": {
            1: {"text": "<LLN - 1500/mm3; <LLN - 1.5 x 10e9 /L", "any": ["< 1 x LLN"]},
            2: {"text": "<1500 - 1000/mm3; <1.5 - 1.0 x 10e9 /L", "any": ["< 1.5 10*9/L | 1500 /mm3"]},
            3: {"text": "<1000 - 500/mm3; <1.0 - 0.5 x 10e9 /L", "any": ["< 1.0 10*9/L | 1000 /mm3"]},
            4: {"text": "<500/mm3; <0.5 x 10e9 /L", "any": ["< 0.5 10*9/L | 500 /mm3"]},
        },
    },
    "Platelet count decreased": {
        "direction": "L",
        "analyte": "cells",
        "units": _BLOOD,
        "grades": {
            1: {"text": "<LLN - 75,000/mm3; <LLN - 75.0 x 10e9 /L", "any": ["< 1 x LLN"]},
            2: {"text": "<75,000 - 50,000/mm3; <75.0 - 50.0 x 10e9 /L", "any": ["< 75.0 10*9/L | 75000 /mm3"]},
            3: {"text": "<50,000 - 25,000/mm3; <50.0 - 25.0 x 10e9 /L", "any": ["< 50.0 10*9/L | 50000 /mm3"]},
            4: {"text": "<25,000/mm3; <25.0 x 10e9 /L", "any": ["< 25.0 10*9/L | 25000 /mm3"]},
        },
    },
    "Serum amylase increased": {
        "direction": "H",
        "analyte": "enzyme",
        "units": _ENZYME,
        "grades": _PANCREAS_GRADES,
        "note": "As lipase: worst case, assume signs or symptoms.",
    },
    "White blood cell decreased": {
        "direction": "L",
        "analyte": "cells",
        "units": _BLOOD,
        "grades": {
            1: {"text": "<LLN - 3000/mm3; <LLN - 3.0 x 10e9 /L", "any": ["< 1 x LLN"]},
            2: {"text": "<3000 - 2000/mm3; <3.0 - 2.0 x 10e9 /L", "any": ["< 3.0 10*9/L | 3000 /mm3"]},
            3: {"text": "<2000 - 1000/mm3; <2.0 - 1.0 x 10e9 /L", "any": ["< 2.0 10*9/L | 2000 /mm3"]},
            4: {"text": "<1000/mm3; <1.0 x 10e9 /L", "any": ["< 1.0 10*9/L | 1000 /mm3"]},
        },
    },
    # ----------------------------------------------------------------- Metabolism and nutrition disorders
    "Acidosis": {
        "direction": "L",
        "analyte": "ph",
        "units": {"SI": "[pH]", "USCV": "[pH]"},
        "grades": {
            1: {"text": "pH <normal, but >=7.3", "any": ["< 1 x LLN"]},
            2: {"text": "-"},
            3: {"text": "pH <7.3", "any": ["< 7.3"]},
            4: {"text": "Life-threatening consequences", "clinical": True},
        },
        "note": "'<normal' is read as < LLN (pass the pH reference range); without it only pH < 7.3 (grade 3) is graded.",
    },
    "Alkalosis": {
        "direction": "H",
        "analyte": "ph",
        "units": {"SI": "[pH]", "USCV": "[pH]"},
        "grades": {
            1: {"text": "pH >normal, but <=7.5", "any": ["> 1 x ULN"]},
            2: {"text": "-"},
            3: {"text": "pH >7.5", "any": ["> 7.5"]},
            4: {"text": "Life-threatening consequences", "clinical": True},
        },
        "note": "'>normal' is read as > ULN; without it only pH > 7.5 (grade 3) is graded.",
    },
    "Hypercalcemia": {
        "direction": "H",
        "analyte": "calcium",
        "units": {"SI": "mmol/L", "USCV": "mg/dL"},
        "grades": {
            1: {"text": _CALCIUM_HIGH_TEXT[0], "any": ["> 1 x ULN"]},
            2: {"text": _CALCIUM_HIGH_TEXT[1], "any": ["> 2.9 mmol/L | 11.5 mg/dL"], "clinical": True},
            3: {"text": _CALCIUM_HIGH_TEXT[2], "any": ["> 3.1 mmol/L | 12.5 mg/dL"], "clinical": True},
            4: {"text": _CALCIUM_HIGH_TEXT[3], "any": ["> 3.4 mmol/L | 13.5 mg/dL"], "clinical": True},
        },
        "note": (
            "Corrected (for albumin) serum calcium: the caller corrects. Uses the text's corrected-calcium half. "
            "mg/dL and mmol/L are compared with their own numbers; other units convert within their kind (mg/L -> "
            "mg/dL, mEq/L -> mmol/L), so 8.0 mg/dL, 80 mg/L, 2.0 mmol/L and 4.0 mEq/L grade alike."
        ),
    },
    "Hypercalcemia (Ionized)": {
        "direction": "H",
        "analyte": "calcium",
        "units": {"SI": "mmol/L", "USCV": "mg/dL"},
        "grades": {
            1: {"text": _CALCIUM_HIGH_TEXT[0], "any": ["> 1 x ULN"]},
            2: {"text": _CALCIUM_HIGH_TEXT[1], "any": ["> 1.5 mmol/L"], "clinical": True},
            3: {"text": _CALCIUM_HIGH_TEXT[2], "any": ["> 1.6 mmol/L"], "clinical": True},
            4: {"text": _CALCIUM_HIGH_TEXT[3], "any": ["> 1.8 mmol/L"], "clinical": True},
        },
        "note": "Ionized thresholds exist in mmol/L only; mg/dL is converted with CTCAE's factor 4 (the reference file's COMMENT).",
    },
    "Hyperkalemia": {
        "direction": "H",
        "analyte": "potassium",
        "units": {"SI": "mmol/L", "USCV": "mmol/L"},
        "grades": {
            1: {"text": ">ULN - 5.5 mmol/L", "any": ["> 1 x ULN"]},
            2: {"text": ">5.5 - 6.0 mmol/L; intervention initiated", "any": ["> 5.5 mmol/L"], "clinical": True},
            3: {"text": ">6.0 - 7.0 mmol/L; hospitalization indicated", "any": ["> 6.0 mmol/L"], "clinical": True},
            4: {"text": ">7.0 mmol/L; life-threatening consequences", "any": ["> 7.0 mmol/L"], "clinical": True},
        },
    },
    "Hypermagnesemia": {
        "direction": "H",
        "analyte": "magnesium",
        "units": {"SI": "mmol/L", "USCV": "mg/dL"},
        "grades": {
            1: {"text": ">ULN - 3.0 mg/dL; >ULN - 1.23 mmol/L", "any": ["> 1 x ULN"]},
            2: {"text": "-"},
            3: {"text": ">3.0 - 8.0 mg/dL; >1.23 - 3.30 mmol/L", "any": ["> 1.23 mmol/L | 3.0 mg/dL"]},
            4: {
                "text": ">8.0 mg/dL; >3.30 mmol/L; life-threatening consequences",
                "any": ["> 3.30 mmol/L | 8.0 mg/dL"],
                "clinical": True,
            },
        },
    },
    "Hypernatremia": {
        "direction": "H",
        "analyte": "sodium",
        "units": {"SI": "mmol/L", "USCV": "mmol/L"},
        "grades": {
            1: {"text": ">ULN - 150 mmol/L", "any": ["> 1 x ULN"]},
            2: {"text": ">150 - 155 mmol/L; intervention initiated", "any": ["> 150 mmol/L"], "clinical": True},
            3: {"text": ">155 - 160 mmol/L; hospitalization indicated", "any": ["> 155 mmol/L"], "clinical": True},
            4: {"text": ">160 mmol/L; life-threatening consequences", "any": ["> 160 mmol/L"], "clinical": True},
        },
    },
    "Hypertriglyceridemia": {
        "direction": "H",
        "analyte": "triglycerides",
        "units": {"SI": "mmol/L", "USCV": "mg/dL"},
        "grades": {
            1: {"text": "150 mg/dL - 300 mg/dL; 1.71 mmol/L - 3.42 mmol/L", "any": [">= 1.71 mmol/L | 150 mg/dL"]},
            2: {"text": ">300 mg/dL - 500 mg/dL;  >3.42 mmol/L - 5.7 mmol/L", "any": ["> 3.42 mmol/L | 300 mg/dL"]},
            3: {"text": ">500 mg/dL - 1000 mg/dL;  >5.7 mmol/L - 11.4 mmol/L", "any": ["> 5.7 mmol/L | 500 mg/dL"]},
            4: {
                "text": ">1000 mg/dL; >11.4 mmol/L;  life-threatening consequences",
                "any": ["> 11.4 mmol/L | 1000 mg/dL"],
                "clinical": True,
            },
        },
        "note": "Fixed thresholds, no ULN; grade 1 includes 150 mg/dL itself (no '>' in the text).",
    },
    "Hyperuricemia": {
        "direction": "H",
        "analyte": "uric acid",
        "units": {"SI": "umol/L", "USCV": "mg/dL"},
        "grades": {
            1: {"text": ">ULN without physiologic consequences", "any": ["> 1 x ULN"], "clinical": True},
            2: {"text": "-"},
            3: {
                "text": ">ULN with physiologic consequences",
                "assuming": ["> 1 x ULN"],
                "assumption": "with physiologic consequences",
                "clinical": True,
            },
            4: {"text": "Life-threatening consequences", "clinical": True},
        },
        "note": "Reference COMMENT: worst case, assume physiologic consequences: anything > ULN is grade 3 (lab_only).",
    },
    "Hypoalbuminemia": {
        "direction": "L",
        "analyte": "albumin",
        "units": {"SI": "g/L", "USCV": "g/dL"},
        "grades": {
            1: {"text": "<LLN - 3 g/dL; <LLN - 30 g/L", "any": ["< 1 x LLN"]},
            2: {"text": "<3 - 2 g/dL; <30 - 20 g/L", "any": ["< 30 g/L | 3 g/dL"]},
            3: {"text": "<2 g/dL; <20 g/L", "any": ["< 20 g/L | 2 g/dL"]},
            4: {"text": "Life-threatening consequences; urgent intervention indicated", "clinical": True},
        },
        "note": "Lab grades stop at 3; all lab_only because grade 4 is clinical.",
    },
    "Hypocalcemia": {
        "direction": "L",
        "analyte": "calcium",
        "units": {"SI": "mmol/L", "USCV": "mg/dL"},
        "grades": {
            1: {"text": _CALCIUM_LOW_TEXT[0], "any": ["< 1 x LLN"]},
            2: {"text": _CALCIUM_LOW_TEXT[1], "any": ["< 2.0 mmol/L | 8.0 mg/dL"], "clinical": True},
            3: {"text": _CALCIUM_LOW_TEXT[2], "any": ["< 1.75 mmol/L | 7.0 mg/dL"], "clinical": True},
            4: {"text": _CALCIUM_LOW_TEXT[3], "any": ["< 1.5 mmol/L | 6.0 mg/dL"], "clinical": True},
        },
        "note": (
            "Corrected (for albumin) serum calcium: the caller corrects. Uses the text's corrected-calcium half. "
            "mg/dL and mmol/L are compared with their own numbers; other units convert within their kind (mg/L -> "
            "mg/dL, mEq/L -> mmol/L), so 8.0 mg/dL, 80 mg/L, 2.0 mmol/L and 4.0 mEq/L grade alike."
        ),
    },
    "Hypocalcemia (Ionized)": {
        "direction": "L",
        "analyte": "calcium",
        "units": {"SI": "mmol/L", "USCV": "mg/dL"},
        "grades": {
            1: {"text": _CALCIUM_LOW_TEXT[0], "any": ["< 1 x LLN"]},
            2: {"text": _CALCIUM_LOW_TEXT[1], "any": ["< 1.0 mmol/L"], "clinical": True},
            3: {"text": _CALCIUM_LOW_TEXT[2], "any": ["< 0.9 mmol/L"], "clinical": True},
            4: {"text": _CALCIUM_LOW_TEXT[3], "any": ["< 0.8 mmol/L"], "clinical": True},
        },
        "note": "Ionized thresholds exist in mmol/L only; mg/dL is converted with CTCAE's factor 4 (the reference file's COMMENT).",
    },
    "Hypoglycemia": {
        "direction": "L",
        "analyte": "glucose",
        "units": {"SI": "mmol/L", "USCV": "mg/dL"},
        "grades": {
            1: {"text": "<LLN - 55 mg/dL; <LLN - 3.0 mmol/L", "any": ["< 1 x LLN"]},
            2: {"text": "<55 - 40 mg/dL; <3.0 - 2.2 mmol/L", "any": ["< 3.0 mmol/L | 55 mg/dL"]},
            3: {"text": "<40 - 30 mg/dL; <2.2 - 1.7 mmol/L", "any": ["< 2.2 mmol/L | 40 mg/dL"]},
            4: {
                "text": "<30 mg/dL; <1.7 mmol/L; life-threatening consequences; seizures",
                "any": ["< 1.7 mmol/L | 30 mg/dL"],
                "clinical": True,
            },
        },
    },
    "Hypokalemia": {
        "direction": "L",
        "analyte": "potassium",
        "units": {"SI": "mmol/L", "USCV": "mmol/L"},
        "grades": {
            1: {"text": "<LLN - 3.0 mmol/L", "any": ["< 1 x LLN"]},
            2: {
                "text": "Symptomatic with <LLN - 3.0 mmol/L; intervention indicated",
                "assuming": ["< 1 x LLN"],
                "assumption": "symptomatic",
                "clinical": True,
            },
            3: {"text": "<3.0 - 2.5 mmol/L; hospitalization indicated", "any": ["< 3.0 mmol/L"], "clinical": True},
            4: {"text": "<2.5 mmol/L; life-threatening consequences", "any": ["< 2.5 mmol/L"], "clinical": True},
        },
        "note": "Reference COMMENT: worst case, assume symptomatic: < LLN is grade 2 (lab_only); grade 1 is never returned.",
    },
    "Hypomagnesemia": {
        "direction": "L",
        "analyte": "magnesium",
        "units": {"SI": "mmol/L", "USCV": "mg/dL"},
        "grades": {
            1: {"text": "<LLN - 1.2 mg/dL; <LLN - 0.5 mmol/L", "any": ["< 1 x LLN"]},
            2: {"text": "<1.2 - 0.9 mg/dL; <0.5 - 0.4 mmol/L", "any": ["< 0.5 mmol/L | 1.2 mg/dL"]},
            3: {"text": "<0.9 - 0.7 mg/dL; <0.4 - 0.3 mmol/L", "any": ["< 0.4 mmol/L | 0.9 mg/dL"]},
            4: {
                "text": "<0.7 mg/dL; <0.3 mmol/L; life-threatening consequences",
                "any": ["< 0.3 mmol/L | 0.7 mg/dL"],
                "clinical": True,
            },
        },
    },
    "Hyponatremia": {
        "direction": "L",
        "analyte": "sodium",
        "units": {"SI": "mmol/L", "USCV": "mmol/L"},
        "grades": {
            1: {"text": "<LLN - 130 mmol/L", "any": ["< 1 x LLN"]},
            2: {
                "text": "125-129 mmol/L and asymptomatic",
                "assuming": ["< 130 mmol/L"],
                "assumption": "asymptomatic",
                "clinical": True,
            },
            3: {
                "text": "125-129 mmol/L symptomatic; 120-124 mmol/L regardless of symptoms",
                "any": ["< 125 mmol/L"],
                "assuming": ["< 130 mmol/L"],
                "assumption": "symptomatic",
                "clinical": True,
            },
            4: {"text": "<120 mmol/L; life-threatening consequences", "any": ["< 120 mmol/L"], "clinical": True},
        },
        "note": (
            "Reference COMMENT: worst case, assume symptomatic: < 130 is grade 3 (lab_only); grade 2 is never "
            "returned. The integer bands 125-129 / 120-124 are read as [125, 130) / [120, 125) so 129.5 is graded."
        ),
    },
}
