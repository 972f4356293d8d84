"""The package's layers: every module imports only modules below it.

The order is the map of ../shared/DESIGN.md ("The house"): a module may
import the modules after it in LAYERS, never one before it, so there is no
import circle and the core never depends on what is built on it. Imports
inside functions count too (they are how circles used to hide). The imports
are read from the source with ``ast``: nothing is imported to check them.
"""

import ast
import pathlib

import pytest

import rmsopt

PACKAGE = pathlib.Path(rmsopt.__file__).parent

# Top (entry points, built on everything) to bottom (plain Python math).
LAYERS = [
    "rmsopt.__main__",
    "rmsopt",
    "rmsopt.schedules",
    "rmsopt.models",
    "rmsopt.models.conftest",
    "rmsopt.models._estimators",
    "rmsopt.models._params",
    "rmsopt.models._scaling",
    "rmsopt.models._losses",
    "rmsopt._curve_fit",
    "rmsopt._fit",
    "rmsopt._minimize",
    "rmsopt._device",     # the device run
    "rmsopt._drive",      # the host run
    "rmsopt._threads",    # when the host run may use numba's threads
    "rmsopt._progress",
    "rmsopt._batches",
    "rmsopt._objective",
    "rmsopt._options",
    "rmsopt._checks",
    "rmsopt._cpu",        # compiled code only
    "rmsopt._cuda",       # compiled code only, device-array interop
    "rmsopt._schedules",
    "rmsopt._result",
    "rmsopt._layout",     # the kernel ABI both backends share
    "rmsopt._rule",       # the math
    "rmsopt._docs",       # docstring parts written once
]

# The most lines a module may have ("small modules, one concern each").
MAX_LINES = 650


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path):
    """The rmsopt modules ``path`` imports, anywhere in its code."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                if node.module:
                    base.append(node.module)
                base = ".".join(base)
            else:
                base = node.module
            if node.module:  # ``from . import _cpu``: the module _cpu only
                found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m in LAYERS and m != name}


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    missing = [module_name(p) for p in MODULES
               if module_name(p) not in LAYERS]
    assert not missing, f"place these modules in LAYERS: {missing}"


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_imports_go_down_only(path):
    rank = LAYERS.index(module_name(path))
    upward = sorted(m for m in imported_modules(path)
                    if LAYERS.index(m) <= rank)
    assert not upward, f"{module_name(path)} imports {upward} from above it"


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_modules_stay_small(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The check itself can fail: a relative import from below is caught."""
    bad = PACKAGE / "_rule.py"
    source = bad.read_text() + "\nfrom ._cpu import make_step\n"
    fake = tmp_path / "rmsopt" / "_rule.py"
    fake.parent.mkdir()
    fake.write_text(source)
    monkeypatch.setattr(__import__(__name__), "PACKAGE", tmp_path / "rmsopt")
    assert "rmsopt._cpu" in imported_modules(fake)
