"""Loading flows: every kind of problem is reported with its file and line, all at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from callflow.errors import FlowValidationError
from callflow.flowspec import lint_paths, load_flow, parse_flow
from tests.conftest import SANDBOX
from tests.rigs import GOOD


def problems(source: str) -> list[tuple[int, str]]:
    with pytest.raises(FlowValidationError) as info:
        parse_flow(source, "f.yaml")
    return [(p.line, p.message) for p in info.value.problems]


def one_problem(source: str, needle: str) -> int:
    found = [(line, msg) for line, msg in problems(source) if needle in msg]
    assert found, problems(source)
    return found[0][0]


def test_the_good_flow_loads_with_a_version() -> None:
    flow = parse_flow(GOOD, "f.yaml")
    assert flow.name == "tiny" and len(flow.version) == 12
    assert parse_flow(GOOD + "\n", "f.yaml").version != flow.version


def test_yaml_syntax_error_has_its_line() -> None:
    line = one_problem(GOOD.replace('    - say: "Thanks."', '    - say: "Thanks.'), "YAML syntax")
    assert line >= 15


def test_unknown_key() -> None:
    assert (
        one_problem(GOOD.replace("  ask:\n", "  ask:\n    colour: red\n"), "unknown key 'colour'")
        == 5
    )


def test_unknown_verb_option() -> None:
    source = GOOD.replace("num_digits: 4", "num_digits: 4\n          beep: yes")
    assert one_problem(source, "unknown key 'beep' in gather") == 9


def test_unknown_target_state() -> None:
    assert (
        one_problem(GOOD.replace("digits: done", "digits: nowhere"), "unknown state 'nowhere'")
        == 12
    )


def test_unreachable_state() -> None:
    source = GOOD + "  orphan:\n    twiml:\n      - hangup\n"
    assert one_problem(source, "'orphan' cannot be reached") == 18


def test_unknown_guard_and_action() -> None:
    source = GOOD.replace(
        "digits: done",
        "digits:\n          to: done\n          if: moon_is_full\n          actions: [dance]",
    )
    found = problems(source)
    assert any("unknown guard 'moon_is_full'" in m and line == 13 for line, m in found)
    assert any("unknown action 'dance'" in m and line == 13 for line, m in found)


def test_state_with_no_way_out() -> None:
    source = GOOD.replace('      - say: "Thanks."\n      - hangup\n', '      - say: "Thanks."\n')
    assert one_problem(source, "'done' has no way out") == 14


def test_gather_without_timeout_handler() -> None:
    source = GOOD.replace("      timeout: ask\n", "")
    assert one_problem(source, "no handler for 'timeout'") == 4


def test_prompt_with_unknown_value() -> None:
    source = GOOD.replace('"Thanks."', '"Thanks, {favourite_food}."')
    assert one_problem(source, "unknown value {favourite_food}") == 16


def test_duplicate_key() -> None:
    source = GOOD.replace("      timeout: ask\n", "      timeout: ask\n      digits: ask\n")
    assert one_problem(source, "duplicate key 'digits'") == 14


def test_every_problem_is_reported_at_once() -> None:
    source = (
        GOOD.replace("digits: done", "digits: nowhere")
        .replace("  ask:\n", "  ask:\n    colour: red\n")
        .replace('"Thanks."', '"{nope}"')
    )
    messages = [m for _, m in problems(source)]
    assert any("unknown state" in m for m in messages)
    assert any("unknown key 'colour'" in m for m in messages)
    assert any("unknown value {nope}" in m for m in messages)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (("num_digits: 4", "num_digits: 0"), "num_digits must be a whole number"),
        (("input: dtmf", "input: telepathy"), "must be dtmf, speech"),
        (('- say: "Thanks."', '- sing: "Thanks."'), "unknown verb 'sing'"),
        (("initial: ask", "initial: nowhere"), "initial state 'nowhere' is not defined"),
        (
            ("      - hangup\n", "      - hangup\n    events:\n      next: ask\n"),
            "cannot use `next`",
        ),
        (("timeout: ask", "timeout: ask\n      verified: done"), "nothing in it raises"),
        (("digits: done", "digits:\n          - done\n          - ask"), "never used"),
    ],
)
def test_other_problems(change: tuple[str, str], needle: str) -> None:
    old, new = change
    assert old in GOOD
    one_problem(GOOD.replace(old, new, 1), needle)


def test_verb_after_a_waiting_verb() -> None:
    source = GOOD.replace(
        '      - say: "Thanks."\n      - hangup\n', '      - hangup\n      - say: "Bye"\n'
    )
    one_problem(source, "hangup must be the last verb")


def test_action_that_raises_is_only_for_enter() -> None:
    source = GOOD.replace(
        "digits: done", "digits:\n          to: done\n          actions: [check_pin]"
    )
    one_problem(source, "belongs in a state's `enter`")


def test_raised_events_must_be_handled() -> None:
    source = GOOD.replace("  done:\n", "  done:\n    enter: [check_pin]\n")
    messages = [m for _, m in problems(source)]
    assert any("no handler for 'pin_accepted'" in m for m in messages)
    assert any("no handler for 'locked'" in m for m in messages)


def test_the_shipped_flows_are_clean() -> None:
    root = Path(__file__).resolve().parent.parent / "flows"
    assert lint_paths([root]) == []
    assert load_flow(root / "vstrs_inbound.yaml").name == "vstrs_inbound"


def test_lint_reports_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("digits: done", "digits: nowhere"))
    (tmp_path / "good.yaml").write_text(GOOD.replace("flow: tiny", "flow: other"))
    found = lint_paths([tmp_path])
    assert [str(p) for p in found] == [
        f"{bad}:12: transition to unknown state 'nowhere'",
        f"{bad}:14: state 'done' cannot be reached from 'ask'",
    ]


def test_tries_reset_on_entry_never_run_out() -> None:
    source = textwrap.dedent(
        """\
        flow: loop
        initial: ask
        states:
          ask:
            enter: [reset_tries]
            twiml:
              - gather: {input: dtmf, num_digits: 1, timeout: 5}
            events:
              digits: done
              timeout:
                - to: ask
                  if: tries_left
                  actions: [count_try]
                - to: done
          done:
            twiml: [hangup]
        """
    )
    assert one_problem(source, "resets the tries on entry (reset_tries)") == 11


def test_every_guard_and_action_is_documented_for_designers() -> None:
    from callflow.actions import builtin_registry

    doc = (Path(__file__).resolve().parent.parent / "docs" / "flows.md").read_text()
    registry = builtin_registry()
    missing = [
        name
        for name in [*registry.actions, *registry.guards]
        if f"`{name}`" not in doc and not name.startswith("pressed_")
    ]
    assert missing == []


def test_the_tutorial_in_the_docs_lints_and_passes(tmp_path: Path) -> None:
    import re

    from callflow.flowtests import run_path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "flows.md").read_text()
    tutorial = doc[doc.index("## Tutorial") :]
    flow, tests = re.findall(r"```yaml\n(.*?)```", tutorial, re.S)[:2]
    (tmp_path / "opening_hours.yaml").write_text(textwrap.dedent(flow))
    (tmp_path / "opening_hours.test.yaml").write_text(textwrap.dedent(tests))
    (result,), problems = run_path(tmp_path / "opening_hours.yaml", sandbox=SANDBOX)
    assert problems == [] and result.passed, result.report()
    assert result.coverage.summary() in tutorial
