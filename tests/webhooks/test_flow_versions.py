"""A live call keeps the flow version it started on; new calls get the new file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from callflow.clock import ManualClock
from callflow.service import Callflow
from callflow.store import Store
from tests.conftest import ADVISER, FLOWS, Caller, enrol, make_settings
from webhooks import create_app


def test_live_call_keeps_its_version(tmp_path: Path, store: Store, clock: ManualClock) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    flow_file = flows / "vstrs_inbound.yaml"
    shutil.copy(FLOWS / "vstrs_inbound.yaml", flow_file)
    service = Callflow(make_settings(flows_dir=flows), store=store, clock=clock)
    enrol(service)
    client = create_app({"CALLFLOW_SERVICE": service}).test_client()

    old = Caller(client)
    old.start()
    old.press(ADVISER)
    old_version = service.store.get_session(old.call_sid).flow_version  # type: ignore[union-attr]

    text = flow_file.read_text()
    flow_file.write_text(
        text.replace("Welcome to the H M R C", "Hello from the H M R C").replace(
            "Sorry, we could not verify those details.", "Those details did not match."
        )
    )
    stat = flow_file.stat()
    os.utime(flow_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    clock.advance(2)

    new = Caller(client)
    new.start()
    assert new.says()[0].startswith("Hello from the H M R C")
    new_version = service.store.get_session(new.call_sid).flow_version  # type: ignore[union-attr]
    assert new_version != old_version

    old.press("135792")
    assert old.says()[0] == "Sorry, we could not verify those details."

    # Another worker that has only ever seen the new file still serves the old call.
    other = Callflow(make_settings(flows_dir=flows), store=store, clock=clock)
    other_client = create_app({"CALLFLOW_SERVICE": other}).test_client()
    old.client = other_client
    old.press(ADVISER)
    old.press("135792")
    assert old.says()[0] == "Sorry, we could not verify those details."
    assert other.library.version(old_version).version == old_version


def test_a_broken_edit_keeps_the_last_good_version(
    tmp_path: Path, store: Store, clock: ManualClock
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    flow_file = flows / "vstrs_inbound.yaml"
    shutil.copy(FLOWS / "vstrs_inbound.yaml", flow_file)
    service = Callflow(make_settings(flows_dir=flows), store=store, clock=clock)
    good = service.library.live("vstrs_inbound").version
    flow_file.write_text(flow_file.read_text().replace("to: ask_adviser", "to: nowhere"))
    clock.advance(2)
    client = create_app({"CALLFLOW_SERVICE": service}).test_client()
    caller = Caller(client)
    caller.start()
    assert caller.says()[0].startswith("Welcome")
    assert service.store.get_session(caller.call_sid).flow_version == good  # type: ignore[union-attr]
    assert any("nowhere" in p.message for p in service.library.problems[str(flow_file)])
