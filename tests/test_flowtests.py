"""Flow tests as data: every flow's YAML tests pass, and broken flows fail readably."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from callflow.cli.main import main
from callflow.errors import FlowTestError
from callflow.flowspec import flow_files
from callflow.flowtests import load_tests, run_path
from tests.conftest import SANDBOX

FLOWS = Path(__file__).resolve().parent.parent / "flows"


@pytest.fixture
def flows_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    shutil.copytree(FLOWS, folder)
    return folder


def test_every_flow_has_tests_and_they_pass() -> None:
    results, problems = run_path(FLOWS, sandbox=SANDBOX)
    assert problems == []
    assert {r.tests.flow for r in results} == {
        "vstrs_inbound",
        "specialist_handoff",
        "officer_check",
        "meeting_call",
        "meeting_start",
        "vstrs_callback",
    }
    for result in results:
        assert result.passed, result.report()
        assert result.coverage.percent() >= 80, result.report()


def test_test_files_are_not_flows() -> None:
    assert all(not p.name.endswith(".test.yaml") for p in flow_files(FLOWS))


def test_a_broken_prompt_fails_with_a_diff(flows_copy: Path) -> None:
    flow = flows_copy / "officer_check.yaml"
    flow.write_text(flow.read_text().replace("belongs to {officer_name}", "is {officer_name}"))
    results, problems = run_path(flow, sandbox=SANDBOX)
    assert problems == []
    (result,) = results
    assert not result.passed
    failed = [r for r in result.results if not r.passed]
    assert [r.test.name for r in failed] == [
        "an active officer is confirmed by name",
        "several checks on one call, then the limit for the calling number",
    ]
    report = result.report()
    assert "FAIL  an active officer is confirmed by name  (line 9)" in report
    assert 'expected to hear "Identity number 4 4 7 1 2 0 3 belongs to Alex Morgan"' in report
    assert '-hear "Identity number 4 4 7 1 2 0 3 belongs to Alex Morgan"' in report
    assert '+hear "Identity number 4 4 7 1 2 0 3 is Alex Morgan' in report


def test_a_broken_route_fails_on_where_the_call_ends(flows_copy: Path) -> None:
    flow = flows_copy / "meeting_call.yaml"
    text = flow.read_text()
    # Pressing 1 and 9 swapped where times are offered: picking the first time asks for a
    # call back instead, a wrong route (still a valid flow).
    broken = (
        text.replace("        - to: rearrange\n          if: pressed_9", "        - to: @9")
        .replace("        - to: booking\n", "        - to: rearrange\n          if: pressed_1\n"
                 "        - to: booking\n")
        .replace("@9", "booking\n          if: pressed_9")
    )
    assert broken != text
    flow.write_text(broken)
    (result,), _ = run_path(flow, sandbox=SANDBOX)
    failed = {r.test.name: r for r in result.results if not r.passed}
    first = failed["times are offered, picked and booked in Welsh"]
    assert any("it ended in rearrange" in f for f in first.failures), first.failures
    assert any("the meeting must be confirmed; it is rearrange" in f for f in first.failures)
    assert '+hear "Diolch. Byddwn yn eich ffonio\'n ôl i gytuno ar amser. Hwyl fawr."' in (
        "\n".join(first.diff)
    )


def test_an_audit_expectation_is_checked(flows_copy: Path) -> None:
    tests = flows_copy / "officer_check.test.yaml"
    tests.write_text(tests.read_text().replace("officer.check: unknown", "officer.check: found"))
    (result,), _ = run_path(flows_copy / "officer_check.yaml", sandbox=SANDBOX)
    (failed,) = [r for r in result.results if not r.passed]
    assert any("expected audit officer.check: found" in f for f in failed.failures)


def test_coverage_names_what_no_test_reaches(flows_copy: Path) -> None:
    tests = flows_copy / "officer_check.test.yaml"
    text = tests.read_text()
    tests.write_text(text[: text.index("  - name: an unknown number")])
    (result,), _ = run_path(flows_copy / "officer_check.yaml", sandbox=SANDBOX)
    assert result.passed
    figures = result.coverage.figures()
    assert figures["states"] < figures["states_total"]
    assert "not_confirmed" in figures["missed_states"]
    assert any(
        t.startswith("looking_up --officer_not_confirmed--> not_confirmed")
        for t in figures["missed_transitions"]
    )
    assert "not entered: state not_confirmed" in result.report()


def test_problems_in_a_test_file_have_lines(tmp_path: Path) -> None:
    bad = tmp_path / "x.test.yaml"
    bad.write_text(
        "flow: officer_check\n"
        "tests:\n"
        "  - name: one\n"
        "    steps:\n"
        "      - prss: '1#'\n"
        "      - press: 'abc'\n"
        "    colour: blue\n"
    )
    with pytest.raises(FlowTestError) as caught:
        load_tests(bad)
    text = str(caught.value)
    assert f"{bad}:5: unknown step 'prss'" in text
    assert f"{bad}:6: press: keys 0-9" in text
    assert f"{bad}:7: unknown key 'colour' in a test" in text


def test_a_flow_without_tests_is_a_problem(flows_copy: Path) -> None:
    (flows_copy / "officer_check.test.yaml").unlink()
    _, problems = run_path(flows_copy, sandbox=SANDBOX)
    assert [p.message for p in problems] == ["no tests: write officer_check.test.yaml"]


def test_the_cli_exit_code_follows_the_tests(
    flows_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["test", str(flows_copy / "officer_check.yaml")]) == 0
    assert "coverage: states 10/10 (100%), transitions 14/14 (100%)" in capsys.readouterr().out
    assert main(["test", str(flows_copy / "specialist_handoff.yaml"), "--min-coverage", "95"]) == 1
    assert "below --min-coverage 95%" in capsys.readouterr().out
    flow = flows_copy / "officer_check.yaml"
    flow.write_text(flow.read_text().replace("Thank you for calling. Goodbye.", "Bye."))
    assert main(["test", str(flow)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and '+hear "Bye."' in out


def test_a_redirect_loop_is_refused_before_its_tests_run(tmp_path: Path) -> None:
    (tmp_path / "loop.yaml").write_text(
        "flow: loop\n"
        "initial: again\n"
        "states:\n"
        "  again:\n"
        "    twiml:\n"
        "      - redirect: round\n"
        "    events:\n"
        "      round: again\n"
    )
    (tmp_path / "loop.test.yaml").write_text(
        "flow: loop\ntests:\n  - name: goes round\n    steps:\n      - hear: anything\n"
    )
    results, problems = run_path(tmp_path / "loop.yaml", sandbox=SANDBOX)
    assert results == []
    (problem,) = problems
    assert problem.line == 4 and "loop for ever without waiting" in problem.message
