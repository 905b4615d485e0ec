"""Node plugins on real nodes (loopback): hooks, routes, CLI commands, observers, refusals.

Plugins come both ways a node gets them: objects passed to ``create_app(plugins=...)`` and
real ``bpc.plugins`` entry points, declared by a throw-away ``*.dist-info`` on a temporary
``sys.path`` entry (``importlib.metadata`` finds it like an installed distribution; nothing
is installed into the environment). The plugin modules are in ``plugin_fixtures/``.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import typer
from typer.testing import CliRunner

from connector.app import STORE, create_app
from connector.config import ConfigError, load_config
from connector.management.auth import OPERATOR_AUTH
from connector.passports import append_to_passport
from connector.plugins import (
    PLUGINS,
    PluginError,
    add_plugin_commands,
    hookimpl,
    notify_passport_appended,
)
from connector.samples import manufacturing_credential
from connector.serve import running_node
from connector.store import BatteryRecord
from credentials.data_integrity import JCS
from credentials.did_key import key_from_seed
from credentials.passport.issuing import issue_passport_credential
from tests.connector.plugin_fixtures import recorder as recorder_module
from tests.connector.plugin_fixtures.recorder import Recorder, Settings
from tests.connector.test_node import PASSPHRASE_ENV, bearer, node_config, passphrase  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
FIXTURES = "tests.connector.plugin_fixtures"
MAKER = key_from_seed(bytes(range(32)))
BATTERY = "did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH"
#: Entry points of the throw-away distribution: one per way a plugin can be (un)usable.
ENTRY_POINTS = {
    "recorder": f"{FIXTURES}.recorder:plugin",
    "broken": f"{FIXTURES}.broken",
    "noplugin": f"{FIXTURES}.no_plugin",
    "misnamed": f"{FIXTURES}.misnamed:plugin",
}


def fake_distribution(where: Path, entry_points: dict[str, str]) -> Path:
    """A minimal installed distribution declaring ``entry_points`` in ``bpc.plugins``."""
    info = where / "bpc_test_plugins-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: bpc-test-plugins\nVersion: 1.0\n", "utf-8")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[bpc.plugins]\n{lines}", "utf-8")
    return where


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The test plugins installed as entry points, for this test only."""
    where = fake_distribution(tmp_path / "site", ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(where))
    recorder_module.plugin.log.clear()
    yield where
    recorder_module.plugin.log.clear()


def enabled(**settings: Any) -> dict[str, Any]:
    return {"enabled": True, **settings}


# --- lifecycle, routes, observers ------------------------------------------------------------


async def test_plugins_start_after_the_resources_and_stop_in_reverse_with_their_settings(
    tmp_path: Path,
) -> None:
    log: list[tuple[str, str, Any]] = []
    first, second = Recorder("first", log), Recorder("second", log)
    # The tables' order is the start order (not the order the plugins were passed in).
    config = node_config(tmp_path / "data", plugins={
        "second": enabled(greeting="hej"), "first": enabled(greeting="hi", limit=7)})
    app = create_app(config, plugins={"first": first, "second": second})
    assert app[PLUGINS].names == ("second", "first")
    async with running_node(config, app) as node:
        assert node.app[PLUGINS].config("first") == Settings(greeting="hi", limit=7)
        assert [(name, hook) for name, hook, _ in log] == [
            ("second", "add_routes"), ("first", "add_routes"),
            ("second", "start"), ("first", "start")]
    assert [(name, hook) for name, hook, _ in log[2:]] == [
        ("second", "start"), ("first", "start"), ("first", "stop"), ("second", "stop")]
    # Started once, with the validated model, the store readable; stopped with it still open.
    assert first.calls("start") == [(Settings(greeting="hi", limit=7), 0)]
    assert second.calls("start") == [(Settings(greeting="hej", limit=3), 0)]
    assert first.calls("stop") == ["sqlite"]


async def test_a_plugin_route_is_served_by_the_node(tmp_path: Path) -> None:
    config = node_config(tmp_path / "data", plugins={"recorder": enabled(greeting="moin")})
    app = create_app(config, plugins={"recorder": Recorder()})
    async with running_node(config, app) as node, aiohttp.ClientSession() as http:
        async with http.get(node.url + "/recorder/hello") as response:
            assert response.status == 200
            assert await response.json() == {"plugin": "recorder", "greeting": "moin",
                                             "limit": 3}
        async with http.get(node.url + "/health") as response:  # the node's own, untouched
            assert response.status == 200


async def test_passport_observers_see_each_append_and_cannot_fail_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[tuple[str, str, Any]] = []
    faulty = Recorder("faulty", log, fail_observer=True)
    watcher = Recorder("watcher", log)
    config = node_config(tmp_path / "data", plugins={
        "faulty": enabled(greeting="x"), "watcher": enabled(greeting="y")})
    app = create_app(config, plugins={"faulty": faulty, "watcher": watcher})

    def manufactured(previous: str | None) -> dict[str, Any]:
        return issue_passport_credential(manufacturing_credential(
            BATTERY, MAKER.controller, rng=random.Random(1), previous=previous), MAKER,
            suite=JCS)

    async with running_node(config, app) as node, aiohttp.ClientSession() as http:
        async with node.app[STORE].transaction() as tx:
            await tx.put_battery(BatteryRecord(did=BATTERY, key_id="key-1"))
        # The node's append path: stored and committed, then the observers.
        record = await append_to_passport(node.app, BATTERY, manufactured)
        credential = record.credential

        # The failing observer was logged, the next one still ran, each got its own copy.
        assert faulty.calls("appended") == [(BATTERY, {**credential, "tampered": True})]
        assert watcher.calls("appended") == [(BATTERY, {**credential, "tampered": True})]
        assert "tampered" not in credential
        failures = [r for r in caplog.records if r.name == "connector.plugins.manager"]
        assert [r.getMessage() for r in failures] == [
            f"plugin 'faulty': passport observer failed for {BATTERY} (the credential stays"
            " appended)"]
        assert failures[0].exc_info is not None
        # The append stands, as the management API shows.
        key = node.app[OPERATOR_AUTH].take_generated_key()
        async with http.get(f"{node.url}/management/batteries/{BATTERY}/credentials",
                            headers=bearer(key)) as response:
            body = await response.json()
            assert response.status == 200, body
    assert record.digest in json.dumps(body)


async def test_an_app_without_plugins_ignores_notifications(tmp_path: Path) -> None:
    config = node_config(tmp_path / "data")
    app = create_app(config)
    assert app[PLUGINS].names == ()
    await notify_passport_appended(app, BATTERY, {"type": ["VerifiableCredential"]})


# --- entry points ------------------------------------------------------------------------------


async def test_an_installed_plugin_is_found_through_its_entry_point(
    tmp_path: Path, installed: Path,
) -> None:
    config = node_config(tmp_path / "data", plugins={"recorder": enabled(greeting="ep")})
    async with running_node(config) as node, aiohttp.ClientSession() as http:
        assert node.app[PLUGINS].get("recorder").plugin is recorder_module.plugin
        assert "entry point" in node.app[PLUGINS].get("recorder").source
        async with http.get(node.url + "/recorder/hello") as response:
            assert (await response.json())["greeting"] == "ep"
    assert [hook for _, hook, _ in recorder_module.plugin.log] == ["add_routes", "start", "stop"]


def test_disabled_plugins_are_not_imported(tmp_path: Path, installed: Path) -> None:
    # "broken" would fail to import; disabled (or without enabled), it is never imported.
    config = node_config(tmp_path / "data", plugins={
        "broken": {"enabled": False}, "noplugin": {"some": "setting"}})
    app = create_app(config)
    assert app[PLUGINS].names == ()
    assert f"{FIXTURES}.broken" not in sys.modules
    assert f"{FIXTURES}.no_plugin" not in sys.modules


# --- refusals: the node does not start, the message names the plugin -------------------------


@pytest.mark.parametrize(("name", "message"), [
    ("broken", "plugin 'broken': cannot import 'tests.connector.plugin_fixtures.broken'"
               " (entry point 'tests.connector.plugin_fixtures.broken' of bpc-test-plugins 1.0):"
               " ModuleNotFoundError: No module named 'bpc_dependency_that_is_not_installed'"),
    ("noplugin", "plugin 'noplugin': module 'tests.connector.plugin_fixtures.no_plugin' has no"
                 " 'plugin' object"),
    ("misnamed", "plugin 'misnamed': bpc_node_strat is not a bpc hook (known hooks:"
                 " bpc_access_restriction, bpc_add_cli, bpc_add_routes, bpc_collect_metrics,"
                 " bpc_node_start"),
])
def test_a_plugin_that_cannot_load_stops_the_node(
    tmp_path: Path, installed: Path, name: str, message: str,
) -> None:
    config = node_config(tmp_path / "data", plugins={name: enabled()})
    with pytest.raises(PluginError) as caught:
        create_app(config)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(("settings", "message"), [
    ({}, "plugin 'recorder': invalid settings: plugins.recorder.greeting: Field required"),
    ({"greeting": "hi", "limit": 0},
     "plugin 'recorder': invalid settings: plugins.recorder.limit: Input should be greater"
     " than or equal to 1"),
    ({"greeting": "hi", "colour": "red"},
     "plugin 'recorder': invalid settings: plugins.recorder.colour: Extra inputs are not"
     " permitted"),
    ({"enabled": "yes", "greeting": "hi"},
     "plugin 'recorder': plugins.recorder.enabled must be true or false, not 'yes'"),
])
def test_invalid_plugin_settings_name_the_plugin_and_the_field(
    tmp_path: Path, settings: dict[str, Any], message: str,
) -> None:
    config = node_config(tmp_path / "data", plugins={"recorder": {"enabled": True, **settings}})
    with pytest.raises(PluginError) as caught:
        create_app(config, plugins={"recorder": Recorder()})
    assert str(caught.value) == message


def test_an_unknown_plugin_name_lists_the_installed_ones(
    tmp_path: Path, installed: Path,
) -> None:
    config = node_config(tmp_path / "data", plugins={
        "recoder": enabled(), "hubb": {"enabled": False}})
    with pytest.raises(PluginError) as caught:
        create_app(config, plugins={"extra": Recorder()})
    assert str(caught.value) == (
        "plugin 'recoder', 'hubb': not installed (configured in [plugins]); installed plugins:"
        " 'broken', 'extra', 'hub', 'misnamed', 'noplugin', 'recorder'")


async def test_a_plugin_that_fails_to_start_stops_the_node_and_the_others(
    tmp_path: Path,
) -> None:
    log: list[tuple[str, str, Any]] = []
    config = node_config(tmp_path / "data", plugins={
        "good": enabled(greeting="a"), "bad": enabled(greeting="b")})
    app = create_app(config, plugins={"good": Recorder("good", log),
                                      "bad": Recorder("bad", log, fail_start=True)})
    with pytest.raises(PluginError) as caught:
        async with running_node(config, app):
            pytest.fail("the node started")
    assert str(caught.value) == (
        "plugin 'bad': failed to start: RuntimeError: the broker is unreachable")
    # The plugin started before it was stopped again; the failed one is not "stopped".
    assert [(name, hook) for name, hook, _ in log if hook in ("start", "stop")] == [
        ("good", "start"), ("bad", "start"), ("good", "stop")]


def test_a_plugin_object_without_hooks_is_refused(tmp_path: Path) -> None:
    config = node_config(tmp_path / "data", plugins={"empty": enabled()})
    with pytest.raises(PluginError, match="plugin 'empty': implements no bpc hook"):
        create_app(config, plugins={"empty": object()})


def test_a_hook_with_an_argument_the_spec_lacks_is_refused(tmp_path: Path) -> None:
    class Wrong:
        @hookimpl
        def bpc_node_stop(self, app: Any, config: Any) -> None:  # stop gets no config
            pass

    config = node_config(tmp_path / "data", plugins={"wrong": enabled()})
    with pytest.raises(PluginError) as caught:
        create_app(config, plugins={"wrong": Wrong()})
    assert str(caught.value) == (
        "plugin 'wrong': hookimpl definition: bpc_node_stop(app: 'Any', config: 'Any') -> 'None';"
        " Argument(s) {'config'} are declared in the hookimpl but can not be found in the"
        " hookspec (passed to create_app)")


def test_bpc_serve_reports_a_plugin_error_and_exits_non_zero(tmp_path: Path) -> None:
    (tmp_path / "node.toml").write_text(
        'identity = "did:key"\ndata_dir = "data"\n'
        '[plugins.thermal]\nenabled = true\nthreshold_c = 60\n', "utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "connector", "serve", "--config", str(tmp_path / "node.toml")],
        capture_output=True, text=True, timeout=60, cwd=REPO,
        env={**os.environ, PASSPHRASE_ENV: "x", "BPC_KEYSTORE_PASSPHRASE": "correct horse"})
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("error: plugin 'thermal': not installed"), run.stderr
    assert "Traceback" not in run.stderr


# --- settings ----------------------------------------------------------------------------------


def test_plugin_tables_come_from_toml_and_from_bpc_plugins(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text('[plugins.hub]\nenabled = true\nbroker = "mqtt://127.0.0.1"\n'
                    '[plugins.other]\nenabled = false\n', "utf-8")
    assert load_config(path, environ={}).plugins == {
        "hub": {"enabled": True, "broker": "mqtt://127.0.0.1"}, "other": {"enabled": False}}
    from_env = load_config(None, environ={"BPC_PLUGINS": '{"hub": {"enabled": true}}'})
    assert from_env.plugins == {"hub": {"enabled": True}}
    assert load_config(None, environ={}).plugins == {}
    with pytest.raises(ConfigError, match=r"plugins \(from environment variable BPC_PLUGINS\):"
                                          " expected a JSON object"):
        load_config(None, environ={"BPC_PLUGINS": "hub"})
    path.write_text("[plugins]\nhub = true\n", "utf-8")
    with pytest.raises(ConfigError, match=r"plugins\.hub"):
        load_config(path, environ={})


# --- the bpc command ---------------------------------------------------------------------------


def test_a_plugin_adds_a_cli_command() -> None:
    cli = typer.Typer(no_args_is_help=True)

    @cli.command("serve")
    def serve() -> None:
        """The built-in one."""

    @cli.command("other")
    def other() -> None:
        """Another built-in, so typer keeps a group."""

    class Hijacker:
        @hookimpl
        def bpc_add_cli(self, cli: typer.Typer) -> None:
            cli.command("serve")(lambda: print("pwned"))
            cli.command("innocent")(lambda: None)

    added = add_plugin_commands(cli, available={"recorder": Recorder(), "hijack": Hijacker()},
                                group="bpc.plugins.none")
    assert added == ["recorder-hello"]
    runner = CliRunner()
    helptext = runner.invoke(cli, ["--help"], env={"COLUMNS": "200"})
    assert "recorder-hello" in helptext.output
    assert "innocent" not in helptext.output  # all of a clashing plugin's commands go
    run = runner.invoke(cli, ["recorder-hello", "--who", "tester"])
    assert run.exit_code == 0, run.output
    assert run.output == "hello tester from recorder\n"
    assert runner.invoke(cli, ["serve"]).output == ""  # still the built-in


def test_bpc_offers_installed_plugins_commands_and_survives_broken_ones(
    tmp_path: Path,
) -> None:
    site = fake_distribution(tmp_path / "site", ENTRY_POINTS)
    env = {**os.environ, "COLUMNS": "200",
           "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}

    def bpc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "connector", *args], capture_output=True,
                              text=True, timeout=60, env=env, cwd=tmp_path)

    helptext = bpc("--help")
    assert helptext.returncode == 0, helptext.stderr
    assert "recorder-hello" in helptext.stdout
    assert "warning: plugin 'broken': cannot import" in helptext.stderr
    assert "warning: plugin 'noplugin': module" in helptext.stderr
    run = bpc("recorder-hello")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "hello world from recorder\n"
