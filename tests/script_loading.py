"""Load a script of scripts/ as a module, from its file: scripts/ is not a package and is not put on sys.path, so
the tests hold the scripts as a user runs them (docs/architecture.md, scripts are leaves)."""

import importlib.util
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load_script(name: str):
    """`scripts/<name>.py` as the module `scripts_<name>`, loaded once per session and registered in `sys.modules`,
    so that the functions it hands to worker processes (the GPU study's simulation) pickle by name: a second load
    would leave the first module's functions unpicklable."""
    if f"scripts_{name}" in sys.modules:
        return sys.modules[f"scripts_{name}"]
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
