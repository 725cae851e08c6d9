"""Reading BuildKit's output into steps and log text (pure)."""

import base64
import json

from deployments.cluster.buildkit import BuildProgress, digest_from_metadata, split_timestamp


def raw(**status) -> str:
    return json.dumps(status)


def test_rawjson_vertexes_give_the_step_and_logs_become_text():
    progress = BuildProgress()
    text, changed = progress.feed(raw(vertexes=[{"digest": "sha256:1", "name": "[internal] load .dockerignore"}]))
    assert (text, changed, progress.steps) == ("=> [internal] load .dockerignore\n", False, 0)
    text, changed = progress.feed(raw(vertexes=[{"digest": "sha256:2", "name": "[2/4] RUN make", "started": "t"}]))
    assert changed and (progress.step, progress.steps, progress.text) == (2, 4, "[2/4] RUN make")
    data = base64.b64encode(b"compiling\nlinking\n").decode()
    text, changed = progress.feed(raw(logs=[{"vertex": "sha256:2", "stream": 1, "data": data}]))
    assert (text, changed) == ("   compiling\n   linking\n", False)
    # The same vertex again (completed) is not a new line.
    assert progress.feed(raw(vertexes=[{"digest": "sha256:2", "name": "[2/4] RUN make", "completed": "t"}])) == (
        "",
        False,
    )


def test_a_stage_name_in_the_step_and_an_error_are_understood():
    progress = BuildProgress()
    progress.feed(raw(vertexes=[{"digest": "sha256:3", "name": "[builder 3/7] RUN npm ci"}]))
    assert (progress.step, progress.steps) == (3, 7)
    text, _ = progress.feed(
        raw(vertexes=[{"digest": "sha256:3", "name": "[builder 3/7] RUN npm ci", "error": "exit 1"}])
    )
    assert progress.error == "[builder 3/7] RUN npm ci: exit 1" and text.startswith("ERROR ")


def test_plain_progress_gives_steps_and_errors_too():
    progress = BuildProgress()
    assert progress.feed("#5 [3/5] COPY . .") == ("#5 [3/5] COPY . .\n", True)
    assert (progress.step, progress.steps) == (3, 5)
    progress.feed("#6 ERROR: process did not complete successfully: exit code: 2")
    assert progress.error == "process did not complete successfully: exit code: 2"


def test_garbage_is_kept_as_text_and_never_raises():
    progress = BuildProgress()
    assert progress.feed("{not json") == ("{not json\n", False)
    assert progress.feed(raw(logs=[{"data": "%%%"}]))[1] is False


def test_the_digest_comes_from_the_metadata_file_and_only_when_well_formed():
    digest = "sha256:" + "0123456789abcdef" * 4
    assert digest_from_metadata(json.dumps({"containerimage.digest": digest, "image.name": "x"})) == digest
    assert digest_from_metadata(json.dumps({"containerimage.digest": "sha256:short"})) is None
    assert digest_from_metadata("") is None and digest_from_metadata("[]") is None


def test_log_lines_fetched_with_timestamps_split():
    assert split_timestamp("2026-12-02T10:00:00.123456789Z hello world") == (
        "2026-12-02T10:00:00.123456789Z",
        "hello world",
    )
    assert split_timestamp("no stamp here") == ("", "no stamp here")
