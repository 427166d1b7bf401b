"""The cabin's configuration: embedded defaults, a TOML file, the environment, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from cabin.config import ConfigError, load


def test_embedded_defaults_deliver_to_a_directory_sink(tmp_path: Path) -> None:
    config = load(environ={"CABIN_DATA_DIR": str(tmp_path)})
    assert config.data_dir == tmp_path
    assert config.outbox_path == tmp_path / "outbox.db"
    assert config.hospital().id == "demo"
    assert config.hospital().base_url == (tmp_path / "fhir-sink").as_uri()
    assert config.cabin.id == "demo-cabin"


def test_a_toml_file_configures_cabin_and_hospitals(tmp_path: Path) -> None:
    path = tmp_path / "cabin.toml"
    path.write_text(
        """
[cabin]
id = "dkc-01"
name = "Cabin 1, Đảo Kim Cương"
data_dir = "DATA"

[[hospital]]
id = "bv-thu-duc"
base_url = "https://fhir.example.vn/fhir"
[hospital.identifiers]
cccd = "https://fhir.example.vn/sid/cccd"
[hospital.smart]
token_url = "https://auth.example.vn/token"
client_id = "cabin-dkc-01"
key_path = "keys/es384.pem"
scopes = ["system/Observation.write"]
""".replace("DATA", str(tmp_path / "data")),
        encoding="utf-8",
    )
    config = load(path, environ={})
    hospital = config.hospital("bv-thu-duc")
    assert config.cabin.name == "Cabin 1, Đảo Kim Cương"
    assert hospital.identifiers.cccd == "https://fhir.example.vn/sid/cccd"
    assert hospital.identifiers.bhyt.startswith("urn:oid:")  # default kept
    assert hospital.smart is not None
    assert hospital.smart.key_path == tmp_path / "data" / "keys" / "es384.pem"
    assert hospital.smart.scopes == ("system/Observation.write",)
    assert config.with_fhir_url("http://127.0.0.1:9/fhir").hospital().base_url.endswith(":9/fhir")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[cabin\nid=1", "Expected ']'"),
        ('[[hospital]]\nid = "a"\n', "missing base_url"),
        ('[[hospital]]\nid="a"\nbase_url="x"\n[[hospital]]\nid="a"\nbase_url="y"\n', "unique"),
        ('cabin = "not a table"\n', "must be a table"),
        ('[cabin]\nsigning_algorithm = "HS256"\n', "ES384 or RS384"),
    ],
)
def test_bad_configuration_names_the_file_and_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "cabin.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as caught:
        load(path, environ={"CABIN_DATA_DIR": str(tmp_path)})
    assert str(path) in str(caught.value)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "nope.toml", environ={})
