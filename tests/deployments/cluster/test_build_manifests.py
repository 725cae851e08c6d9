"""The build Job and the builds namespace, as plain dicts (pure)."""

from deployments.cluster import builds

SETTINGS = builds.BuildSettings(
    namespace="diploi-builds",
    buildkit_image="moby/buildkit:v0.29.0-rootless",
    git_image="alpine/git:2.47.2",
    registry_secret="registry-push",
    cpu_request="500m",
    cpu_limit="2",
    memory_request="1Gi",
    memory_limit="4Gi",
    deadline_seconds=900,
    retention_seconds=3600,
)
TARGET = builds.BuildTarget(
    build_id=12,
    deployment_id=3,
    project="shop",
    stage="production",
    component="app",
    repository="https://git.example.com/acme/shop.git; rm -rf /",
    branch="main",
    commit_sha="0123456789abcdef0123456789abcdef01234567",
    dockerfile="docker/app.Dockerfile",
    context="src",
    image="registry.example.com/diploi/shop/app",
)


def test_the_job_runs_rootless_buildkit_unprivileged_with_unconfined_seccomp_and_apparmor():
    job = builds.job(TARGET, SETTINGS)
    spec = job["spec"]["template"]["spec"]
    (build,) = spec["containers"]
    assert build["image"] == "moby/buildkit:v0.29.0-rootless"
    assert build["command"][:2] == ["sh", "-c"] and "buildctl-daemonless.sh" in build["command"][2]
    context = build["securityContext"]
    assert context["runAsUser"] == 1000 and context["runAsNonRoot"] is True
    assert context["seccompProfile"] == {"type": "Unconfined"} and context["appArmorProfile"] == {"type": "Unconfined"}
    assert "privileged" not in context
    assert {"name": "BUILDKITD_FLAGS", "value": "--oci-worker-no-process-sandbox"} in build["env"]
    assert build["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
    assert job["spec"]["activeDeadlineSeconds"] == 900 and job["spec"]["ttlSecondsAfterFinished"] == 3600
    assert job["spec"]["backoffLimit"] == 0 and spec["restartPolicy"] == "Never"


def test_buildctl_builds_the_templates_dockerfile_and_pushes_the_commit_with_rawjson_progress():
    args = builds.job(TARGET, SETTINGS)["spec"]["template"]["spec"]["containers"][0]["command"][4:]
    assert args[args.index("--frontend") + 1] == "dockerfile.v0"
    assert "context=/workspace/src/src" in args and "dockerfile=/workspace/src/docker" in args
    assert "filename=app.Dockerfile" in args
    assert f"type=image,name=registry.example.com/diploi/shop/app:{TARGET.commit_sha},push=true" in args
    assert args[args.index("--progress") + 1] == "rawjson"
    assert "--metadata-file" in args


def test_the_clone_gets_the_repository_and_commit_as_arguments_never_in_the_script():
    (clone,) = builds.job(TARGET, SETTINGS)["spec"]["template"]["spec"]["initContainers"]
    assert clone["command"][:3] == ["sh", "-c", builds.CLONE_SCRIPT]
    assert clone["command"][3:] == ["/workspace/src", TARGET.repository, TARGET.commit_sha, "main"]
    assert TARGET.repository not in builds.CLONE_SCRIPT
    assert clone["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_push_credentials_come_from_a_secret_as_docker_config():
    spec = builds.job(TARGET, SETTINGS)["spec"]["template"]["spec"]
    (auth,) = [v for v in spec["volumes"] if v["name"] == "registry-auth"]
    assert auth["secret"]["secretName"] == "registry-push"
    build = spec["containers"][0]
    assert {"name": "DOCKER_CONFIG", "value": "/home/user/.docker"} in build["env"]
    assert {"name": "registry-auth", "mountPath": "/home/user/.docker", "readOnly": True} in build["volumeMounts"]


def test_builds_get_their_own_namespace_labelled_ours_and_privileged_for_pod_security():
    labels = builds.namespace(SETTINGS)["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "diploi"
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    job_labels = builds.job(TARGET, SETTINGS)["metadata"]["labels"]
    assert job_labels["diploi.io/deployment"] == "3" and job_labels["diploi.io/build"] == "12"


def test_every_build_object_with_a_key_and_a_token_is_valid_for_a_real_api_server():
    import dataclasses

    import kubernetes_validate

    from deployments.cluster import git
    from tests.deployments.cluster.test_manifests import KUBERNETES_VERSION

    credentials = git.GitCredentials(ssh_private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nx\n", https_token="ghp_x1")
    target = dataclasses.replace(TARGET, git_credentials=credentials)
    objects = [builds.namespace(SETTINGS), builds.network_policy(SETTINGS), builds.job(target, SETTINGS)]
    objects += builds.git_secrets(target, SETTINGS, job_uid="8d1c6b62-1d7e-4b8e-9d8e-1f0c1a2b3c4d")
    assert [o["kind"] for o in objects] == ["Namespace", "NetworkPolicy", "Job", "Secret", "Secret"]
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_default_builder_is_a_pinned_rootless_buildkit():
    import re

    from django.conf import settings

    assert re.fullmatch(r"moby/buildkit:v\d+\.\d+\.\d+-rootless", settings.BUILDKIT_IMAGE)
