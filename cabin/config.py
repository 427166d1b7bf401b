"""The cabin's configuration: one typed object, loaded once from TOML and the environment.

Without a file the cabin runs on embedded defaults - a demo cabin whose data lives in
``./var`` and whose one "hospital" is a directory sink - so ``make demo`` needs nothing.  A
deployment names a TOML file in ``CABIN_CONFIG``::

    [cabin]
    id = "dkc-01"
    name = "Cabin 1, Đảo Kim Cương"
    site = "Trạm công dân số Đảo Kim Cương, P. Bình Trưng"
    data_dir = "/var/lib/telehealth-cabin"

    [[hospital]]
    id = "bv-thu-duc"
    base_url = "https://fhir.bv-thuduc.example/fhir"
    timeout = 30
    [hospital.identifiers]
    cccd = "https://fhir.bv-thuduc.example/sid/cccd"
    bhyt = "https://fhir.bv-thuduc.example/sid/bhyt"
    [hospital.smart]
    token_url = "https://auth.bv-thuduc.example/token"
    client_id = "cabin-dkc-01"
    key_path = "keys/cabin-es384.pem"      # relative paths are under data_dir
    algorithm = "ES384"
    scopes = ["system/Patient.write", "system/Observation.write"]

Environment: ``CABIN_DATA_DIR`` overrides ``data_dir``; ``CABIN_OUTBOX_KEYS`` (base64 keys,
comma-separated, current first) supplies the outbox key instead of the key file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cabin import __version__
from fhir.config import HospitalConfig, IdentifierSystems, SmartSettings
from fhir.keys import Algorithm
from fhir.visit import CabinInfo

OUTBOX_KEYS_ENV = "CABIN_OUTBOX_KEYS"
DEMO_HOSPITAL = "demo"


class ConfigError(ValueError):
    """The configuration file or environment is not usable; the message says where."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CabinConfig:
    """Everything the cabin service needs to know about its installation."""

    cabin: CabinInfo
    data_dir: Path
    hospitals: tuple[HospitalConfig, ...]
    signing_key: Path
    signing_algorithm: Algorithm = "ES384"
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.db"

    @property
    def outbox_key_file(self) -> Path:
        return self.data_dir / "outbox.key"

    def hospital(self, hospital_id: str | None = None) -> HospitalConfig:
        """The named hospital, or the first one."""
        if hospital_id is None:
            return self.hospitals[0]
        for hospital in self.hospitals:
            if hospital.id == hospital_id:
                return hospital
        raise ConfigError(f"no hospital {hospital_id!r} in the configuration")

    def with_fhir_url(self, url: str) -> CabinConfig:
        """The same cabin delivering to ``url`` (replacing the first hospital's base URL)."""
        first = replace(self.hospitals[0], base_url=url)
        return replace(self, hospitals=(first, *self.hospitals[1:]))


def load(path: Path | None = None, *, environ: Mapping[str, str] | None = None) -> CabinConfig:
    """Load the configuration from ``path`` (or ``$CABIN_CONFIG``), else the embedded defaults."""
    env = dict(os.environ if environ is None else environ)
    if path is None and env.get("CABIN_CONFIG"):
        path = Path(env["CABIN_CONFIG"])
    document: dict[str, Any] = {}
    if path is not None:
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    try:
        return _parse(document, env)
    except (KeyError, TypeError, ValueError) as exc:
        where = path or "the embedded defaults"
        raise ConfigError(f"{where}: {exc}") from exc


def _parse(document: Mapping[str, Any], env: Mapping[str, str]) -> CabinConfig:
    section = _table(document, "cabin")
    data_dir = Path(env.get("CABIN_DATA_DIR") or section.get("data_dir") or "var").resolve()
    cabin = CabinInfo(
        id=_text(section, "id", "demo-cabin"),
        name=_text(section, "name", "Demo health cabin"),
        site=_text(section, "site", ""),
        software_version=__version__,
        manufacturer=_text(section, "manufacturer", ""),
    )
    hospitals = tuple(_hospital(h, data_dir) for h in document.get("hospital", ()))
    if not hospitals:
        hospitals = (HospitalConfig(id=DEMO_HOSPITAL, base_url=(data_dir / "fhir-sink").as_uri()),)
    ids = [h.id for h in hospitals]
    if len(set(ids)) != len(ids):
        raise ValueError(f"hospital ids must be unique, got {ids}")
    signing = section.get("signing_key", "keys/cabin-signing.pem")
    return CabinConfig(
        cabin=cabin,
        data_dir=data_dir,
        hospitals=hospitals,
        signing_key=_under(data_dir, signing),
        signing_algorithm=_algorithm(_text(section, "signing_algorithm", "ES384")),
        environ=env,
    )


def _hospital(table: Mapping[str, Any], data_dir: Path) -> HospitalConfig:
    if not isinstance(table, Mapping):
        raise TypeError("each [[hospital]] must be a table")
    identifiers = IdentifierSystems(**_table(table, "identifiers"))
    smart_table = _table(table, "smart")
    smart = None
    if smart_table:
        smart = SmartSettings(
            token_url=_required(smart_table, "token_url"),
            client_id=_required(smart_table, "client_id"),
            key_path=_under(data_dir, _required(smart_table, "key_path")),
            key_id=smart_table.get("key_id"),
            algorithm=_text(smart_table, "algorithm", "ES384"),
        )
        if "scopes" in smart_table:
            smart = replace(smart, scopes=tuple(str(s) for s in smart_table["scopes"]))
    ca_file = table.get("ca_file")
    return HospitalConfig(
        id=_required(table, "id"),
        base_url=_required(table, "base_url"),
        identifiers=identifiers,
        smart=smart,
        verify_tls=bool(table.get("verify_tls", True)),
        ca_file=None if ca_file is None else _under(data_dir, ca_file),
        timeout=float(table.get("timeout", 30.0)),
    )


def _algorithm(name: str) -> Algorithm:
    if name == "ES384":
        return "ES384"
    if name == "RS384":
        return "RS384"
    raise ValueError(f"signing_algorithm must be ES384 or RS384, not {name!r}")


def _table(document: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = document.get(name, {})
    if not isinstance(value, Mapping):
        raise TypeError(f"[{name}] must be a table")
    return dict(value)


def _text(table: Mapping[str, Any], name: str, default: str) -> str:
    value = table.get(name, default)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string")
    return value


def _required(table: Mapping[str, Any], name: str) -> str:
    if name not in table:
        raise KeyError(f"missing {name}")
    return _text(table, name, "")


def _under(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path
