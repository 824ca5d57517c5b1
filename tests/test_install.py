"""A regular install works from any folder: build the wheel, install it into a fresh virtual
environment and run every command from an empty temporary folder.

The environment sees its dependencies (numpy, lark, torch, ...) through a ``.pth`` file naming
the folders they are installed in here, but not the project itself: this checkout's editable
install (a finder loaded by a ``.pth`` file in those folders) is not processed there, and the
checkout is not on the path, so every module and data file must come from the wheel.
"""
from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPENDENCIES = ("numpy", "lark", "torch", "tqdm", "matplotlib")
PACKAGES = ("symbol", "optim", "executor", "sublinear_examples")


def _source_copy(dest: Path) -> Path:
    """The source tree without version control, caches or build outputs."""
    ignore = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__",
                                    ".pytest_cache", ".mypy_cache", ".whl")
    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


def _dependency_dirs() -> list[str]:
    dirs = []
    for name in DEPENDENCIES:
        folder = str(Path(importlib.import_module(name).__file__ or "").parent.parent)
        if folder not in dirs:
            dirs.append(folder)
    return dirs


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the environment's python, its bin folder, an empty folder to run in)."""
    tmp = tmp_path_factory.mktemp("install")
    src = _source_copy(tmp / "src")
    wheels = tmp / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheels), str(src)], check=True, capture_output=True)
    (wheel,) = wheels.glob("sublinear-*.whl")
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "dependencies.pth").write_text("\n".join(_dependency_dirs()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    work = tmp / "work"
    work.mkdir()
    return python, bindir, work


def _run(installed, *argv: str) -> subprocess.CompletedProcess[str]:
    _, bindir, work = installed
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([str(bindir / "sublinear"), *argv], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_every_module_comes_from_the_wheel(installed):
    python, _, work = installed
    code = ("import json, " + ", ".join(PACKAGES) + "; print(json.dumps({m.__name__: m.__file__ "
            "for m in (" + ", ".join(PACKAGES) + ")}))")
    res = subprocess.run([str(python), "-c", code], cwd=work, capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert res.returncode == 0, res.stderr
    env_dir = python.parent.parent
    for name, path in json.loads(res.stdout).items():
        assert Path(path).resolve().is_relative_to(env_dir.resolve()), (name, path)


@pytest.mark.slow
def test_check_and_plan_take_example_names_and_mxnet_json(installed):
    _, _, work = installed
    res = _run(installed, "check", "mlp")
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr
    res = _run(installed, "plan", "resnet", "--param", "units=1,1,1,1", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["planned_bytes"] > 0
    import symbol as sym
    net = sym.load(str(ROOT / "examples" / "mlp.sym"), params={"batch": 4, "input_dim": 8})
    (work / "mlp-symbol.json").write_text(net.tojson())
    for command in ("check", "plan"):
        res = _run(installed, command, "mlp-symbol.json", "--shape", "data=4,8")
        assert res.returncode == 0, (command, res.stderr)


@pytest.mark.slow
def test_memcost_and_demo(installed):
    res = _run(installed, "memcost", "--net", "resnet", "--sweep", "50", "--strategies",
               "sharing", "--quiet", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["points"][0]["planned_bytes"] > 0
    res = _run(installed, "demo", "--steps", "5", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["steps"] == 5


@pytest.mark.slow
def test_an_unknown_name_lists_the_installed_examples(installed):
    res = _run(installed, "plan", "resnt")
    assert res.returncode == 2
    assert "no such network file or example: resnt (examples: " in res.stderr
    assert "resnet" in res.stderr and "Traceback" not in res.stderr
