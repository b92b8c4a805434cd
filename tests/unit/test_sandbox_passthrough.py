"""The workflows' helper modules the sandbox passes through (workflows/registry.py) are shared
by every workflow of a worker: they must define no workflow and keep no mutable state."""

from __future__ import annotations

import importlib
import inspect

import pytest

from workflows.registry import PASSED_THROUGH, WORKFLOWS

HELPERS = [name for name in PASSED_THROUGH if name.startswith("workflows.")]


def test_no_workflow_module_is_passed_through() -> None:
    assert HELPERS, "the workflows' helpers are expected to be passed through"
    for workflow in WORKFLOWS:
        assert workflow.__module__ not in PASSED_THROUGH, workflow


@pytest.mark.parametrize("name", HELPERS)
def test_a_passed_through_helper_keeps_no_state(name: str) -> None:
    module = importlib.import_module(name)
    for attribute, value in vars(module).items():
        if attribute.startswith("__") or inspect.ismodule(value):
            continue
        assert not isinstance(value, list | dict | set | bytearray), (
            f"{name}.{attribute} is mutable module state: every workflow of a worker would "
            "share it (move it into the workflow, or stop passing the module through)"
        )
        if inspect.isclass(value) and value.__module__ == name:
            assert not hasattr(value, "__temporal_workflow_definition"), (
                f"{name}.{attribute} is a workflow: its module must stay sandboxed"
            )
