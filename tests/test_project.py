"""Project-level promises: environment.yml lists what pyproject.toml does; the README's two commands exist."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    wanted |= {_name(r) for extra in project["optional-dependencies"].values() for r in extra}
    listed = set()
    for line in (ROOT / "environment.yml").read_text().splitlines():
        m = re.match(r"^\s+- ([A-Za-z0-9_.\-]+)", line)
        if m and m.group(1) not in ("python", "pip", "conda-forge"):
            listed.add(_name(m.group(1)))
    assert listed == wanted, (
        f"only in environment.yml: {listed - wanted}; only in pyproject: {wanted - listed}"
    )


def test_requirements_pin_this_machines_torch_and_cover_pyproject():
    pins = {
        _name(x): x
        for x in (ROOT / "requirements.txt").read_text().splitlines()
        if x and not x.startswith("#")
    }
    assert pins["torch"] == "torch==2.14.1" and pins["torchvision"] == "torchvision==0.29.1"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needed = {_name(r) for r in project["dependencies"]} | {
        _name(r) for r in project["optional-dependencies"]["dev"]
    }
    assert needed <= set(pins), needed - set(pins)
    # the package itself stays installable on the GPU machines' torch 2.11 / torchvision 0.26
    assert "torch>=2.4" in project["dependencies"] and "torchvision>=0.19" in project["dependencies"]


def test_readme_quickstart_is_two_make_targets_that_exist():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quickstart\s+```bash\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["make train", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^train: \$\(STAMP\)", makefile, re.M) and re.search(
        r"^test: \$\(STAMP\)", makefile, re.M
    )
    assert "make test" in (ROOT / ".ci" / "run").read_text()
