"""Stand-ins for programs of the templates' images that this machine cannot honestly run in an emulated pod.

An emulated pod is a directory on this machine, so `exec` runs this machine's programs. For most
commands that is what a user wants (a shell, `ls`, the cloned code's own scripts). For a few it is
not: `redis-cli` and `psql` would talk to *this machine's* Redis and PostgreSQL (the emulator runs no
database), `nginx -s reload` would signal this machine's nginx, `pip install` and `npm install` would
change this machine's environment, and `python manage.py migrate` needs the image's code and a
database. Those names are put first on every emulated container's PATH (`PodFiles`) as small shims
running this file, which answers as the image's program would for the commands the shipped templates'
actions use, and says on stderr, first, that it is a stand-in and nothing ran. Anything else it was
not written for is refused with exit status 1 and a message saying so (never a made-up success);
`python` other than `python manage.py ...` runs the real python.

The table (program: what is stood in; anything else is "not simulated", exit 1):

- `python manage.py`: `migrate`, `check [--deploy]`, `showmigrations`; `python` otherwise: the
  machine's python.
- `pip`, `pip3`: `install -r FILE` (each requirement "already satisfied"; FILE missing: pip's
  error, exit 1), `--version`.
- `npm`: `install` and `ci` (package.json missing: npm's ENOENT error, exit 254), `run SCRIPT`
  (a script package.json lacks: exit 1).
- `nginx`: `-t`, `-s reload`.
- `redis-cli`: `ping`, `info [memory]`.
- `psql`: `-c` with a query of `pg_database_size`.

Standard library only: it runs as a script (`python stand_ins.py NAME ARGS...`), outside Django and
outside the emulator's process.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

PROGRAMS = ("python", "pip", "pip3", "npm", "nginx", "redis-cli", "psql")
BIN = ".stand-ins"  # under the emulator's files root; a dot: never a namespace's directory


def install(root: Path) -> Path:
    """Write the shims into ``root``/.stand-ins (idempotent) and return that directory."""
    directory = root / BIN
    directory.mkdir(parents=True, exist_ok=True)
    script = Path(__file__).resolve()
    for name in PROGRAMS:
        shim = directory / name
        text = (
            "#!/bin/sh\n# Diploi cluster emulator: see cluster_emulator/stand_ins.py\n"
            f'exec {shlex.quote(sys.executable)} {shlex.quote(str(script))} {shlex.quote(name)} "$@"\n'
        )
        if not shim.exists() or shim.read_text() != text:
            temporary = shim.with_suffix(".tmp")
            temporary.write_text(text)
            temporary.chmod(0o755)
            temporary.replace(shim)
    return directory


def _label(argv: list[str]) -> None:
    shown = " ".join(shlex.quote(part) for part in argv)
    print(f"[cluster emulator] stand-in for `{shown}`: nothing ran; this is what the image's program prints.",
          file=sys.stderr, flush=True)  # fmt: skip


def _not_simulated(argv: list[str]) -> int:
    shown = " ".join(shlex.quote(part) for part in argv)
    print(f"[cluster emulator] `{shown}` is not simulated: the emulator has no image to run it in "
          "(see cluster_emulator/stand_ins.py).", file=sys.stderr)  # fmt: skip
    return 1


def _real(name: str, args: list[str]) -> int:
    """Run the machine's own ``name``: the PATH without the stand-ins' directory."""
    path = [p for p in os.environ.get("PATH", "").split(":") if p and not p.rstrip("/").endswith("/" + BIN)]
    os.environ["PATH"] = ":".join(path)
    try:
        os.execvp(name, [name, *args])  # noqa: S606 - the user's own command, as a shell would run it
    except OSError:
        print(f"sh: 1: {name}: not found", file=sys.stderr)
        return 127


def python(args: list[str]) -> int:
    if not args or Path(args[0]).name != "manage.py":
        return _real("python", args)
    command = args[1] if len(args) > 1 else ""
    argv = ["python", *args]
    if command == "migrate":
        _label(argv)
        print("Operations to perform:\n  Apply all migrations: admin, auth, contenttypes, sessions\n"
              "Running migrations:\n  No migrations to apply.")  # fmt: skip
        return 0
    if command == "check":
        _label(argv)
        print("System check identified no issues (0 silenced).")
        return 0
    if command == "showmigrations":
        _label(argv)
        for app in ("admin", "auth", "contenttypes", "sessions"):
            print(f"{app}\n [X] 0001_initial")
        return 0
    return _not_simulated(argv)


def pip(args: list[str], name: str = "pip") -> int:
    argv = [name, *args]
    if args[:1] == ["--version"]:
        _label(argv)
        print("pip 24.0 from /usr/local/lib/python3.12/site-packages/pip (python 3.12)")
        return 0
    if not args or args[0] != "install" or "-r" not in args:
        return _not_simulated(argv)
    index = args.index("-r")
    if index + 1 >= len(args):
        print("ERROR: -r option requires 1 argument", file=sys.stderr)
        return 2
    _label(argv)
    file = args[index + 1]
    try:
        lines = Path(file).read_text().splitlines()
    except OSError as error:
        print(f"ERROR: Could not open requirements file: [Errno {error.errno}] {error.strerror}: '{file}'",
              file=sys.stderr)  # fmt: skip
        return 1
    for line in lines:
        requirement = line.split("#", 1)[0].strip()
        if requirement and not requirement.startswith("-"):
            print(f"Requirement already satisfied: {requirement} in /usr/local/lib/python3.12/site-packages")
    return 0


def npm(args: list[str]) -> int:
    argv = ["npm", *args]
    command = args[0] if args else ""
    if command not in ("install", "ci", "run"):
        return _not_simulated(argv)
    _label(argv)
    try:
        package = json.loads(Path("package.json").read_text())
    except OSError:
        print(f"npm error code ENOENT\nnpm error syscall open\nnpm error path {Path.cwd() / 'package.json'}\n"
              "npm error errno -2\nnpm error enoent Could not read package.json", file=sys.stderr)  # fmt: skip
        return 254
    except ValueError as error:
        print(f"npm error code EJSONPARSE\nnpm error JSON.parse Invalid package.json: {error}", file=sys.stderr)
        return 1
    if command in ("install", "ci"):
        count = len(package.get("dependencies") or {}) + len(package.get("devDependencies") or {})
        print(f"\nup to date, audited {count + 1} packages in 1s\n\nfound 0 vulnerabilities")
        return 0
    script = args[1] if len(args) > 1 else ""
    scripts = package.get("scripts") or {}
    if script not in scripts:
        print(f'npm error Missing script: "{script}"\nnpm error\nnpm error To see a list of scripts, run:\n'
              "npm error   npm run", file=sys.stderr)  # fmt: skip
        return 1
    print(f"\n> {package.get('name', 'app')}@{package.get('version', '0.0.0')} {script}\n> {scripts[script]}\n")
    return 0


def nginx(args: list[str]) -> int:
    argv = ["nginx", *args]
    if args == ["-t"]:
        _label(argv)
        print("nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\n"
              "nginx: configuration file /etc/nginx/nginx.conf test is successful", file=sys.stderr)  # fmt: skip
        return 0
    if args == ["-s", "reload"]:
        _label(argv)
        print("2026/01/01 00:00:00 [notice] 1#1: signal process started", file=sys.stderr)
        return 0
    return _not_simulated(argv)


def redis_cli(args: list[str]) -> int:
    argv = ["redis-cli", *args]
    words, skip = [], False
    for part in args:  # the command, without connection options (-a PASSWORD, -h HOST, -p PORT, -n DB)
        if skip:
            skip = False
        elif part in ("-a", "-h", "-p", "-n", "--user", "--pass"):
            skip = True
        elif not part.startswith("-"):
            words.append(part.lower())
    if words == ["ping"]:
        _label(argv)
        print("PONG")
        return 0
    if words[:1] == ["info"] and words[1:] in ([], ["memory"]):
        _label(argv)
        print("# Memory\nused_memory:1013472\nused_memory_human:989.72K\nused_memory_rss:9437184\n"
              "used_memory_rss_human:9.00M\nused_memory_peak:1070384\nused_memory_peak_human:1.02M\n"
              "maxmemory:0\nmaxmemory_human:0B\nmaxmemory_policy:noeviction\nmem_fragmentation_ratio:9.53")  # fmt: skip
        return 0
    return _not_simulated(argv)


def psql(args: list[str]) -> int:
    argv = ["psql", *args]
    sql = args[args.index("-c") + 1] if "-c" in args and args.index("-c") + 1 < len(args) else ""
    if "pg_database_size" in sql:
        _label(argv)
        print(" pg_size_pretty \n----------------\n 7453 kB\n(1 row)\n")
        return 0
    return _not_simulated(argv)


def main(argv: list[str]) -> int:
    name, args = argv[0], argv[1:]
    if name == "python":
        return python(args)
    if name in ("pip", "pip3"):
        return pip(args, name)
    handlers = {"npm": npm, "nginx": nginx, "redis-cli": redis_cli, "psql": psql}
    if name not in handlers:
        print(f"[cluster emulator] no stand-in named {name!r}", file=sys.stderr)
        return 127
    return handlers[name](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
