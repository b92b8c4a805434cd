"""The workflow modules' bytecode, written before the sandbox needs it.

The sandbox executes a workflow's module afresh for every workflow it instantiates (each new
run, each cache miss, each replay). Python reads that module's code from its `.pyc` when one
is there, and otherwise compiles the source again, every time: with `PYTHONDONTWRITEBYTECODE`
set (as in many containers and CI machines) or a clean checkout, nothing ever writes the
`.pyc`, and compiling `workflows/*.py` was about a tenth of a busy worker's main thread in the
month-end benchmark (py-spy, `SourceLoader.source_to_code`). So a worker writes them once at
start; where the source tree is read-only, the image compiles them at build time instead
(Dockerfile, `UV_COMPILE_BYTECODE`).
"""

from __future__ import annotations

import compileall
import logging
from functools import cache
from pathlib import Path

log = logging.getLogger("contracting.worker")

WORKFLOWS_DIR = Path(__file__).resolve().parent


@cache
def compile_workflow_modules() -> bool:
    """Write the `.pyc` of every module under `workflows/` that lacks a current one (once per
    process; a no-op when they are current). False, logged, when they cannot be written: the
    workflows still run, compiling their modules for each instance."""
    try:
        written = compileall.compile_dir(WORKFLOWS_DIR, maxlevels=0, quiet=2)
    except OSError as error:
        written = False
        log.debug("workflow bytecode: %s", error)
    if not written:
        log.warning(
            "could not write the bytecode of %s (read-only?): every workflow instance compiles "
            "its modules again; compile them where the image is built (python -m compileall)",
            WORKFLOWS_DIR,
        )
    return bool(written)
