"""The dependency arrows point one way (docs/design.md, "Layout"): entry points → workflows and
activities → domain and schemas; nothing points back up. Every module's imports are read with
`ast` (also those inside functions and `if TYPE_CHECKING:`), so a lazy import counts too."""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent

# Code outside the shipped packages: it may import anything, nothing shipped may import it.
NOT_SHIPPED = frozenset({"tests", "bench"})


def _shipped_top_level() -> frozenset[str]:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return frozenset(name.split(".")[0] for name in tool["packages"]) | frozenset(
        tool["py-modules"]
    )


SHIPPED = _shipped_top_level()
PROJECT = SHIPPED | NOT_SHIPPED


@dataclass(frozen=True)
class Rule:
    """What the modules under `layer` (a dotted prefix) may import, besides the stdlib.

    `project`: the project packages allowed (None: any, minus `never`); `third_party`: the
    other libraries allowed (None: any); `never`: prefixes refused whatever the rest says."""

    layer: str
    why: str
    project: frozenset[str] | None = None
    third_party: frozenset[str] | None = None
    never: frozenset[str] = NOT_SHIPPED


RULES = (
    Rule(
        "domain",
        "pure business rules: no I/O, no Temporal, nothing above it",
        project=frozenset({"domain", "schemas"}),
        # Small pure libraries only; add one here deliberately.
        third_party=frozenset({"stdnum"}),
    ),
    Rule(
        "schemas",
        "the models every layer shares; they run in the workflow sandbox",
        project=frozenset({"schemas"}),
        third_party=frozenset({"pydantic", "temporalio.common"}),
    ),
    Rule(
        "settings",
        "the one configuration object (it checks the codec keys when read: codec.keys)",
        project=frozenset({"settings", "codec.keys"}),
        third_party=frozenset({"pydantic", "pydantic_settings"}),
    ),
    Rule(
        "codec",
        "payload encryption and its codec server: below the processes that use it",
        project=frozenset({"codec", "settings"}),
        third_party=frozenset({"cryptography", "temporalio", "fastapi", "google.protobuf"}),
    ),
    Rule(
        "codec.keys",
        "key parsing, read by the settings: the standard library only",
        project=frozenset({"codec.keys"}),
        third_party=frozenset(),
    ),
    Rule(
        "db",
        "the database layer knows the models and the rules, never who calls it",
        project=frozenset({"db", "schemas", "domain", "settings"}),
    ),
    Rule(
        "activities",
        "activities do the I/O workflows ask for; they never reach back into workflows or "
        "the entry points",
        project=frozenset({"activities", "domain", "schemas", "db", "settings", "codec"}),
    ),
    Rule(
        "workflows",
        "workflows run in Temporal's sandbox: deterministic, no I/O (activities do it)",
        project=frozenset({"workflows", "domain", "schemas"}),
        third_party=frozenset({"temporalio", "pydantic"}),
    ),
    Rule(
        "observability",
        "metrics, traces, logs and probes serve the worker and the gateway; they read the "
        "ledger, never drive workflows or the entry points",
        project=frozenset({"observability", "db", "domain", "schemas", "settings"}),
    ),
    Rule(
        "worker",
        "the worker runs workflows and activities; the starter is another process",
        never=NOT_SHIPPED | {"starter"},
    ),
    Rule("starter", "the entry points drive the rest"),
    Rule(
        "starter.gateway",
        "the production gateway ships without the dev stack and the demo",
        never=NOT_SHIPPED | {"starter.devstack", "starter.demo"},
    ),
    Rule(
        "starter.support",
        "the support commands run in production, without the demo",
        never=NOT_SHIPPED | {"starter.demo"},
    ),
    Rule(
        "starter.ops",
        "the ops commands run in production: no dev stack, no demo, no Temporal client "
        "(they read the ledger)",
        never=NOT_SHIPPED | {"starter.devstack", "starter.demo", "temporalio.client"},
    ),
)


@dataclass(frozen=True)
class Import:
    path: str  # relative to the repository root
    line: int
    module: str  # the importing module
    target: str  # `a.b` for `import a.b`; `a.b` for `from a import b` (b may be a name)
    parent: str  # `a` for `from a import b`, the target itself for `import a.b`

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.target}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute name of `from .name import …` inside `module`."""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _files() -> Iterator[Path]:
    for name in sorted(SHIPPED):
        if (ROOT / f"{name}.py").is_file():
            yield ROOT / f"{name}.py"
        else:
            yield from sorted((ROOT / name).rglob("*.py"))


def _imports(path: Path) -> Iterator[Import]:
    module = _module_name(path)
    relative = str(path.relative_to(ROOT))
    for node in ast.walk(ast.parse(path.read_text(), filename=relative)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(relative, node.lineno, module, alias.name, alias.name)
        elif isinstance(node, ast.ImportFrom):
            parent = (
                _resolve(module, path.name == "__init__.py", node.level, node.module)
                if node.level
                else (node.module or "")
            )
            if parent == "__future__":
                continue
            for alias in node.names:
                target = parent if alias.name == "*" else f"{parent}.{alias.name}"
                yield Import(relative, node.lineno, module, target, parent)


ALL_IMPORTS = tuple(imp for path in _files() for imp in _imports(path))


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _matches(imp: Import, prefixes: frozenset[str]) -> bool:
    """`from a import b` is allowed by `a` (b is one of its names) or by `a.b` (a submodule)."""
    return any(_under(imp.parent, p) or _under(imp.target, p) for p in prefixes)


def _violation(rule: Rule, imp: Import) -> str | None:
    top = imp.parent.split(".")[0]
    if top in sys.stdlib_module_names:
        return None
    if _matches(imp, rule.never):
        return f"{imp} — {rule.layer} never imports {', '.join(sorted(rule.never))}"
    allowed = rule.project if top in PROJECT else rule.third_party
    if allowed is None or _matches(imp, allowed):
        return None
    kind = "project packages" if top in PROJECT else "libraries"
    return f"{imp} — {rule.layer} may import only these {kind}: {', '.join(sorted(allowed))}"


@pytest.mark.parametrize("rule", RULES, ids=[rule.layer for rule in RULES])
def test_imports_point_one_way(rule: Rule) -> None:
    checked = [imp for imp in ALL_IMPORTS if _under(imp.module, rule.layer)]
    assert checked, f"no module of {rule.layer} found: is the rule stale?"
    violations = [v for imp in checked if (v := _violation(rule, imp))]
    assert not violations, f"{rule.why}:\n" + "\n".join(violations)


def test_every_shipped_package_has_a_rule() -> None:
    layers = {rule.layer for rule in RULES}
    assert layers >= SHIPPED, f"add a rule for {sorted(SHIPPED - layers)}"


def test_starter_subpackages_are_the_documented_ones() -> None:
    """A new folder under starter/ needs its place in the layout (and maybe a rule)."""
    subpackages = {p.parent.name for p in (ROOT / "starter").glob("*/__init__.py")}
    assert subpackages == {"gateway", "support", "devstack", "demo", "ops"}


def test_the_scanner_sees_imports() -> None:
    """Guards against a vacuous pass: known arrows are found, relative imports resolved."""
    targets = {(imp.path, imp.target) for imp in ALL_IMPORTS}
    assert ("worker.py", "activities.registry.build_activities") in targets
    assert _resolve("a.b.c", False, 1, "d") == "a.b.d"
    assert _resolve("a.b", True, 2, None) == "a"


def test_a_violation_names_the_file_and_the_import() -> None:
    imp = Import(
        "workflows/x.py", 3, "workflows.x", "activities.cra.CraActivities", "activities.cra"
    )
    message = _violation(next(r for r in RULES if r.layer == "workflows"), imp)
    assert message is not None
    assert message.startswith("workflows/x.py:3 imports activities.cra.CraActivities")
