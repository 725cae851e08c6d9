"""Ingresses get an address and, when annotated for cert-manager, a Certificate that becomes Ready."""

from __future__ import annotations

from .conftest import eventually


def ingress(name: str, *, issuer: str | None = "letsencrypt", hosts=("app.example.com",)) -> dict:
    annotations = {"cert-manager.io/cluster-issuer": issuer} if issuer else {}
    return {
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": list(hosts), "secretName": f"{name}-tls"}],
            "rules": [
                {
                    "host": h,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": name, "port": {"number": 80}}},
                            }
                        ]
                    },
                }
                for h in hosts
            ],
        },
    }


def test_it_issues_a_certificate_for_an_annotated_ingress(networking, core, custom, namespace):
    created = networking.create_namespaced_ingress(namespace, ingress("web"))
    cert = eventually(
        lambda: custom.get_namespaced_custom_object("cert-manager.io", "v1", namespace, "certificates", "web-tls")
    )
    assert cert["spec"]["secretName"] == "web-tls"
    assert cert["spec"]["dnsNames"] == ["app.example.com"]
    assert cert["spec"]["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "letsencrypt"}
    owner = cert["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "Ingress" and owner["uid"] == created.metadata.uid and owner["controller"]

    def is_ready():
        c = custom.get_namespaced_custom_object("cert-manager.io", "v1", namespace, "certificates", "web-tls")
        return any(x["type"] == "Ready" and x["status"] == "True" for x in c.get("status", {}).get("conditions", []))

    eventually(is_ready, message="certificate Ready")
    secret = core.read_namespaced_secret("web-tls", namespace)
    assert secret.type == "kubernetes.io/tls" and {"tls.crt", "tls.key"} <= set(secret.data)
    assert secret.metadata.annotations["cert-manager.io/certificate-name"] == "web-tls"
    ing = eventually(
        lambda: (i := networking.read_namespaced_ingress("web", namespace)).status.load_balancer.ingress and i
    )
    assert ing.status.load_balancer.ingress[0].ip


def test_it_follows_ingress_host_changes_and_deletion(networking, custom, namespace):
    networking.create_namespaced_ingress(namespace, ingress("web"))
    eventually(
        lambda: custom.get_namespaced_custom_object("cert-manager.io", "v1", namespace, "certificates", "web-tls")
    )
    networking.patch_namespaced_ingress(
        "web",
        namespace,
        {"spec": {"tls": [{"hosts": ["app.example.com", "www.example.com"], "secretName": "web-tls"}]}},
    )
    eventually(
        lambda: (
            custom.get_namespaced_custom_object("cert-manager.io", "v1", namespace, "certificates", "web-tls")["spec"][
                "dnsNames"
            ]
            == ["app.example.com", "www.example.com"]
        )
    )
    networking.delete_namespaced_ingress("web", namespace)
    eventually(
        lambda: not custom.list_namespaced_custom_object("cert-manager.io", "v1", namespace, "certificates")["items"]
    )


def test_it_leaves_unannotated_ingresses_alone(networking, custom, namespace):
    networking.create_namespaced_ingress(namespace, ingress("plain", issuer=None))
    eventually(lambda: networking.read_namespaced_ingress("plain", namespace).status.load_balancer.ingress)
    assert custom.list_namespaced_custom_object("cert-manager.io", "v1", namespace, "certificates")["items"] == []


def test_it_gives_load_balancer_services_an_address(core, namespace):
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "lb"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "x"}, "ports": [{"port": 443}]},
        },
    )
    svc = eventually(lambda: (s := core.read_namespaced_service("lb", namespace)).status.load_balancer.ingress and s)
    assert svc.spec.ports[0].node_port >= 30000
