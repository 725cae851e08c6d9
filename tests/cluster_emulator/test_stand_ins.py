"""The emulator's stand-ins for image programs (`cluster_emulator/stand_ins.py`), through `pods/exec`
with the official client: they say they are stand-ins, answer what the templates' actions ask, refuse
the rest, and leave everything else to this machine's programs."""

from __future__ import annotations

from .test_exec import exec_ws, finish, running_pod

LABEL = "[cluster emulator] stand-in for"


def run(core, namespace, command: list[str]) -> tuple[dict, str, str]:
    ws = exec_ws(core, "box", namespace, command)
    status = finish(ws)
    return status, ws.read_stdout(), ws.read_stderr()


def test_a_database_client_is_answered_by_a_stand_in_never_by_this_machines_server(core, namespace):
    running_pod(core, namespace)
    status, out, err = run(core, namespace, ["sh", "-c", 'redis-cli -a "$GREETING" --no-auth-warning info memory'])
    assert status["status"] == "Success"
    assert out.startswith("# Memory\nused_memory:")
    assert err.startswith(f"{LABEL} `redis-cli -a hello --no-auth-warning info memory`: nothing ran")
    status, out, err = run(core, namespace, ["psql", "-c", "SELECT pg_size_pretty(pg_database_size('x'))"])
    assert status["status"] == "Success" and "(1 row)" in out and err.startswith(LABEL)


def test_manage_py_stands_in_and_other_python_is_this_machines(core, namespace):
    running_pod(core, namespace)
    status, out, err = run(core, namespace, ["python", "manage.py", "migrate", "--noinput"])
    assert status["status"] == "Success" and "No migrations to apply." in out and err.startswith(LABEL)
    status, out, err = run(core, namespace, ["python", "-c", "print(6 * 7)"])
    assert status["status"] == "Success" and out == "42\n" and err == ""


def test_what_a_stand_in_was_not_written_for_is_refused_not_faked(core, namespace):
    running_pod(core, namespace)
    status, _, err = run(core, namespace, ["nginx", "-s", "stop"])
    assert status["details"]["causes"][0]["message"] == "1"
    assert "`nginx -s stop` is not simulated" in err
    status, _, err = run(core, namespace, ["python", "manage.py", "flush"])
    assert status["details"]["causes"][0]["message"] == "1" and "is not simulated" in err


def test_package_managers_read_the_pods_files(core, namespace):
    running_pod(core, namespace)
    status, _, err = run(core, namespace, ["pip", "install", "-r", "requirements.txt"])
    assert status["details"]["causes"][0]["message"] == "1"
    assert "Could not open requirements file: [Errno 2] No such file or directory: 'requirements.txt'" in err
    run(core, namespace, ["sh", "-c", "printf 'django==5.2\\n# a comment\\ncelery\\n' > requirements.txt"])
    status, out, _ = run(core, namespace, ["pip", "install", "-r", "requirements.txt"])
    assert status["status"] == "Success"
    assert [line.split(" in ")[0] for line in out.splitlines()] == [
        "Requirement already satisfied: django==5.2",
        "Requirement already satisfied: celery",
    ]
    status, _, err = run(core, namespace, ["npm", "run", "lint"])
    assert status["details"]["causes"][0]["message"] == "254" and "Could not read package.json" in err
    run(core, namespace, ["sh", "-c", 'echo \'{"name": "app", "scripts": {"lint": "next lint"}}\' > package.json'])
    status, out, _ = run(core, namespace, ["npm", "run", "lint"])
    assert status["status"] == "Success" and "> next lint" in out
