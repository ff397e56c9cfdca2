"""Fuzzing in the suite: specs generated from the grammar and mutations of specs/, the examples of
docs/language.md and tests/hostile/, each run through the CLI in a forked child with CPU, memory and
time limits (tests/fuzzing.py). Hypothesis draws the mutations (derandomised: the same cases every
run, and a failure shrinks to a small one). The long run is scripts/fuzz.py.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import fuzzing

CORPUS = fuzzing.seeds()


@pytest.fixture(scope="module", autouse=True)
def warm():
    fuzzing.warm()


@settings(max_examples=200, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(rng=st.randoms(use_true_random=False))
def test_no_input_breaks_the_promise(rng):
    case = fuzzing.make_case(rng, CORPUS)
    found, result = fuzzing.run_case(case)
    assert found is None, (case.command, case.data.decode("utf-8", errors="replace"), result.stderr)


def test_the_seed_corpus_covers_specs_docs_and_hostile_files():
    names = [name for name, _ in CORPUS]
    assert sum(n.startswith("language.md#") for n in names) >= 20
    assert "cliquenet.arch" in names and "deep_bodies.arch" in names
