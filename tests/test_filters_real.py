"""The filters on real teachers' outputs: ``../shared/real_outputs/`` (verbatim responses of ~60
models from public repositories, labeled by careful reading; its README says how they are scored
and ``jobs/filter_quality.py`` does it). The set is read from beside the project, never copied
into it; a clone without ``../shared`` skips this test.

Targets (issue 30): per filter precision and recall >= 0.95, good samples accepted >= 0.97, bad
samples rejected >= 0.97. One recall is below it today and is pinned where it stands, so it
cannot slip further unseen (``python -m jobs.filter_quality --set real --errors`` lists the misses).
"""

from __future__ import annotations

import pytest

from jobs.filter_quality import REAL, evaluate, load_real

pytestmark = pytest.mark.skipif(
    not REAL.exists(),
    reason=f"the real-output set is read from {REAL} (../shared beside "
    "the project: CI and the developers' machines have it, a "
    "user's clone does not)",
)

TARGET = 0.95
#: below the target today (measured 2026-12-07): think_answer_mismatch 11/17 (conclusions no rule
#: reads without false rejects); see the closing note of issue 30
BELOW_TARGET = {("think_answer_mismatch", "recall"): 0.64}


@pytest.fixture(scope="module")
def scored():
    return evaluate(load_real())


def test_the_real_set_is_the_one_its_readme_describes(scored):
    assert scored["samples"] >= 350 and scored["good"] >= 200 and scored["bad"] >= 140


def test_good_real_samples_are_kept_and_bad_ones_rejected(scored):
    assert scored["good_accepted"] >= 0.97, [m for m in scored["misses"] if m["kind"] == "false_reject"]
    assert scored["bad_rejected"] >= 0.97


@pytest.mark.parametrize("name", ["format", "wrong_answer", "repetition", "language_mixing", "think_answer_mismatch"])
def test_each_filter_on_the_real_set(scored, name):
    c = scored["filters"][name]
    misses = [m for m in scored["misses"] if m["filter"] == name]
    for measure in ("precision", "recall"):
        floor = BELOW_TARGET.get((name, measure), TARGET)
        assert c[measure] is not None and c[measure] >= floor, (name, measure, c, misses)
