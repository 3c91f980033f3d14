"""Differential tests: every row of the table (differential_cases.py) through the official CLI
v2.10.0 and ours, against one recording stand-in of the API per row.

A row MATCHES when both CLIs agree on exit code, error code, requests sent, stdout shape and
the local state they leave (see differential_runner.py for what is normalised, and why). A
`deliberate` row asserts OUR documented behaviour instead, and that the official CLI really
behaves otherwise (a stale "deliberate" fails too). A `missing` row is skipped with its issue,
after checking that the official CLI knows the command and ours still does not.

The rows run in a thread pool once per session (each CLI costs 0.1-0.3 s a call; a faucet
poll 1 s), then one test per row reads its result, so a failure names its row.
"""

from __future__ import annotations

import fnmatch
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.interop.differential_cases import CASES
from tests.interop.differential_cases_surface import HELP_PATHS, ISSUES, OURS_ONLY_PATHS
from tests.interop.differential_runner import Observed, Outcome, run_case
from tests.interop.differential_table import REASONS, Case, Expect

BY_ID = {case.id: case for case in CASES}
WORKERS = 6


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, reference_path: str) -> dict[str, Outcome]:
    """Every selected row's outcome, run in parallel (rows only read their own entry)."""
    wanted = [item.callspec.params["case"] for item in request.session.items
              if getattr(item, "callspec", None) and "case" in item.callspec.params
              and item.module is request.module]
    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(zip((c.id for c in wanted), pool.map(run_case, wanted)))


def _aspects(obs: Observed, *, keys: bool) -> dict[str, Any]:
    out = {"exit": obs.exit, "error": obs.error, "stdout": obs.stdout, "requests": obs.requests,
           "state": obs.state}
    if keys:
        out["keys"] = obs.keys
    return out


def _sends_match(want: tuple[str, ...], got: list[str]) -> bool:
    """Multiset match of "METHOD /path" patterns (fnmatch) against what was sent."""
    left = list(got)
    for pattern in want:
        hit = next((g for g in left if fnmatch.fnmatchcase(g, pattern)), None)
        if hit is None:
            return False
        left.remove(hit)
    return not left


def _check_want(who: str, want: Expect, obs: Observed) -> list[str]:
    problems = []
    for field in ("exit", "error", "stdout"):
        expected = getattr(want, field)
        if expected is not None and getattr(obs, field) != expected:
            problems.append(f"{who}: {field} is {getattr(obs, field)!r}, want {expected!r}")
    if want.sends is not None and not _sends_match(want.sends, obs.sends):
        problems.append(f"{who}: sent {obs.sends}, want {list(want.sends)}")
    return problems


def _report(case: Case, outcome: Outcome, problems: list[str]) -> str:
    detail = json.dumps({"official": outcome.official.summary(), "ours": outcome.ours.summary()},
                        indent=1, default=str)
    return f"{case.id}: " + "; ".join(problems) + f"\n{case.note}\n{detail}"


def _is_unknown_command(obs: Observed) -> bool:
    text = obs.raw_stderr + obs.raw_stdout
    return obs.exit == 1 and ("Unknown command" in text or "Unknown subcommand" in text)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_row(case: Case, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[case.id]
    official, ours = outcome.official, outcome.ours
    if case.missing:
        assert not _is_unknown_command(official), _report(case, outcome, ["the official CLI lacks it too: fix the row"])
        assert _is_unknown_command(ours) and ours.error == "BAD_USAGE", _report(
            case, outcome, ["ours has it now: make this a matching row"])
        pytest.skip(f"missing in our CLI: {case.missing} ({ISSUES[case.missing]})")
    problems: list[str] = []
    if case.deliberate:
        assert case.want is not None, "a deliberate row states our behaviour"
        problems += _check_want("ours", case.want, ours)
        if _aspects(official, keys=not case.help) == _aspects(ours, keys=not case.help):
            problems.append(f"not deliberate any more: both behave the same ({REASONS[case.deliberate]})")
    else:
        mine, theirs = _aspects(ours, keys=not case.help), _aspects(official, keys=not case.help)
        problems += [f"{k}: official {theirs[k]!r} != ours {mine[k]!r}" for k in mine if mine[k] != theirs[k]]
        if case.want is not None:
            problems += _check_want("official", case.want, official) + _check_want("ours", case.want, ours)
    assert not problems, _report(case, outcome, problems)


def test_table_covers_the_surface() -> None:
    """The table is big enough, its ids are unique, and it reaches every command we have."""
    from tests._devtools import load_script

    ids = [c.id for c in CASES]
    assert len(CASES) >= 150, len(CASES)
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    assert all(c.missing in ISSUES for c in CASES if c.missing)
    assert all(c.deliberate in REASONS for c in CASES if c.deliberate)
    ours = {" ".join(node.path[1:]) for node in load_script("gen_docs").tree()}
    helped = {" ".join(c.argv[:-1]) for c in CASES if c.argv and c.argv[-1] in ("--help", "-h")}
    assert ours <= set(HELP_PATHS) | set(OURS_ONLY_PATHS), ours - set(HELP_PATHS) - set(OURS_ONLY_PATHS)
    assert set(HELP_PATHS) <= helped
    for path in HELP_PATHS:  # both spellings on every command the official CLI shares
        assert {(*path.split(), "--help"), (*path.split(), "-h")} <= {c.argv for c in CASES}, path


def test_summary(capsys: pytest.CaptureFixture[str]) -> None:
    """Counts by kind (printed with -s / in the report): what matches, what differs on purpose
    and why, what is missing by issue."""
    kinds = Counter("missing" if c.missing else "deliberate" if c.deliberate else "match" for c in CASES)
    lines = [f"differential table: {len(CASES)} rows: {kinds['match']} match, "
             f"{kinds['deliberate']} deliberate, {kinds['missing']} missing"]
    for reason, n in Counter(c.deliberate for c in CASES if c.deliberate).most_common():
        lines.append(f"  deliberate {n:3d}  {reason}: {REASONS[reason]}")
    for issue, n in Counter(c.missing for c in CASES if c.missing).most_common():
        lines.append(f"  missing    {n:3d}  {issue}: {ISSUES[issue]}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert kinds["match"] + kinds["deliberate"] + kinds["missing"] == len(CASES) >= 150
