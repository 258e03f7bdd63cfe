"""The package's layers, checked on every import statement of every module (function-level ones
included), so that a wrong import fails the suite instead of waiting for a reviewer.

- Pure Python (no torch, no NumPy): `nlu/data/`, `schema`, `config`, `tokenizer`, `vocab`,
  `tags`, `files`, `eval/metrics`. They may import other pure modules only.
- The runtime (NumPy, no torch at module level): `nlu/decode/`, `parser`, `archive`,
  `features`, and the engine-neutral parts of `nlu/inference/`. What parsing with the ONNX
  backend loads; they import torch, or a module that needs it, only inside a function (the
  torch backend, the weights).
- Lightning and `nlu.training`: imported only under `nlu/training/`.
- `datasets`: imported only under `nlu/training/`, and inside a function of the Hugging Face
  reader (`nlu/data/hf.py`), which reads data and is never on the parsing path.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "nlu"

PURE_FILES = {"schema", "config", "tokenizer", "vocab", "tags", "files", "eval/metrics"}
PURE_FOLDERS = {"data"}
RUNTIME_FILES = {"parser", "archive", "features", "inference/engine", "inference/onnx_engine",
                 "inference/spans", "inference/batches", "inference/wordcache"}  # fmt: skip
RUNTIME_FOLDERS = {"decode"}
HEAVY = ("torch", "numpy")
LIGHTNING = ("lightning", "pytorch_lightning", "lightning_fabric", "nlu.training")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_pure(path: Path) -> bool:
    relative = path.relative_to(PACKAGE).with_suffix("").as_posix()
    return relative in PURE_FILES or relative.split("/")[0] in PURE_FOLDERS


def is_runtime(path: Path) -> bool:
    relative = path.relative_to(PACKAGE).with_suffix("").as_posix()
    return relative in RUNTIME_FILES or relative.split("/")[0] in RUNTIME_FOLDERS


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno, id(node) in top))
            # `from nlu import archive` imports the module nlu.archive
            found += [(f"{node.module}.{a.name}", node.lineno, id(node) in top) for a in node.names]
    return found


def within(name: str, roots: tuple[str, ...]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def pure_module_names() -> set[str]:
    return {module_name(p) for p in PACKAGE.rglob("*.py") if is_pure(p)} | {"nlu"}


def runtime_module_names() -> set[str]:
    return {module_name(p) for p in PACKAGE.rglob("*.py") if is_runtime(p)}


def light(imported: str, modules: set[str]) -> bool:
    """Whether `imported` is one of `modules`, or a name imported from one."""
    return imported in modules or any(imported.startswith(m + ".") for m in modules if m != "nlu")


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_the_layers_cover_real_modules():
    pure = pure_module_names()
    for name in ("nlu.data.formats", "nlu.schema", "nlu.tags", "nlu.eval.metrics"):
        assert name in pure
    assert len(MODULES) > 40


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_module_respects_the_layers(path):
    name = module_name(path)
    in_training = within(name, ("nlu.training",))
    pure = pure_module_names()
    runtime = runtime_module_names() | pure
    problems = []
    for imported, line, top in imports(path):
        where = f"{path.relative_to(ROOT)}:{line}"
        if is_pure(path) and within(imported, HEAVY):
            problems.append(f"{where}: a pure-Python module imports {imported}")
        if is_pure(path) and imported.startswith("nlu.") and imported not in pure:
            # a name imported from a pure module (from nlu.tags import spans) is fine
            if not any(imported.startswith(p + ".") for p in pure if p != "nlu"):
                problems.append(f"{where}: a pure-Python module imports {imported}")
        if is_runtime(path) and top:
            if within(imported, ("torch",)) or (
                imported.startswith("nlu.") and not light(imported, runtime)
            ):
                problems.append(f"{where}: a runtime module imports {imported} at module level")
        if within(imported, LIGHTNING) and not in_training:
            problems.append(f"{where}: {imported} outside nlu/training")
        if within(imported, ("datasets",)) and not in_training:
            allowed = name == "nlu.data.hf" and not any(
                line == top_line for _, top_line, top in imports(path) if top
            )
            if not allowed:
                problems.append(f"{where}: datasets outside nlu/training and the HF reader")
    assert not problems, "\n".join(problems)


def test_pure_modules_load_without_torch_or_numpy():
    """The rule as a user meets it: importing every pure module loads neither."""
    names = sorted(pure_module_names() - {"nlu"})
    code = "import sys\n" + "".join(f"import {n}\n" for n in names)
    code += "print(' '.join(m for m in ('torch', 'numpy') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == ""


def test_runtime_modules_load_without_torch():
    """What the ONNX backend parses with loads NumPy, never torch."""
    names = sorted(runtime_module_names())
    code = "import sys\n" + "".join(f"import {n}\n" for n in names)
    code += "print('torch' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert "nlu.parser" in names and out.stdout.split() == ["False", "True"]


def test_the_check_catches_a_wrong_import(tmp_path, monkeypatch):
    """A pure module that imports torch inside a function, a runtime module that imports it at
    module level, and a module that imports Lightning, are all reported."""
    package = tmp_path / "nlu"
    (package / "data").mkdir(parents=True)
    (package / "data" / "bad.py").write_text("def f():\n    import torch\n")
    (package / "model.py").write_text("import pytorch_lightning as pl\n")
    (package / "parser.py").write_text("from nlu.model import JointModel\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
    for bad in (package / "data" / "bad.py", package / "model.py", package / "parser.py"):
        with pytest.raises(AssertionError, match="imports (torch|nlu.model)|outside nlu/training"):
            test_module_respects_the_layers(bad)
