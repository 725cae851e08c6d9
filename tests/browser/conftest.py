"""Browser tests: Debian's Chromium driven by Playwright against a running Diploi.

They run in their own pytest process (scripts/test does it) because Playwright's
sync API keeps an event loop running, which also means Django's async-safety
check must be relaxed for the test process itself.
"""

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import need_service
from tests.stack import DiploiStack

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session", autouse=True)
def _allow_sync_orm_beside_playwright():
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture(scope="session")
def browser_type_launch_args():
    if not shutil.which(CHROMIUM):
        need_service(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    return {
        "executable_path": CHROMIUM,
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }


@pytest.fixture
def console_errors(page):
    """Collect console errors and page errors; tests assert the list stays empty."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


@pytest.fixture
def diploi(transactional_db, tmp_path, request):
    """Diploi running as a user runs it: standalone on its built-in emulator or, in CI, web, worker and
    watcher processes, which need a cluster: the test's emulator."""
    kube_api_url = request.getfixturevalue("emulator").url if os.environ.get("REDIS_URL") else None
    stack = DiploiStack(data_dir=tmp_path, kube_api_url=kube_api_url).start()
    yield stack
    stack.stop()


@pytest.fixture
def diploi_on_emulator(transactional_db, tmp_path, emulator, catalog):
    """Diploi on the test's cluster emulator (so tests can inject faults), with fast status settings."""
    from tests.conftest import FAST_STATUS

    stack = DiploiStack(data_dir=tmp_path, kube_api_url=emulator.url, env=FAST_STATUS).start()
    yield stack
    stack.stop()


@pytest.fixture
def screenshot_on_failure(request, page):
    """When the test fails, save under test-artifacts/ the page as it was, and any pages the test named.

    A test names pages by appending (label, url) to the list this fixture yields
    (the journey names a deployment's Overview and Status tabs).
    """
    named: list[tuple[str, str]] = []
    yield named
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        for label, url in named:
            try:
                page.goto(url)
                page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{label}.png"), full_page=True)
            except Exception as error:  # noqa: BLE001 - the failure being reported matters more
                print(f"could not capture {label}: {error}")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def wait_until(page, check, *, timeout_ms: int = 10_000, what: str = "condition"):
    """Poll ``check`` while letting the page's events arrive (Playwright's sync API needs that)."""
    for _ in range(timeout_ms // 100):
        result = check()
        if result:
            return result
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out after {timeout_ms} ms waiting for {what}")
