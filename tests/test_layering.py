"""Import boundaries: symbol <- optim <- executor, and no torch below the executor.

``examples/`` (installed as ``sublinear_examples``) sits beside them: its network modules, which
the executor's commands load by name, build graphs with ``symbol`` only; its scripts may use
anything (the torch reference networks, training scripts).
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {"symbol": {"numpy", "lark"}, "optim": {"numpy", "symbol", "highspy"},
           "executor": {"numpy", "torch", "symbol", "optim", "tqdm", "matplotlib",
                        "sublinear_examples", "safetensors", "sklearn"}}
#: Network modules of examples/: what ``executor.app.nets.example_module`` imports.
EXAMPLE_NETWORKS = ("mlp.py", "resnet.py", "lstm.py")


def imported_top_levels(pkg: str) -> dict[str, set[str]]:
    """Top-level module names imported (absolute imports) by each file of ``pkg``."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / pkg).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize("pkg", sorted(ALLOWED))
def test_package_imports_only_what_its_layer_allows(pkg):
    for path, names in imported_top_levels(pkg).items():
        extra = names - set(sys.stdlib_module_names) - {pkg, "__future__"} - ALLOWED[pkg]
        assert not extra, f"{path} imports {sorted(extra)}, not allowed in {pkg}/"


def test_example_networks_import_only_symbol():
    found = imported_top_levels("examples")
    for name in EXAMPLE_NETWORKS:
        names = found[f"examples/{name}"]
        extra = names - set(sys.stdlib_module_names) - {"__future__", "symbol", "numpy"}
        assert not extra, f"examples/{name} imports {sorted(extra)}"


def test_executor_reaches_examples_through_the_installed_name():
    # the checkout's "examples" package is not installed; only sublinear_examples is
    for path, names in imported_top_levels("executor").items():
        assert "examples" not in names, path


def executor_imports() -> dict[str, set[str]]:
    """Modules of the executor package each of its files imports (relative ones resolved)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "executor").rglob("*.py")):
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if path.name != "__init__.py":
            package = package.rsplit(".", 1)[0]
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                names.add(".".join(base + ([node.module] if node.module else [])))
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
        found[str(path.relative_to(ROOT))] = {n for n in names if n.startswith("executor")}
    return found


def test_executor_core_never_imports_the_application_layers():
    # executor/ (bind, kernels, run) <- executor/training <- executor/app
    for path, names in executor_imports().items():
        if path.startswith("executor/app/"):
            continue
        assert not any(n.startswith("executor.app") for n in names), (path, names)
        if not path.startswith("executor/training/"):
            assert not any(n.startswith("executor.training") for n in names), (path, names)


def test_the_executor_layer_check_can_fail():
    found = executor_imports()
    assert "executor.app.nets" in found["executor/app/cli.py"]  # (resolved: .nets)
    assert any(n.startswith("executor.") for n in found["executor/app/demo.py"])


def test_checker_catches_a_forbidden_import(tmp_path, monkeypatch):
    # The check must be able to fail: a stub optim/ importing torch is flagged.
    (tmp_path / "optim").mkdir()
    (tmp_path / "optim" / "bad.py").write_text("import torch\nfrom symbol import graph\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    names = imported_top_levels("optim")["optim/bad.py"]
    assert names - ALLOWED["optim"] - set(sys.stdlib_module_names) == {"torch"}


def test_symbol_and_optim_import_without_torch():
    # Run in a fresh interpreter where importing torch fails.
    import subprocess
    code = ("import sys; sys.modules['torch'] = None\n"
            "import symbol, optim, symbol.ops\nprint('ok')")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


def test_symbol_and_optim_tests_pass_without_torch():
    import subprocess
    code = ("import sys; sys.modules['torch'] = None\nimport pytest\n"
            "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', 'tests/symbol', "
            "'tests/optim']))")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
