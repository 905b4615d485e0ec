"""The node's settings: one TOML file, ``BPC_<SETTING>`` environment overrides, safe defaults.

Every setting has a default that runs a node on one machine (``bpc serve`` with no file at
all), and every URL the node publishes derives from the one ``public_base_url``, so a node
moved to another address needs one change, not five. Whatever goes wrong while reading the
settings is a ``ConfigError`` whose message names the setting and where its value came from
(file or environment variable), never a pydantic traceback.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from credentials.did_web import did_web_from_url, is_loopback_host
from credentials.errors import InvalidDID

ENV_PREFIX = "BPC_"
MIB = 1024 * 1024
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8181"
DEFAULT_DATA_DIR = Path("bpc-data")
#: An operator key set by hand must not be guessable; generated keys are far longer.
MIN_OPERATOR_KEY_CHARS = 16
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

IdentityMethod = Literal["did:web", "did:key"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class ConfigError(ValueError):
    """The settings cannot be used as given; the message says which one and why."""


class NodeConfig(BaseModel):
    """Validated, immutable node settings.

    ``host``, ``port`` and ``store`` default to values derived from ``public_base_url`` and
    ``data_dir`` (see ``_derive_defaults``); set them explicitly only when the node sits behind
    a proxy or uses another database.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    public_base_url: str = Field(
        default=DEFAULT_PUBLIC_BASE_URL,
        description="Where other parties reach this node; its did:web derives from it.",
    )
    host: str = Field(
        default="127.0.0.1",
        description="Interface to listen on [default: the URL's host if loopback, else 0.0.0.0]",
    )
    port: int = Field(
        default=8181, ge=0, le=65535, description="Port to listen on [default: the URL's port]"
    )
    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR, description="Keys, operator key hash, database."
    )
    store: str = Field(
        default="", description="Database URL [default: sqlite:///<data_dir>/node.db]"
    )
    identity: IdentityMethod = Field(
        default="did:web", description="did:web (from public_base_url) or did:key (local setups)."
    )
    keystore_passphrase_env: str = Field(
        default="BPC_KEYSTORE_PASSPHRASE",
        description="Name of the environment variable holding the keystore passphrase.",
    )
    operator_api_key: SecretStr | None = Field(
        default=None, description="Management API key; generated at first start when not set."
    )
    max_body_bytes: int = Field(default=MIB, ge=1024, description="Largest request body accepted.")
    access_token_lifetime_s: int = Field(
        default=300, gt=0, description="Data-plane access token lifetime."
    )
    shutdown_timeout_s: float = Field(
        default=30.0, ge=0, description="How long in-flight requests get to finish at shutdown."
    )
    outbox_lease_s: float = Field(
        default=30.0, gt=0,
        description="How long a protocol message being sent is reserved for one replica.")
    outbox_poll_interval_s: float = Field(
        default=5.0, gt=0, description="How often the outbox looks for messages left by others.")
    outbox_max_attempts: int = Field(
        default=8, ge=1, description="Sends of a protocol message before its process ends.")
    outbox_backoff_base_s: float = Field(
        default=0.5, gt=0, description="First retry delay (doubles, with jitter).")
    outbox_backoff_cap_s: float = Field(
        default=30.0, gt=0, description="Longest retry delay.")
    process_timeout_s: float = Field(
        default=86400.0, gt=0,
        description="A negotiation or transfer request without progress this long ends.")
    watch_interval_s: float = Field(
        default=60.0, gt=0,
        description="How often stale processes and ended agreements are looked for.")
    trusted_issuers: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Issuers the node trusts, per credential type ({type = [issuer DIDs]}, "
                    "'*' for every type); added to its trust registry at every start.")
    trust_authorities: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Authorities whose signed trust lists the node imports ({authority DID = "
                    "[credential types their lists may name]}); set at every start.")
    deletion_receipt_grace_s: float = Field(
        default=86400.0, ge=0,
        description="How long after a consumer's delete duty falls due its deletion receipt "
                    "may take before the agreement is listed as overdue.")
    status_max_age_s: float = Field(
        default=300.0, ge=0,
        description="How long a fetched status list (revocation, suspension) of another issuer "
                    "is trusted before it is fetched again.")
    status_unavailable: Literal["fail", "warn"] = Field(
        default="fail",
        description="A credential whose status list cannot be fetched fails verification "
                    "('fail', the default) or passes with a warning ('warn').")
    presentation_cache_s: float = Field(
        default=300.0, ge=0,
        description="How long a consumer's verified presentation (DCP) is reused for the same "
                    "credential types before its credential service is asked again; status is "
                    "re-checked on every reuse. 0 asks every time.")
    tck_triggers: bool = Field(
        default=False,
        description="TEST ONLY: the DSP compatibility kit's trigger endpoints (/tck/...), seed "
                    "datasets/agreements and scripted reactions (connector/interop/TCK.md). "
                    "Never on a node that serves real partners.")
    tck_authorization: SecretStr | None = Field(
        default=None,
        description="TEST ONLY, with tck_triggers: the literal Authorization header the "
                    "compatibility kit sends (its dataspacetck.dsp.connector.http.headers."
                    "authorization). A protocol request carrying exactly it is taken as from "
                    "tck_participant_did, without a signed token.")
    tck_participant_did: str = Field(
        default="did:web:localhost%3A8083",
        pattern=r"^did:[a-z0-9]+:.+$",
        description="TEST ONLY: the participant the kit's static Authorization stands for "
                    "(the kit's own DSP endpoint is its callbackAddress, localhost:8083 by "
                    "default).")
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Plugin settings, one [plugins.<name>] table each (connector.plugins); a "
                    "plugin runs only when its table says enabled = true, and the tables' "
                    "order is the plugins' start order. BPC_PLUGINS takes them as JSON.")
    log_level: LogLevel = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines for people ('text') or one JSON object per line for log "
                    "collectors ('json': time, level, logger, message and any extra fields).")
    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, GET /metrics needs 'Authorization: Bearer <metrics_token>'; "
                    "unset, it is open like /health (serve it on an internal network). A "
                    "scrape-only secret, never the operator key: Prometheus configs are copied "
                    "around, and the operator key can issue credentials in the node's name.")

    @field_validator("public_base_url", mode="before")
    @classmethod
    def _normalise_url(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value  # the str type check reports it
        return normalise_base_url(value)

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        # Absolute once, here: a node that later changes directory (or a store opening
        # ``node.db``) must not end up somewhere else than the operator meant.
        return Path(os.path.abspath(value.expanduser()))

    @field_validator("keystore_passphrase_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    @field_validator("operator_api_key")
    @classmethod
    def _strong_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < MIN_OPERATOR_KEY_CHARS:
            raise ValueError(
                f"must be at least {MIN_OPERATOR_KEY_CHARS} characters (or leave it unset and"
                " the node generates one)"
            )
        return value

    @field_validator("metrics_token")
    @classmethod
    def _strong_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < MIN_OPERATOR_KEY_CHARS:
            raise ValueError(f"must be at least {MIN_OPERATOR_KEY_CHARS} characters")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("trusted_issuers", "trust_authorities", mode="before")
    @classmethod
    def _trust_seeds(cls, value: Any, info: Any) -> Any:
        # The rules (DID syntax, no generic types; JSON text from BPC_* variables) live with
        # the registry they protect.
        from connector.trust_registry import check_trust_seeds

        return check_trust_seeds(info.field_name, value)

    @field_validator("plugins", mode="before")
    @classmethod
    def _plugin_tables(cls, value: Any) -> Any:
        # A BPC_PLUGINS variable holds JSON; what each table means is the plugin's to check.
        if isinstance(value, str):
            import json

            try:
                return json.loads(value)
            except ValueError:
                raise ValueError('expected a JSON object such as {"hub": {"enabled": true}}'
                                 ) from None
        return value

    @model_validator(mode="after")
    def _tck_identity_only_for_tests(self) -> NodeConfig:
        if self.tck_authorization is not None and not self.tck_triggers:
            raise ValueError("tck_authorization is a test-only identity stub: it needs "
                             "tck_triggers = true")
        return self

    @model_validator(mode="after")
    def _derive_defaults(self) -> NodeConfig:
        parts = urlsplit(self.public_base_url)
        hostname = parts.hostname or ""
        derived: dict[str, Any] = {}
        if "host" not in self.model_fields_set:
            # A loopback URL means a node for this machine only; anything else is meant to be
            # reached from elsewhere (directly or through a proxy), so listen everywhere.
            derived["host"] = hostname if is_loopback_host(hostname) else "0.0.0.0"
        if "port" not in self.model_fields_set:
            derived["port"] = parts.port or _DEFAULT_PORTS[parts.scheme]
        if "store" not in self.model_fields_set:
            derived["store"] = f"sqlite:///{self.data_dir / 'node.db'}"
        for name, value in derived.items():
            # The model is frozen for everyone else; filling in defaults is part of building it.
            object.__setattr__(self, name, value)
        if self.identity == "did:web" and parts.scheme == "http" and not is_loopback_host(hostname):
            raise ValueError(
                f"identity did:web needs an https public_base_url ({self.public_base_url} is"
                " plain http): anyone on the path could swap the node's keys. Plain http is"
                " allowed only for loopback hosts; otherwise use https or identity = \"did:key\""
            )
        return self

    @property
    def did_web(self) -> str:
        """The did:web this node's ``public_base_url`` stands for."""
        return did_web_from_url(self.public_base_url)

    @property
    def is_local(self) -> bool:
        """Served over plain http, which validation allows only for local setups."""
        return urlsplit(self.public_base_url).scheme == "http"


def normalise_base_url(value: str) -> str:
    """``public_base_url`` checked and in one canonical spelling (no trailing slash).

    Refuses what would make the derived did:web or the published URLs ambiguous: user info,
    queries, fragments, other schemes.
    """
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
    if not parts.hostname:
        raise ValueError(f"{value!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{value!r} must not carry a user name or password")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValueError(f"{value!r} must not have a query or fragment")
    host = parts.hostname  # urlsplit lower-cases it
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    path = parts.path.rstrip("/")
    url = f"{parts.scheme.lower()}://{netloc}{path}"
    try:
        did_web_from_url(url)
    except InvalidDID as exc:
        raise ValueError(str(exc)) from None
    return url


def load_config(
    path: Path | None = None, *, environ: Mapping[str, str] | None = None
) -> NodeConfig:
    """Settings from ``path`` (TOML, optional), then ``BPC_<SETTING>`` variables, then defaults.

    Environment variables win over the file so one file can serve several deployments; empty
    variables count as unset. A relative ``data_dir`` in the file is relative to the file,
    so the node finds its keys whichever directory it is started from.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if path is not None:
        for name, value in _read_toml(path).items():
            if name not in NodeConfig.model_fields:
                raise ConfigError(f"{path}: unknown setting {name!r}{_did_you_mean(name)}")
            if name == "data_dir" and isinstance(value, str) and not Path(value).is_absolute():
                value = str(path.parent / Path(value).expanduser())
            values[name] = value
            sources[name] = str(path)
    for name in NodeConfig.model_fields:
        variable = ENV_PREFIX + name.upper()
        if environ.get(variable):
            values[name] = environ[variable]
            sources[name] = f"environment variable {variable}"
    try:
        return NodeConfig.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, sources)) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def _did_you_mean(name: str) -> str:
    close = difflib.get_close_matches(name, list(NodeConfig.model_fields), n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f"; known settings: {', '.join(NodeConfig.model_fields)}"


def _describe(exc: ValidationError, sources: Mapping[str, str]) -> str:
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if not location:  # a check across settings (the model validator)
            lines.append(message)
            continue
        origin = sources.get(str(error["loc"][0]), "default")
        lines.append(f"{location} (from {origin}): {message}")
    return "invalid settings: " + "; ".join(lines)
