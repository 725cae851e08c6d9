"""Diploi settings: one module, driven by environment variables.

With no variables set, Diploi runs embedded on one machine: SQLite in the data
directory, the in-memory channel layer, Celery's in-memory transport and (in
standalone mode) the cluster emulator. ``DATABASE_URL`` and ``REDIS_URL`` switch
it to PostgreSQL and Redis, which is how it scales out to separate web, worker
and watcher processes. See README.md for every variable.
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from diploi_site.env import env_bool, env_int, env_list, env_str
from diploi_site.secret_key import load_or_create_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("DIPLOI_DATA_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = env_bool("DEBUG", False)
REDIS_URL = env_str("REDIS_URL")
# Embedded: no Redis, so everything lives in one process (see `manage.py standalone`).
EMBEDDED = not REDIS_URL

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not (EMBEDDED or DEBUG):
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it to a long random string when running with "
            "DEBUG=0 and REDIS_URL (python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    SECRET_KEY = load_or_create_secret_key(DATA_DIR)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # daphne first: `runserver` then serves websockets too.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "channels",
    "templates_catalog",
    "deployments",
    "deployments.hosts",
    "deployments.builds",
    "deployments.actions",
    "deployments.ssh",
    "deployments.ci",
    "deployments.appstatus",
    "axes",
    "csp",
]

MIDDLEWARE = [
    # Probes first: kubelets ask over plain HTTP with the pod's IP as Host.
    "diploi_site.health.HealthProbeMiddleware",
    "diploi_site.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "diploi_site.middleware.RejectNulCharactersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "diploi_site.urls"
ASGI_APPLICATION = "diploi_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "deployments.context_processors.platform",
            ],
        },
    }
]

# --- Database -----------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'diploi.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        # Keep connections for a minute: the watcher and the websocket consumers
        # query all the time, and a new PostgreSQL connection costs 4-14 ms.
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0 if DATABASE_URL.startswith("sqlite") else 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded mode has several threads writing (web, worker, watcher):
    # WAL lets readers go on during a write, IMMEDIATE takes the write lock at
    # BEGIN so two writers queue instead of failing mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests that start other processes (a worker, standalone) need a file; one
    # per test run, so two runs on one machine never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-diploi-{os.getpid()}.sqlite3")}
    DATA_DIR.mkdir(parents=True, exist_ok=True)
elif env_bool("DB_PREPARED_STATEMENTS", False):
    # Server-side parameters, and a query run twice on a connection is prepared: PostgreSQL plans
    # it once (the watcher's and the live pages' queries repeat all the time). Off by default:
    # PgBouncer in transaction mode needs max_prepared_statements (1.21+) for it.
    DATABASES["default"]["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": 2}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Sign-in throttling (django-axes), on the dashboard's and the admin's login pages alike: after
# AXES_FAILURE_LIMIT failures an account is locked, and so, separately, is the source address, for
# AXES_COOLOFF_MINUTES. Operators unlock in the admin (Axes > Access attempts: delete the rows) or
# with `manage.py axes_reset_username NAME` / `axes_reset_ip ADDRESS`.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# The attempts are in the admin; logging each sign-in too would only be noise.
AXES_VERBOSE = env_bool("AXES_VERBOSE", False)
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "diploi_site.throttling.client_ip"
AXES_USERNAME_CALLABLE = "diploi_site.throttling.client_username"
# How many reverse proxies in front of Diploi append to X-Forwarded-For (0: use the peer address).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- I18N -----------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files (served by whitenoise, htmx vendored: no CDN) -----------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Optional: with STATIC_ROOT set, `collectstatic` gathers compressed files there
# for whitenoise; without it whitenoise serves straight from the finders.
STATIC_ROOT = env_str("STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Security -------------------------------------------------------------------
# HTTPS is on for a production deployment (DEBUG=0 with Redis); the embedded
# mode serves plain HTTP on localhost, where secure cookies would lock users out.
HTTPS = env_bool("HTTPS", not DEBUG and not EMBEDDED)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env_bool("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
# Preloading is a commitment to the browsers' list: the operator opts in.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts only from our own origin, never inline (the
# dashboard's behaviours live in static/js/diploi.js), websockets to ourselves, nothing framed.
# Inline style attributes stay allowed: htmx adds its indicator style, the admin uses a few.
_SELF = "'self'"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [_SELF],
        "script-src": [_SELF],
        "style-src": [_SELF, "'unsafe-inline'"],
        "img-src": [_SELF, "data:"],
        "connect-src": [_SELF],
        "font-src": [_SELF],
        "object-src": ["'none'"],
        "base-uri": [_SELF],
        "form-action": [_SELF],
        "frame-ancestors": ["'none'"],
    }
}

# --- Redis key space --------------------------------------------------------------
# Several users of one Redis database (parallel test workers: pytest-xdist names each in
# PYTEST_XDIST_WORKER, and the Diploi processes a worker's tests start inherit it) keep apart by
# a key space: it names the channel prefix, the Celery queue and every key of Celery's transport.
REDIS_KEYSPACE = env_str("REDIS_KEYSPACE", os.environ.get("PYTEST_XDIST_WORKER", ""))

# --- Channels -------------------------------------------------------------------
if REDIS_URL:
    # Redis pub/sub ignores database numbers: the prefix keeps installations
    # (or a test run) sharing one Redis server from hearing each other.
    _redis_db = urlparse(REDIS_URL).path.strip("/") or "0"
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [env_str("CHANNELS_REDIS_URL", REDIS_URL)],
                "prefix": env_str("CHANNELS_PREFIX", f"diploi{_redis_db}{REDIS_KEYSPACE}"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "diploi_site.channel_layers.InProcessChannelLayer"}}

# Live pages (websockets) one user may have open at once, per web process.
WEBSOCKETS_PER_USER = env_int("WEBSOCKETS_PER_USER", 20)

# --- Celery ---------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "memory://localhost/")
CELERY_TASK_IGNORE_RESULT = True  # the UI reads operation rows, never results
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", f"diploi-{REDIS_KEYSPACE}" if REDIS_KEYSPACE else "diploi")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker that cannot reach the broker tries again 2 s, 4 s, ... 20 s later, then exits with
# status 1 for its supervisor to restart it (Celery's default, 100 attempts, is most of an hour).
CELERY_BROKER_CONNECTION_MAX_RETRIES = env_int("BROKER_CONNECTION_MAX_RETRIES", 10)
# A task taken by a worker that dies is handed out again after this long.
# Redis checks for such messages every 10 s (kombu's default is every 100 s).
# Socket timeouts: a request that sends a task never waits long on a Redis that went silent.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 300),
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
    "socket_connect_timeout": 5,
    "socket_timeout": 10,
}
if REDIS_KEYSPACE:
    # Also the keys all queues share (unacknowledged messages, bindings, fanout channels).
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = f"{REDIS_KEYSPACE}:"
# Our LOGGING (plain or JSON lines, with deployment and operation ids) applies in the worker too.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

# --- The platform ---------------------------------------------------------------
BASE_DOMAIN = env_str("BASE_DOMAIN", "diploi.localhost")
EDGE_HOST = env_str("EDGE_HOST", f"edge.{BASE_DOMAIN}")
# Where users reach the SSH gateway. Standalone (embedded) serves it on this machine, on 2222
# (`*.localhost` needs no DNS in browsers, but `ssh` resolves names with the system's resolver).
SSH_HOST = env_str("SSH_HOST", "localhost" if EMBEDDED else f"ssh.{BASE_DOMAIN}")
SSH_PORT = env_int("SSH_PORT", 2222 if EMBEDDED else 22)
# An open session no gateway has reported for this long counts as lost (its gateway died).
SSH_SESSION_STALE_SECONDS = env_int("SSH_SESSION_STALE_SECONDS", 30)
# The SSH gateway (`manage.py ssh_gateway`): where it listens ("host:port"; a non-root container
# listens on 2222 and its Service maps SSH_PORT to it), and how long it waits for people and networks.
SSH_LISTEN = env_str("SSH_LISTEN", "0.0.0.0:2222")
SSH_LOGIN_TIMEOUT_SECONDS = env_int("SSH_LOGIN_TIMEOUT_SECONDS", 30)
SSH_IDLE_TIMEOUT_SECONDS = env_int("SSH_IDLE_TIMEOUT_SECONDS", 3600)
SSH_KEEPALIVE_SECONDS = env_int("SSH_KEEPALIVE_SECONDS", 30)
SSH_KEEPALIVE_COUNT_MAX = env_int("SSH_KEEPALIVE_COUNT_MAX", 3)
# Failed authentications allowed per source address and per user name in a minute.
SSH_AUTH_FAILURES_PER_ADDRESS = env_int("SSH_AUTH_FAILURES_PER_ADDRESS", 30)
SSH_AUTH_FAILURES_PER_USER = env_int("SSH_AUTH_FAILURES_PER_USER", 10)
SSH_MAX_CONNECTIONS = env_int("SSH_MAX_CONNECTIONS", 1000)
SSH_MAX_CHANNELS_PER_CONNECTION = env_int("SSH_MAX_CHANNELS_PER_CONNECTION", 32)
# Ciphers the gateway offers. SSH lets the client's preference win among them: OpenSSH prefers
# chacha20-poly1305, which asyncssh computes in Python per packet at half the speed of AES-GCM (one
# call into OpenSSL), and CTR before GCM; so only AES-GCM is offered (OpenSSH >= 6.2, PuTTY >= 0.76).
# Add e.g. aes128-ctr for clients without it (Paramiko), at some cost in throughput.
SSH_CIPHERS = env_list("SSH_CIPHERS", ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"])
# Hosts no deployment may take, besides the base domain, www., EDGE_HOST, SSH_HOST and ALLOWED_HOSTS.
RESERVED_HOSTS = env_list("RESERVED_HOSTS", [])
CUSTOM_DOMAINS_PER_DEPLOYMENT = env_int("CUSTOM_DOMAINS_PER_DEPLOYMENT", 20)
CUSTOM_DOMAINS_PER_TEAM = env_int("CUSTOM_DOMAINS_PER_TEAM", 100)
# Optional proof of ownership: a TXT record _diploi-challenge.<domain> holding the team's token.
CUSTOM_DOMAIN_TXT_VERIFICATION = env_bool("CUSTOM_DOMAIN_TXT_VERIFICATION", False)
DNS_NAMESERVERS = env_list("DNS_NAMESERVERS", [])  # host or host:port; empty: the system's resolver
DNS_TIMEOUT_SECONDS = env_int("DNS_TIMEOUT_SECONDS", 3)

# The cluster: an explicit API URL (the emulator in scaled-out development and
# tests), else KUBECONFIG / ~/.kube/config, else in-cluster configuration.
# Standalone mode starts the emulator when none of these is found.
KUBE_API_URL = env_str("KUBE_API_URL")
# Set by standalone mode when it starts the emulator (or by hand when KUBE_API_URL
# points at one): the UI then says the cluster is simulated.
CLUSTER_SIMULATED = env_bool("CLUSTER_SIMULATED", False)
KUBECONFIG = env_str("KUBECONFIG")
KUBE_CONTEXT = env_str("KUBE_CONTEXT")
CLUSTER_INGRESS_CLASS = env_str("CLUSTER_INGRESS_CLASS", "nginx")
# The ingress controller's namespace: the only one whose pods may reach public components' ports.
CLUSTER_INGRESS_NAMESPACE = env_str("CLUSTER_INGRESS_NAMESPACE", "ingress-nginx")
CLUSTER_ISSUER = env_str("CLUSTER_ISSUER", "letsencrypt")
CLUSTER_STORAGE_CLASS = env_str("CLUSTER_STORAGE_CLASS")
CLUSTER_GIT_IMAGE = env_str("CLUSTER_GIT_IMAGE", "alpine/git:2.47.2")
CLUSTER_SFTP_IMAGE = env_str("CLUSTER_SFTP_IMAGE", "debian:12.11-slim")
CLUSTER_FIELD_MANAGER = "diploi"

# Builds (README "Builds"): where images are pushed (any OCI registry, `host/path`), and who builds them.
REGISTRY = env_str("REGISTRY", "registry.diploi.localhost/diploi")
# "cluster" (a BuildKit Job) or "external" (a CI reports, docs/api.md); a project may override it.
BUILD_RUNNER = env_str("BUILD_RUNNER", "cluster")
if BUILD_RUNNER not in ("cluster", "external"):
    raise ImproperlyConfigured(f"BUILD_RUNNER is “{BUILD_RUNNER}”: choose cluster or external.")
BUILD_NAMESPACE = env_str("BUILD_NAMESPACE", "diploi-builds")
BUILDKIT_IMAGE = env_str("BUILDKIT_IMAGE", "moby/buildkit:v0.29.0-rootless")
# A Secret in BUILD_NAMESPACE holding a docker `config.json` with the registry's push credentials.
BUILD_REGISTRY_SECRET = env_str("BUILD_REGISTRY_SECRET", "registry-push")
BUILD_CPU_REQUEST = env_str("BUILD_CPU_REQUEST", "500m")
BUILD_CPU_LIMIT = env_str("BUILD_CPU_LIMIT", "2")
BUILD_MEMORY_REQUEST = env_str("BUILD_MEMORY_REQUEST", "1Gi")
BUILD_MEMORY_LIMIT = env_str("BUILD_MEMORY_LIMIT", "4Gi")
BUILD_DEADLINE_SECONDS = env_int("BUILD_DEADLINE_SECONDS", 1800)
BUILD_RETENTION_SECONDS = env_int("BUILD_RETENTION_SECONDS", 3600)  # finished build Jobs are deleted after
BUILD_RESOLVE_TIMEOUT_SECONDS = env_int("BUILD_RESOLVE_TIMEOUT_SECONDS", 10)
BUILD_LOG_MAX_BYTES = env_int("BUILD_LOG_MAX_BYTES", 512 * 1024)
BUILD_POLL_SECONDS = env_int("BUILD_POLL_SECONDS", 2)
# Template actions: how long one may run when its spec says nothing (`timeout_seconds`), how much of
# its output is kept (the end), and how long a cancelled or timed-out command has to exit after its
# stdin closes (it is sent SIGTERM, then SIGKILL) before the stream to it is cut.
ACTION_TIMEOUT_SECONDS = env_int("ACTION_TIMEOUT_SECONDS", 600)
ACTION_OUTPUT_MAX_BYTES = env_int("ACTION_OUTPUT_MAX_BYTES", 64 * 1024)
ACTION_KILL_GRACE_SECONDS = env_int("ACTION_KILL_GRACE_SECONDS", 10)
# The key sealing secrets Diploi must read back (webhook secrets, deploy keys, repository tokens).
# Empty: derived from SECRET_KEY, so changing SECRET_KEY then makes them unreadable (rotate them).
SECRETS_ENCRYPTION_KEY = env_str("SECRETS_ENCRYPTION_KEY")
# The dashboard's public address, written into the CI workflow Diploi offers; empty: the request's.
PUBLIC_URL = env_str("PUBLIC_URL").rstrip("/")
# Status: how long a starting service may take before it counts as failing,
# and how long without news from the cluster before statuses turn "unknown".
STATUS_GRACE_SECONDS = env_int("STATUS_GRACE_SECONDS", 120)
STATUS_STALE_SECONDS = env_int("STATUS_STALE_SECONDS", 30)
CPU_SAMPLE_SECONDS = env_int("CPU_SAMPLE_SECONDS", 10)
# How often the watcher writing the statuses recomputes every deployment, events or not (grace
# periods and timeouts expire without any).
STATUS_RECOMPUTE_SECONDS = env_int("STATUS_RECOMPUTE_SECONDS", 10)
# The app's own status (the template's status_url), fetched through the API server's service proxy:
# how often, how long a request may take, how much of an answer is read, how many at once, and how
# long an app may stay silent before its "status unknown" turns yellow.
APP_STATUS_SECONDS = env_int("APP_STATUS_SECONDS", 10)
APP_STATUS_TIMEOUT_SECONDS = env_int("APP_STATUS_TIMEOUT_SECONDS", 3)
APP_STATUS_MAX_BYTES = env_int("APP_STATUS_MAX_BYTES", 64 * 1024)
APP_STATUS_CONCURRENCY = env_int("APP_STATUS_CONCURRENCY", 8)
APP_STATUS_GRACE_SECONDS = env_int("APP_STATUS_GRACE_SECONDS", 60)
# Work on one deployment is serialized by a lease. A working task's process renews it every third
# of this; a worker that died loses it after this long, and its work is taken over.
DEPLOYMENT_LEASE_SECONDS = env_int("DEPLOYMENT_LEASE_SECONDS", 15)
# Pending work whose task has not shown up this long after it was due (sent, or a retry scheduled),
# with nobody holding its lease, is taken as lost: the watcher's sweeper, every SWEEP_SECONDS,
# sends its task again. The database, not the broker, says what is pending.
LOST_TASK_SECONDS = env_int("LOST_TASK_SECONDS", 15)
SWEEP_SECONDS = env_int("SWEEP_SECONDS", 5)
DELETE_TIMEOUT_SECONDS = env_int("DELETE_TIMEOUT_SECONDS", 1800)
# A create, change or restart succeeds once the cluster shows it (rolled out and ready); one that
# still does not show it this long after it was applied fails, with the status's reason.
OPERATION_TIMEOUT_SECONDS = env_int("OPERATION_TIMEOUT_SECONDS", 600)
CLUSTER_REQUEST_TIMEOUT = env_int("CLUSTER_REQUEST_TIMEOUT", 15)
TEMPLATES_CATALOG_DIR = Path(env_str("TEMPLATES_CATALOG_DIR", str(BASE_DIR / "templates_catalog" / "catalog")))

# --- Health and metrics ---------------------------------------------------------
# /healthz, /readyz and /metrics on this port, in every process (0: off; the web
# process answers /healthz and /readyz on its own port as well).
HEALTH_PORT = env_int("HEALTH_PORT", 0)
HEALTH_HOST = env_str("HEALTH_HOST", "0.0.0.0")  # noqa: S104 - probes come to the pod's IP

# --- Logging --------------------------------------------------------------------
# LOG_FORMAT=json: one JSON object per line, with the deployment and operation ids where they apply.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "diploi_site.logs.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"},
        "json": {"()": "diploi_site.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Our cluster client reports connection failures itself, once and in words.
        "urllib3.connectionpool": {"level": "ERROR"},
        # The SSH gateway logs what matters itself; asyncssh's INFO is a line per channel event.
        "asyncssh": {"level": "WARNING"},
    },
}
