"""docker-compose.yml and the Dockerfile stay true to the code (no Docker engine here, so the
files are checked for what would break a user's `docker compose up`)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml
from temporalio.common import SearchAttributeIndexedValueType

from schemas.search_attributes import ALL_KEYS
from settings import Settings

ROOT = Path(__file__).parent.parent.parent


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def test_compose_runs_the_production_like_stack() -> None:
    services = _compose()["services"]
    assert {"postgresql", "temporal", "temporal-ui", "mailpit", "worker", "gateway"} <= set(
        services
    )
    assert services["worker"]["command"] == ["contracting", "worker"]
    assert services["gateway"]["command"] == ["contracting", "gateway"]
    assert services["migrate"]["command"] == ["contracting", "migrate"]


def test_every_contracting_variable_in_compose_is_a_setting() -> None:
    services = _compose()["services"]
    names = {
        name
        for service in services.values()
        for name in (service.get("environment") or {})
        if name.startswith("CONTRACTING_")
    }
    fields = {f"CONTRACTING_{field.upper()}" for field in Settings.model_fields}
    assert names, "the app services set no CONTRACTING_ variable"
    assert names <= fields, f"unknown settings in docker-compose.yml: {names - fields}"


_CLI_TYPES = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
}


def test_compose_registers_the_search_attributes_of_the_code() -> None:
    command = " ".join(_compose()["services"]["temporal-search-attributes"]["command"])
    registered = dict(re.findall(r"(\w+):(KeywordList|Keyword|Datetime)\b", command))
    expected = {key.name: _CLI_TYPES[key.indexed_value_type] for key in ALL_KEYS}
    assert registered == expected


def test_dockerfile_copies_every_package_of_the_project() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    tool = project["tool"]["setuptools"]
    top_level = {name.split(".")[0] for name in tool["packages"]}
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+)", dockerfile, flags=re.MULTILINE))
    copied |= {
        word for line in re.findall(r"^COPY (.+) \./$", dockerfile, re.M) for word in line.split()
    }
    missing = {f"{m}.py" for m in tool["py-modules"]} | top_level
    assert missing <= copied, f"Dockerfile does not copy {missing - copied}"


def test_pyproject_lists_every_package_the_image_installs() -> None:
    """`pip install .` (the Dockerfile) installs only the packages pyproject names: a new
    subpackage (say `starter/gateway/`) left out would be missing from the image."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(tool["packages"])
    top_level = {name.split(".")[0] for name in listed}
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for name in top_level
        for init in (ROOT / name).rglob("__init__.py")
    }
    assert on_disk == listed, f"pyproject.toml packages differ: {on_disk ^ listed}"
