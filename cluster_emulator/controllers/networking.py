"""Ingress controller, cert-manager (ingress-shim and issuing) and the service
load-balancer controller, simulated."""

from __future__ import annotations

import base64
import datetime as dt

from ..errors import ApiError
from ..resources import CERTIFICATES, INGRESSES, SECRETS, SERVICES
from ..util import clone, owner_reference, set_condition
from .base import INGRESS_IP, LOAD_BALANCER_IP, Context, deleting, owned

CLUSTER_ISSUER = "cert-manager.io/cluster-issuer"
ISSUER = "cert-manager.io/issuer"


class IngressController:
    """Gives ingresses an address, and (cert-manager's ingress-shim) a Certificate per TLS entry."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def reconcile(self, namespace: str, name: str) -> float | None:
        ing = self.ctx.store.get(INGRESSES, namespace, name)
        if ing is None or deleting(ing):
            return None
        self._certificates(ing)
        if (ing.get("status") or {}).get("loadBalancer", {}).get("ingress"):
            return None
        wait = self.ctx.seen(ing["metadata"]["uid"]) + self.ctx.timing.ingress_address_delay - self.ctx.clock()
        if wait > 0:
            return wait

        def address(obj: dict) -> None:
            obj["status"] = {"loadBalancer": {"ingress": [{"ip": INGRESS_IP}]}}

        self.ctx.registry.mutate(INGRESSES, namespace, name, address)
        self.ctx.events.record(ing, "Normal", "Sync", "Scheduled for sync", component="nginx-ingress-controller")
        return None

    def _certificates(self, ing: dict) -> None:
        annotations = ing["metadata"].get("annotations") or {}
        issuer = annotations.get(CLUSTER_ISSUER) or annotations.get(ISSUER)
        desired: dict[str, list[str]] = {}
        if issuer:
            for tls in (ing.get("spec") or {}).get("tls") or ():
                secret = tls.get("secretName")
                if secret:
                    desired.setdefault(secret, []).extend(
                        h for h in tls.get("hosts") or () if h not in desired.get(secret, [])
                    )
        namespace = ing["metadata"]["namespace"]
        existing = {c["metadata"]["name"]: c for c in owned(self.ctx.store, ing, "Certificate")}
        for secret, hosts in desired.items():
            spec = {
                "dnsNames": hosts,
                "issuerRef": {
                    "group": "cert-manager.io",
                    "kind": "ClusterIssuer" if CLUSTER_ISSUER in annotations else "Issuer",
                    "name": issuer,
                },
                "secretName": secret,
                "usages": ["digital signature", "key encipherment"],
            }
            current = existing.get(secret) or self.ctx.store.get(CERTIFICATES, namespace, secret)
            if current is None:
                body = {
                    "apiVersion": "cert-manager.io/v1",
                    "kind": "Certificate",
                    "metadata": {
                        "name": secret,
                        "namespace": namespace,
                        "labels": clone(ing["metadata"].get("labels") or {}),
                        "ownerReferences": [owner_reference(ing)],
                    },
                    "spec": spec,
                }
                try:
                    self.ctx.registry.create(
                        CERTIFICATES, namespace, body, manager="cert-manager-ingress-shim", internal=True
                    )
                except ApiError:
                    continue
                self.ctx.events.record(
                    ing,
                    "Normal",
                    "CreateCertificate",
                    f'Successfully created Certificate "{secret}"',
                    component="cert-manager",
                )
            elif current["metadata"]["name"] in existing and current.get("spec") != spec:
                self.ctx.registry.mutate(CERTIFICATES, namespace, secret, lambda c, s=spec: c.update(spec=s))
        for cert_name in existing.keys() - desired.keys():
            try:
                self.ctx.registry.delete(CERTIFICATES, namespace, cert_name)
            except ApiError:
                pass


class CertificateController:
    """Issues cert-manager Certificates: Issuing, then a TLS Secret and Ready=True."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._issuing: dict[tuple[str, int], float] = {}

    def reconcile(self, namespace: str, name: str) -> float | None:
        cert = self.ctx.store.get(CERTIFICATES, namespace, name)
        if cert is None or deleting(cert):
            return None
        meta, spec = cert["metadata"], cert.get("spec") or {}
        generation = meta.get("generation", 1)
        ready = next((c for c in (cert.get("status") or {}).get("conditions") or () if c.get("type") == "Ready"), None)
        secret = self.ctx.store.get(SECRETS, namespace, spec.get("secretName", ""))
        if ready and ready.get("status") == "True" and ready.get("observedGeneration") == generation and secret:
            return None
        key = (meta["uid"], generation)
        if key not in self._issuing:
            self._issuing[key] = self.ctx.clock() + self.ctx.timing.certificate_delay
            reason, message = (
                ("DoesNotExist", "Issuing certificate as Secret does not exist")
                if secret is None
                else ("Reissuing", "Re-issuance triggered: the Certificate's spec changed")
            )

            def issuing(obj: dict) -> None:
                status = obj.setdefault("status", {})
                conditions = status.get("conditions") or []
                extra = {"observedGeneration": generation}
                if secret is None:
                    conditions = set_condition(conditions, "Ready", "False", reason, message, extra=extra)
                conditions = set_condition(conditions, "Issuing", "True", reason, message, extra=extra)
                status["conditions"] = conditions

            self.ctx.registry.mutate(CERTIFICATES, namespace, name, issuing)
            self.ctx.events.record(cert, "Normal", "Issuing", message, component="cert-manager-certificates-trigger")
        wait = self._issuing[key] - self.ctx.clock()
        if wait > 0:
            return wait
        del self._issuing[key]
        self._write_secret(cert)
        issued = dt.datetime.now(dt.UTC).replace(microsecond=0)

        def ready_now(obj: dict) -> None:
            status = obj.setdefault("status", {})
            conditions = [c for c in status.get("conditions") or [] if c.get("type") != "Issuing"]
            status["conditions"] = set_condition(
                conditions,
                "Ready",
                "True",
                "Ready",
                "Certificate is up to date and has not expired",
                extra={"observedGeneration": generation},
            )
            status["notBefore"] = _stamp(issued)
            status["notAfter"] = _stamp(issued + dt.timedelta(days=90))
            status["renewalTime"] = _stamp(issued + dt.timedelta(days=60))
            status["revision"] = status.get("revision", 0) + 1

        self.ctx.registry.mutate(CERTIFICATES, namespace, name, ready_now)
        self.ctx.events.record(
            cert,
            "Normal",
            "Issuing",
            "The certificate has been successfully issued",
            component="cert-manager-certificates-issuing",
        )
        return None

    def _write_secret(self, cert: dict) -> None:
        meta, spec = cert["metadata"], cert.get("spec") or {}
        names = list(spec.get("dnsNames") or ()) or [spec.get("commonName") or meta["name"]]
        crt, key = _certificate_pem(names)
        data = {"tls.crt": _b64(crt), "tls.key": _b64(key), "ca.crt": _b64(crt)}
        issuer = spec.get("issuerRef") or {}
        annotations = {
            "cert-manager.io/alt-names": ",".join(spec.get("dnsNames") or ()),
            "cert-manager.io/certificate-name": meta["name"],
            "cert-manager.io/common-name": names[0],
            "cert-manager.io/issuer-group": issuer.get("group", "cert-manager.io"),
            "cert-manager.io/issuer-kind": issuer.get("kind", "Issuer"),
            "cert-manager.io/issuer-name": issuer.get("name", ""),
        }
        namespace, secret_name = meta["namespace"], spec["secretName"]

        def update(obj: dict) -> None:
            obj["data"] = data
            obj["metadata"].setdefault("annotations", {}).update(annotations)

        if self.ctx.registry.mutate(SECRETS, namespace, secret_name, update) is not None:
            return
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "data": data,
            "metadata": {
                "name": secret_name,
                "namespace": namespace,
                "annotations": annotations,
                "labels": {"controller.cert-manager.io/fao": "true"},
            },
        }
        try:
            self.ctx.registry.create(
                SECRETS, namespace, body, manager="cert-manager-certificates-issuing", internal=True
            )
        except ApiError:
            pass


class ServiceController:
    """Gives LoadBalancer services an external address."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def reconcile(self, namespace: str, name: str) -> float | None:
        svc = self.ctx.store.get(SERVICES, namespace, name)
        if svc is None or deleting(svc) or (svc.get("spec") or {}).get("type") != "LoadBalancer":
            return None
        if (svc.get("status") or {}).get("loadBalancer", {}).get("ingress"):
            return None
        wait = self.ctx.seen(svc["metadata"]["uid"]) + self.ctx.timing.ingress_address_delay - self.ctx.clock()
        if wait > 0:
            return wait

        def address(obj: dict) -> None:
            obj["status"] = {"loadBalancer": {"ingress": [{"ip": LOAD_BALANCER_IP, "ipMode": "VIP"}]}}

        self.ctx.registry.mutate(SERVICES, namespace, name, address)
        return None


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _certificate_pem(names: list[str]) -> tuple[str, str]:
    """A self-signed certificate for `names` (a real one when `cryptography` is installed)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:  # pragma: no cover - the placeholder is only for installs without cryptography
        body = base64.b64encode(("emulated certificate for " + ",".join(names)).encode()).decode()
        return (
            f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n",
            f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n",
        )
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])])
    start = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    )
