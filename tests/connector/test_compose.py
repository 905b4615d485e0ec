"""``compose/``: the compose file checked against the real CLI and node config (Docker cannot
run here), and ``bpc devnet`` running the same topology as local processes on the local
PostgreSQL and Mosquitto, with the value chain played through it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from rich.console import Console

from connector.valuechain.compose import ComposeError, read_compose
from tests.conftest import postgres_url, require_service
from tests.connector.test_cli import bpc

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose" / "docker-compose.yml"
ROLES = ["mine", "cellmaker", "oem", "fleet", "recycler"]


def test_every_node_service_runs_a_real_command_on_a_config_that_loads() -> None:
    nodes = read_compose(COMPOSE)
    assert [n.service for n in nodes] == ROLES
    document = yaml.safe_load(COMPOSE.read_text())
    services = document["services"]
    caddyfile = (ROOT / "compose" / "Caddyfile").read_text()
    aliases = services["caddy"]["networks"]["default"]["aliases"]
    for node in nodes:
        url = urlsplit(node.config.public_base_url)
        # did:web needs https off loopback: the proxy terminates TLS for the node's host and
        # forwards to the port the node listens on
        assert url.scheme == "https" and url.hostname == f"{node.service}.bpc.test"
        assert node.config.did_web == f"did:web:{node.service}.bpc.test"
        assert url.hostname in aliases
        route = re.search(rf"{re.escape(url.hostname)} {{\s*reverse_proxy (\S+)", caddyfile)
        assert route and route.group(1) == f"{node.service}:{node.config.port}"
        assert node.config.host == "0.0.0.0"
        # the store is the compose PostgreSQL, one schema per node
        assert node.config.store.startswith("postgresql://bpc:")
        assert node.config.store.endswith(f"@postgres:5432/bpc?schema={node.service}")
        assert "postgres" in services[node.service]["depends_on"]
        cert = node.environment["SSL_CERT_FILE"]
        assert any(cert.startswith(v.split(":")[1]) for v in services[node.service]["volumes"])
    oem = next(n for n in nodes if n.service == "oem")
    hub = oem.config.plugins["hub"]
    assert hub["source"] == "mqtt" and hub["mqtt"]["host"] in services
    mosquitto = (ROOT / "compose" / "mosquitto.conf").read_text()
    queued = re.search(r"^max_queued_messages (\d+)", mosquitto, re.M)
    assert queued and int(queued.group(1)) >= 100_000  # the broker's 1000 drops hub messages
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["bpc", "serve", "--config", "/config/node.toml"]' in dockerfile
    assert all(services[n.service]["build"]["dockerfile"] == "Dockerfile" for n in nodes)


def _broken(tmp_path: Path, edit: str, replacement: str) -> Path:
    copy = tmp_path / "compose"
    shutil.copytree(ROOT / "compose", copy)
    path = copy / "docker-compose.yml"
    text = path.read_text()
    assert edit in text
    path.write_text(text.replace(edit, replacement, 1))
    return path


@pytest.mark.parametrize(("edit", "replacement", "named"), [
    ('"serve", "--config", "/config/node.toml"]', '"serve", "--konfig", "/config/node.toml"]',
     "--konfig"),
    ('command: ["bpc", "serve"', 'command: ["bpc", "serv"', "serv"),
    ("./nodes/mine.toml:/config/node.toml:ro", "./nodes/nope.toml:/config/node.toml:ro",
     "does not exist"),
    ("./nodes/mine.toml:/config/node.toml:ro", "./nodes/mine.toml:/elsewhere.toml:ro",
     "no bind mount"),
    ("BPC_STORE: postgresql://bpc:${POSTGRES_PASSWORD}@postgres:5432/bpc?schema=mine",
     "BPC_PORT: '99999'", "BPC_PORT"),
])
def test_a_compose_file_the_nodes_would_not_run_is_refused_naming_the_service(
        tmp_path: Path, edit: str, replacement: str, named: str) -> None:
    with pytest.raises(ComposeError, match="service mine") as refused:
        read_compose(_broken(tmp_path, edit, replacement))
    assert named in str(refused.value)


def test_a_config_with_an_unknown_setting_is_refused(tmp_path: Path) -> None:
    path = _broken(tmp_path, "x-node: &node", "x-node: &node")
    config = path.parent / "nodes" / "fleet.toml"
    config.write_text(config.read_text() + "\nwatch_intervall_s = 2\n")
    with pytest.raises(ComposeError, match=r"service fleet.*watch_intervall_s"):
        read_compose(path)


def test_devnet_refuses_bad_input_without_a_traceback(tmp_path: Path) -> None:
    missing = bpc("devnet", "--compose", str(tmp_path / "none.yml"), "--dir", str(tmp_path))
    assert missing.returncode == 2 and "Traceback" not in missing.stdout + missing.stderr
    badmqtt = bpc("devnet", "--compose", str(COMPOSE), "--mqtt", "nohostport",
                  "--dir", str(tmp_path))
    assert badmqtt.returncode == 2 and "host:port" in badmqtt.stdout


@pytest.mark.slow
async def test_devnet_plays_the_value_chain_on_postgres_and_mosquitto(tmp_path: Path) -> None:
    from connector.valuechain.devnet import play_devnet

    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Mosquitto", "127.0.0.1", 1883)
    console = Console(file=(tmp_path / "out.txt").open("w"), width=200)
    outcome, nodes, schemas = await play_devnet(console, COMPOSE, tmp_path / "devnet",
                                                postgres=postgres_url(),
                                                mqtt=("127.0.0.1", 1883))
    assert sorted(nodes) == sorted(ROLES)
    for handle in nodes.values():  # each node ran on its own PostgreSQL schema
        text = handle.config_path.read_text()
        assert re.search(rf'store = "postgresql://.*schema=devnet_[0-9a-f]+_{handle.name}"',
                         text)
    assert 'source = "mqtt"' in nodes["oem"].config_path.read_text()
    assert outcome.thermal_proven and outcome.tamper_locked and outcome.tamper_cleared
    assert outcome.hub_events > 0
    assert outcome.chain_types[-3:] == ["ShipmentCredential", "CustodyTransferCredential",
                                        "RecyclingOutcomeCredential"]
    assert outcome.custodian == nodes["recycler"].did
    assert outcome.dismantling_steps == 5 and outcome.agreement_id
    assert set(outcome.recycled_content) >= {"Co", "Li", "Ni"}
    # the schemas are dropped afterwards
    import asyncpg

    conn = await asyncpg.connect(postgres_url())
    try:
        left = await conn.fetch("SELECT schema_name FROM information_schema.schemata "
                                "WHERE schema_name = ANY($1::text[])", schemas)
    finally:
        await conn.close()
    assert left == []
