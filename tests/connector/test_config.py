"""Node settings: defaults that run on one machine, TOML, BPC_* overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config import MIB, ConfigError, NodeConfig, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text, "utf-8")
    return path


def test_defaults_work_on_one_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={})
    assert config.public_base_url == "http://127.0.0.1:8181"
    assert (config.host, config.port) == ("127.0.0.1", 8181)
    assert config.data_dir == tmp_path / "bpc-data"
    assert config.store == f"sqlite:///{tmp_path}/bpc-data/node.db"
    assert config.identity == "did:web"
    assert config.did_web == "did:web:127.0.0.1%3A8181"
    assert config.keystore_passphrase_env == "BPC_KEYSTORE_PASSPHRASE"
    assert config.operator_api_key is None
    assert config.max_body_bytes == MIB
    assert config.access_token_lifetime_s == 300
    assert config.log_level == "INFO"
    assert config.is_local


def test_toml_file(tmp_path: Path) -> None:
    path = write(tmp_path, """
public_base_url = "https://oem.example/nodes/a/"
data_dir = "state"
identity = "did:web"
operator_api_key = "0123456789abcdef-long-enough"
max_body_bytes = 2048
access_token_lifetime_s = 60
log_level = "debug"
""")
    config = load_config(path, environ={})
    assert config.public_base_url == "https://oem.example/nodes/a"  # trailing slash dropped
    assert config.did_web == "did:web:oem.example:nodes:a"
    # Not loopback: listen on every interface, on the scheme's port.
    assert (config.host, config.port) == ("0.0.0.0", 443)
    # A relative data_dir in the file is relative to the file, not to the working directory.
    assert config.data_dir == tmp_path / "state"
    assert config.store == f"sqlite:///{tmp_path}/state/node.db"
    assert config.operator_api_key is not None
    assert config.operator_api_key.get_secret_value() == "0123456789abcdef-long-enough"
    assert "0123456789abcdef" not in repr(config)  # secrets stay out of logs
    assert (config.max_body_bytes, config.access_token_lifetime_s) == (2048, 60)
    assert config.log_level == "DEBUG"
    assert not config.is_local


def test_explicit_host_port_and_store_win_over_derived_ones(tmp_path: Path) -> None:
    path = write(tmp_path, """
public_base_url = "https://oem.example"
host = "127.0.0.1"
port = 8443
store = "postgresql://db/bpc"
""")
    config = load_config(path, environ={})
    assert (config.host, config.port, config.store) == ("127.0.0.1", 8443, "postgresql://db/bpc")


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'public_base_url = "http://127.0.0.1:9000"\nport = 9000\n')
    config = load_config(path, environ={
        "BPC_PUBLIC_BASE_URL": "http://localhost:9100",
        "BPC_PORT": "9101",
        "BPC_IDENTITY": "did:key",
        "BPC_MAX_BODY_BYTES": "4096",
        "BPC_DATA_DIR": str(tmp_path / "elsewhere"),
        "BPC_OPERATOR_API_KEY": "an-operator-key-from-the-env",
        "BPC_LOG_LEVEL": "",  # empty counts as unset
        "BPC_KEYSTORE": "/ignored",  # other tools' variables are not settings
    })
    assert config.public_base_url == "http://localhost:9100"
    assert (config.host, config.port) == ("localhost", 9101)
    assert config.identity == "did:key"
    assert config.max_body_bytes == 4096
    assert config.data_dir == tmp_path / "elsewhere"
    assert config.log_level == "INFO"


def test_the_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BPC_PORT", "18181")
    assert load_config().port == 18181


def test_unknown_key_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown setting 'public_base_uri'.*'public_base_url'"):
        load_config(write(tmp_path, 'public_base_uri = "http://127.0.0.1:1"\n'), environ={})
    with pytest.raises(ConfigError, match=r"unknown setting 'node'"):
        load_config(write(tmp_path, '[node]\nport = 1\n'), environ={})


@pytest.mark.parametrize(("url", "reason"), [
    ("ftp://oem.example", "http:// or https://"),
    ("oem.example", "http:// or https://"),
    ("https://", "has no host"),
    ("https://user:pw@oem.example", "user name or password"),
    ("https://oem.example/?a=1", "query or fragment"),
    ("https://oem.example/#frag", "query or fragment"),
    ("https://oem.example:99999", "not a valid URL"),
])
def test_bad_public_base_url(tmp_path: Path, url: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, f'public_base_url = "{url}"\n'), environ={})
    message = str(caught.value)
    assert "public_base_url" in message and str(tmp_path / "node.toml") in message
    assert reason in message


def test_did_web_over_plain_http_only_for_loopback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did:web needs an https public_base_url"):
        load_config(environ={"BPC_PUBLIC_BASE_URL": "http://oem.example"})
    # A did:key node may sit on a LAN over http; a loopback did:web may too.
    assert load_config(environ={"BPC_PUBLIC_BASE_URL": "http://10.0.0.5:8181",
                                "BPC_IDENTITY": "did:key"}).host == "0.0.0.0"
    assert load_config(environ={"BPC_PUBLIC_BASE_URL": "http://[::1]:8181"}).host == "::1"


def test_value_errors_say_where_the_value_came_from(tmp_path: Path) -> None:
    path = write(tmp_path, 'max_body_bytes = 10\nidentity = "did:example"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"BPC_PORT": "eighty"})
    message = str(caught.value)
    assert f"max_body_bytes (from {path})" in message
    assert f"identity (from {path})" in message
    assert "port (from environment variable BPC_PORT)" in message
    assert "Traceback" not in message and "pydantic" not in message.lower()


def test_other_errors_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml", environ={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "port = \n"), environ={})
    with pytest.raises(ConfigError, match="at least 16 characters"):
        load_config(environ={"BPC_OPERATOR_API_KEY": "short"})
    with pytest.raises(ConfigError, match="not an environment variable name"):
        load_config(environ={"BPC_KEYSTORE_PASSPHRASE_ENV": "not a name"})


def test_config_is_immutable() -> None:
    config = NodeConfig()
    with pytest.raises(ValueError, match="frozen"):
        config.port = 1  # type: ignore[misc]


def test_outbox_settings_come_from_the_config_into_the_running_node(tmp_path: Path) -> None:
    from connector.app import create_app
    from connector.dsp.negotiation_service import dsp_state

    config = load_config(environ={"BPC_OUTBOX_LEASE_S": "2.5", "BPC_OUTBOX_MAX_ATTEMPTS": "3",
                                  "BPC_DATA_DIR": str(tmp_path)})
    assert (config.outbox_lease_s, config.outbox_max_attempts) == (2.5, 3)
    settings = dsp_state(create_app(config)).settings
    assert (settings.lease_s, settings.max_attempts) == (2.5, 3)
    assert settings.poll_interval_s == config.outbox_poll_interval_s == 5.0
    with pytest.raises(ConfigError, match="outbox_lease_s"):
        load_config(environ={"BPC_OUTBOX_LEASE_S": "0"})
