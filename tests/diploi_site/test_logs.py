"""Log lines say which deployment and operation they are about, as JSON with LOG_FORMAT=json."""

from __future__ import annotations

import json

from tests.diploi_site.test_settings import run_django

LOG_TWO_LINES = (
    "import logging; from diploi_site.logs import log_context; from diploi_site.process import set_process_name; "
    "set_process_name('worker'); log = logging.getLogger('deployments.lifecycle'); "
    "log.info('outside'); "
    "exec('with log_context(deployment_id=12, operation_id=34):\\n    log.warning(\\'applied %s objects\\', 9)')"
)


def test_json_lines_carry_the_deployment_operation_and_process(tmp_path):
    result = run_django(LOG_TWO_LINES, {"LOG_FORMAT": "json"}, tmp_path)
    assert result.returncode == 0, result.stderr
    outside, inside = (json.loads(line) for line in result.stderr.splitlines()[-2:])
    assert outside["message"] == "outside" and "deployment_id" not in outside
    assert inside["message"] == "applied 9 objects"
    assert (inside["level"], inside["logger"], inside["process"]) == ("WARNING", "deployments.lifecycle", "worker")
    assert (inside["deployment_id"], inside["operation_id"]) == (12, 34)
    assert inside["time"].endswith("+00:00")


def test_plain_lines_name_them_in_brackets(tmp_path):
    result = run_django(LOG_TWO_LINES, {}, tmp_path)
    assert result.returncode == 0, result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.endswith("WARNING deployments.lifecycle: applied 9 objects [deployment_id=12 operation_id=34]")


def test_it_refuses_an_unknown_log_format(tmp_path):
    result = run_django("print('started')", {"LOG_FORMAT": "xml"}, tmp_path)
    assert result.returncode != 0
    assert "LOG_FORMAT must be plain or json, not 'xml'" in result.stderr
