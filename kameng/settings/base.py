"""Base settings, read from the environment.

`DATABASE_URL` picks the database (embedded SQLite by default; PostgreSQL and MySQL/MariaDB supported),
`REDIS_URL` turns on the Redis cache and sessions, `CELERY_BROKER_URL` picks the broker (a filesystem queue
under var/ by default, so the demo needs no server). Encryption keys come from `KAMENG_ENCRYPTION_KEYS` and
`KAMENG_BLIND_INDEX_KEY`; `make demo` generates dev keys into `.env`, which is never committed.
"""

from __future__ import annotations

import os
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF, UNSAFE_EVAL, UNSAFE_INLINE

from kameng.core.files import private_directory_ensure

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("KAMENG_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()
if (BASE_DIR / ".env").exists() and not os.environ.get("KAMENG_IGNORE_DOTENV"):
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG and not env.bool("KAMENG_TESTING", default=False):
        raise RuntimeError("SECRET_KEY is not set: put it in the environment or in .env (make demo writes one).")
    SECRET_KEY = "insecure-development-only-" + "x" * 32  # only reachable with DEBUG or in tests

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
# Reverse proxies whose X-Forwarded-For is believed (kameng.core.http.client_address): an nginx on this host.
KAMENG_TRUSTED_PROXIES = frozenset(env.list("KAMENG_TRUSTED_PROXIES", default=["127.0.0.1", "::1"]))
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "kameng.core",
    "kameng.accounts",
    "kameng.catalog",
    "kameng.inventory",
    "kameng.ledger",
    "kameng.orders",
    "kameng.payments",
    "kameng.membership",
    "kameng.points",
    "kameng.risk",
    "kameng.notices",
    "kameng.suppliers",
    "kameng.resellers",
    "kameng.after_sales",
    "kameng.web",
]
# The built-in gateway simulators (/sim/) let the demo and the tests pay without internet. Off in production, where
# they are not installed at all: no tables, no admin pages, no URLs (kameng/urls.py), no tasks.
KAMENG_SIMULATORS_ENABLED = env.bool("KAMENG_SIMULATORS_ENABLED", default=DEBUG)
if KAMENG_SIMULATORS_ENABLED:
    INSTALLED_APPS += ["kameng.simulators", "kameng.simulators.epay_v2", "kameng.simulators.alipay",
                       "kameng.simulators.wechat", "kameng.simulators.unionpay"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Open API v1 calls (signed, no session or cookie) go from here to the view: the rest is a browser's.
    "kameng.web.middleware.OpenApiMiddleware",
    "kameng.web.middleware.ContentSecurityPolicyMiddleware",  # django-csp's, with the admin's allowances
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "kameng.web.middleware.ChosenLanguageMiddleware",  # Chinese unless the visitor chose English
    "kameng.web.middleware.FormCharsetMiddleware",  # a form body Django cannot decode: 400 before anything reads it
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "kameng.core.device.DeviceIdMiddleware",  # sets the device cookie when a page asked for an id it lacked
    "kameng.web.middleware.LazyMessageMiddleware",  # Django's, building the storage only when it is used
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "kameng.web.affiliate.AffiliateMiddleware",  # ?aff=<invite code> → a signed cookie (reseller attribution)
    # Last, so that it sees every view's exception first: the database out of reach is a 503, not a 500.
    "kameng.web.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "kameng.urls"
WSGI_APPLICATION = "kameng.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------------------
private_directory_ensure(VAR_DIR)  # the database, the queue and uploads: owner only (kameng.core.files)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'kameng.sqlite3'}")}
_engine = DATABASES["default"]["ENGINE"]
if _engine.endswith("sqlite3"):
    DATABASES["default"]["ENGINE"] = "kameng.core.sqlite3"  # Django's, creating the database file 0600, not 0644
    # IMMEDIATE transactions take the write lock up front, so concurrent writers queue instead of failing
    # with "database is locked" half-way through a checkout.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 20})
elif _engine.endswith("mysql"):
    import pymysql

    pymysql.install_as_MySQLdb()
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"charset": "utf8mb4", "isolation_level": "read committed"}
    )
elif _engine.endswith("postgresql"):
    # Connections per server process stay bounded by its threads. By default each thread keeps one persistent
    # connection (CONN_MAX_AGE), closed when the thread ends (kameng.core.db): granian ends threads idle for
    # --blocking-threads-idle-timeout and starts new ones when load returns, and a retired thread's connection
    # used to stay open until the garbage collector ran, until PostgreSQL refused new clients. DATABASE_POOL=1
    # takes them from Django's psycopg pool instead (CONN_MAX_AGE 0): a hard bound of DATABASE_POOL_MAX_SIZE per
    # process whatever the threads do, for ~25 µs of CPU per request to borrow and return one. DEVELOPERS.md has
    # the sizing.
    if env.bool("DATABASE_POOL", default=False):
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=1),
            "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=25),
            # A request waits this long for a free connection, then answers 503 (kameng.core.unavailable).
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
            # Connections above min_size idle this long are closed: the pool shrinks back after a burst.
            "max_idle": env.float("DATABASE_POOL_MAX_IDLE", default=300.0),
        }
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    # A health check is a `SELECT 1` round trip at the start of every request that reuses a connection: it saves
    # the first request on each connection after a database restart from an error, for 0.1-0.2 ms of CPU on every
    # request (4-12 % of checkout throughput, bench/README.md). Off by default, as in Django: a connection that
    # fails is closed at the end of that request, and a checkout that fails before COMMIT leaves nothing behind
    # (its request id makes the retry safe). Turn it on where idle connections get cut (some networks, poolers).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_CONN_HEALTH_CHECKS", default=False)
    # Prepared statements: server-side parameter binding (psycopg's Cursor instead of Django's default ClientCursor)
    # lets psycopg prepare a statement once a connection ran it DATABASE_PREPARE_THRESHOLD times; PostgreSQL then
    # skips parsing and planning it: 3.75 -> 2.5-2.75 ms of PostgreSQL CPU per checkout (bench/README.md). Set
    # DATABASE_PREPARED_STATEMENTS=0 behind a transaction-mode pooler (PgBouncer < 1.21) that cannot keep them.
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            {"server_side_binding": True, "prepare_threshold": env.int("DATABASE_PREPARE_THRESHOLD", default=5)}
        )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache and sessions ----------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "kameng.core.cache.RedisCache",  # Django's, reusing one client per pool
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="kameng"),
        }
    }
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["kameng.accounts.backends.UsernameOrPhoneBackend"]
# Django's checks with kameng's wording (kameng.accounts.validators), plus two of kameng's own.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "kameng.accounts.validators.UserAttributeSimilarityValidator",
     "OPTIONS": {"user_attributes": ("username", "first_name", "last_name", "email", "phone")}},
    {"NAME": "kameng.accounts.validators.MinimumLengthValidator"},
    {"NAME": "kameng.accounts.validators.NotBlankPasswordValidator"},
    {"NAME": "kameng.accounts.validators.NoLoginInPasswordValidator"},
    {"NAME": "kameng.accounts.validators.CommonPasswordValidator"},
    {"NAME": "kameng.accounts.validators.NumericPasswordValidator"},
]
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:home"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_SAMESITE = "Lax"

# --- HTTPS and browser protections -------------------------------------------------------------------------
# Behind a TLS-terminating proxy (nginx) that sets X-Forwarded-Proto: believe it for request.is_secure(), so that
# secure redirects, CSRF's origin check and absolute URLs say https. Only where the proxy overwrites the header:
# a client could send it itself otherwise.
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# HSTS: browsers refuse plain HTTP to this host for this long once they saw it over HTTPS. Off until the site is
# served over HTTPS for good (start small, e.g. 300, then 31536000); it cannot be taken back before it expires.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Content-Security-Policy (django-csp): the browser runs only this site's own scripts and styles, so HTML that gets
# into a page (the gateway's form, rendered as it came) cannot run code; an inline <script> or <style> we need
# carries the request's nonce. No form-action: a gateway form posts to the gateway.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],  # data: for the favicon placeholder
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
    },
}
# The admin (django-unfold) runs Alpine.js, which evaluates its x-data/x-on expressions with Function() (needs
# 'unsafe-eval'), and its templates and Alpine's x-bind:style set style attributes (need 'unsafe-inline' for styles).
# Scripts stay this site's own files: no inline script runs there either. Staff pages render no gateway HTML.
KAMENG_ADMIN_CSP_REPLACE = {"script-src": [SELF, UNSAFE_EVAL], "style-src": [SELF, UNSAFE_INLINE]}

# --- i18n ------------------------------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "kameng" / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"
# Product pictures. Django serves them only with DEBUG (the demo); in production the web server does
# (DEVELOPERS.md: nginx `location /media/`).
MEDIA_URL = "/media/"
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024

# --- background jobs -------------------------------------------------------------------------------------
_queue_dir = VAR_DIR / "queue"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem"):
    for _sub in ("out", "processed", "control"):
        (_queue_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # kombu's default is ./control, left in whatever directory the worker was started from.
        "control_folder": str(_queue_dir / "control"),
        "data_folder_in": str(_queue_dir / "out"),
        "data_folder_out": str(_queue_dir / "out"),
        "processed_folder": str(_queue_dir / "processed"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A task taken by a worker that dies (kill -9, OOM) without acknowledging it (acks_late) is handed out again
    # only after this many seconds; Redis's default is an hour. It must stay longer than the longest task runs
    # (plus any countdown), or a task still running is delivered a second time: see DEVELOPERS.md.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("KAMENG_BROKER_VISIBILITY_TIMEOUT_SECONDS", default=600)}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = TIME_ZONE
# Celery's Django fixup closes the task thread's database connections outright before and after every task; with
# this set it does so only once every this many tasks, and kameng.celery.database_connections_recycle closes the
# broken and obsolete ones (CONN_MAX_AGE) around each task instead: a new connection per task cost PostgreSQL a
# backend start and cold caches each time (bench/README.md, direct top-ups 2026-12-04).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
# Imported by every worker at start, before a prefork worker forks: its signals make each worker process host a
# direct top-up dispatcher and due poller (kameng/suppliers/worker.py).
CELERY_IMPORTS = ["kameng.suppliers.worker"]

# --- kameng ----------------------------------------------------------------------------------------------
# "kid:base64(32 bytes)" entries, comma separated; the first one encrypts, all of them decrypt.
KAMENG_ENCRYPTION_KEYS = env.str("KAMENG_ENCRYPTION_KEYS", default="")
KAMENG_BLIND_INDEX_KEY = env.str("KAMENG_BLIND_INDEX_KEY", default="")
KAMENG_ORDER_PAYMENT_MINUTES = env.int("KAMENG_ORDER_PAYMENT_MINUTES", default=15)
# Login throttling, storefront and admin alike (kameng/accounts/throttle.py): wrong passwords per account from one
# client address / per client address within the lock window; past BACKOFF_AFTER failures of one account in a day
# from anywhere, a doubling wait before each try (up to BACKOFF_MAX_SECONDS) from addresses it never logged in from.
KAMENG_LOGIN_MAX_FAILURES = env.int("KAMENG_LOGIN_MAX_FAILURES", default=5)
KAMENG_LOGIN_MAX_FAILURES_PER_ADDRESS = env.int("KAMENG_LOGIN_MAX_FAILURES_PER_ADDRESS", default=300)
KAMENG_LOGIN_LOCK_SECONDS = env.int("KAMENG_LOGIN_LOCK_SECONDS", default=900)
KAMENG_LOGIN_ACCOUNT_BACKOFF_AFTER = env.int("KAMENG_LOGIN_ACCOUNT_BACKOFF_AFTER", default=20)
KAMENG_LOGIN_ACCOUNT_BACKOFF_MAX_SECONDS = env.int("KAMENG_LOGIN_ACCOUNT_BACKOFF_MAX_SECONDS", default=300)
# Payment PIN and password-free payment (kameng/accounts/paypin.py): wrong PINs in a row that lock the PIN, for how
# long; the highest password-free (免密) limit a buyer may set (0 turns password-free payment off for everyone);
# how recent a login must be for an account without a login password to set its first PIN.
KAMENG_PAYMENT_PIN_MAX_FAILURES = env.int("KAMENG_PAYMENT_PIN_MAX_FAILURES", default=5)
KAMENG_PAYMENT_PIN_LOCK_SECONDS = env.int("KAMENG_PAYMENT_PIN_LOCK_SECONDS", default=900)
KAMENG_PASSWORD_FREE_MAX = env.str("KAMENG_PASSWORD_FREE_MAX", default="200.00")
KAMENG_PAYMENT_PIN_FRESH_LOGIN_SECONDS = env.int("KAMENG_PAYMENT_PIN_FRESH_LOGIN_SECONDS", default=600)
# Registration throttling per client address (IPv6: per /64): accounts made, and "name not available" answers.
KAMENG_REGISTRATIONS_PER_ADDRESS_PER_HOUR = env.int("KAMENG_REGISTRATIONS_PER_ADDRESS_PER_HOUR", default=5)
KAMENG_REGISTRATION_REFUSALS_PER_ADDRESS_PER_HOUR = env.int("KAMENG_REGISTRATION_REFUSALS_PER_ADDRESS_PER_HOUR",
                                                            default=20)
# Real-name verification (实名, kameng/accounts/realname.py): the provider (kameng/accounts/verification.py) —
# "local" answers without a network and verifies every valid number, so it is the default only with DEBUG on;
# "tencent" is Tencent Cloud FaceID IdCardVerification. Attempts per account per day (each provider call is billed),
# and how many accounts one person (one ID number) may verify.
KAMENG_IDENTITY_BACKEND = env.str("KAMENG_IDENTITY_BACKEND", default="local" if DEBUG else "tencent")
KAMENG_TENCENTCLOUD_SECRET_ID = env.str("KAMENG_TENCENTCLOUD_SECRET_ID", default="")
KAMENG_TENCENTCLOUD_SECRET_KEY = env.str("KAMENG_TENCENTCLOUD_SECRET_KEY", default="")
KAMENG_FACEID_REGION = env.str("KAMENG_FACEID_REGION", default="ap-guangzhou")
KAMENG_FACEID_ENDPOINT = env.str("KAMENG_FACEID_ENDPOINT", default="")  # default faceid.tencentcloudapi.com
KAMENG_FACEID_TIMEOUT_SECONDS = env.int("KAMENG_FACEID_TIMEOUT_SECONDS", default=10)
KAMENG_REALNAME_ATTEMPTS_PER_DAY = env.int("KAMENG_REALNAME_ATTEMPTS_PER_DAY", default=5)
KAMENG_REALNAME_ACCOUNTS_PER_IDENTITY = env.int("KAMENG_REALNAME_ACCOUNTS_PER_IDENTITY", default=1)
# Phone login (kameng/accounts/phone_login.py): SMS codes of 6 digits, good for KAMENG_SMS_CODE_SECONDS and
# KAMENG_SMS_CODE_MAX_ATTEMPTS wrong tries; one code per number every KAMENG_SMS_RESEND_SECONDS, and at most so many
# an hour / a day per number, an hour per client address (IPv6: per /64) and per device (kameng/core/device.py).
KAMENG_SMS_CODE_SECONDS = env.int("KAMENG_SMS_CODE_SECONDS", default=300)
KAMENG_SMS_CODE_MAX_ATTEMPTS = env.int("KAMENG_SMS_CODE_MAX_ATTEMPTS", default=5)
KAMENG_SMS_RESEND_SECONDS = env.int("KAMENG_SMS_RESEND_SECONDS", default=60)
KAMENG_SMS_PER_PHONE_PER_HOUR = env.int("KAMENG_SMS_PER_PHONE_PER_HOUR", default=5)
KAMENG_SMS_PER_PHONE_PER_DAY = env.int("KAMENG_SMS_PER_PHONE_PER_DAY", default=10)
KAMENG_SMS_PER_ADDRESS_PER_HOUR = env.int("KAMENG_SMS_PER_ADDRESS_PER_HOUR", default=20)
KAMENG_SMS_PER_DEVICE_PER_HOUR = env.int("KAMENG_SMS_PER_DEVICE_PER_HOUR", default=10)
# One-tap exchanges (each a paid call to the carrier) per client address an hour.
KAMENG_ONETAP_PER_ADDRESS_PER_HOUR = env.int("KAMENG_ONETAP_PER_ADDRESS_PER_HOUR", default=30)
# Who sends SMS codes (kameng/accounts/sms.py): console (the log; development and the demo) | aliyun | tencent.
KAMENG_SMS_BACKEND = env.str("KAMENG_SMS_BACKEND", default="console")
KAMENG_SMS_ALIYUN_ACCESS_KEY_ID = env.str("KAMENG_SMS_ALIYUN_ACCESS_KEY_ID", default="")
KAMENG_SMS_ALIYUN_ACCESS_KEY_SECRET = env.str("KAMENG_SMS_ALIYUN_ACCESS_KEY_SECRET", default="")
KAMENG_SMS_ALIYUN_SIGN_NAME = env.str("KAMENG_SMS_ALIYUN_SIGN_NAME", default="")
KAMENG_SMS_ALIYUN_TEMPLATE_CODE = env.str("KAMENG_SMS_ALIYUN_TEMPLATE_CODE", default="")  # SMS_123456789, ${code}
KAMENG_SMS_ALIYUN_ENDPOINT = env.str("KAMENG_SMS_ALIYUN_ENDPOINT", default="dysmsapi.aliyuncs.com")
KAMENG_SMS_TENCENT_SECRET_ID = env.str("KAMENG_SMS_TENCENT_SECRET_ID", default="")
KAMENG_SMS_TENCENT_SECRET_KEY = env.str("KAMENG_SMS_TENCENT_SECRET_KEY", default="")
KAMENG_SMS_TENCENT_SDK_APP_ID = env.str("KAMENG_SMS_TENCENT_SDK_APP_ID", default="")
KAMENG_SMS_TENCENT_SIGN_NAME = env.str("KAMENG_SMS_TENCENT_SIGN_NAME", default="")
KAMENG_SMS_TENCENT_TEMPLATE_ID = env.str("KAMENG_SMS_TENCENT_TEMPLATE_ID", default="")  # one parameter: {1} = code
KAMENG_SMS_TENCENT_REGION = env.str("KAMENG_SMS_TENCENT_REGION", default="ap-guangzhou")
# One-tap login (kameng/accounts/onetap.py): "" (off) | aliyun (号码认证 GetMobile) | simulator (the demo's carrier
# at /sim/onetap/; only with KAMENG_SIMULATORS_ENABLED, otherwise off).
KAMENG_ONETAP_BACKEND = env.str("KAMENG_ONETAP_BACKEND", default="simulator" if KAMENG_SIMULATORS_ENABLED else "")
KAMENG_ONETAP_ALIYUN_ACCESS_KEY_ID = env.str("KAMENG_ONETAP_ALIYUN_ACCESS_KEY_ID", default="")
KAMENG_ONETAP_ALIYUN_ACCESS_KEY_SECRET = env.str("KAMENG_ONETAP_ALIYUN_ACCESS_KEY_SECRET", default="")
KAMENG_ONETAP_ALIYUN_ENDPOINT = env.str("KAMENG_ONETAP_ALIYUN_ENDPOINT", default="dypnsapi.aliyuncs.com")
# An original-channel refund whose outcome the gateway still has not confirmed after this long goes to staff review.
KAMENG_REFUND_REVIEW_AFTER_HOURS = env.int("KAMENG_REFUND_REVIEW_AFTER_HOURS", default=24)
KAMENG_SWEEP_STUCK_AFTER_SECONDS = env.int("KAMENG_SWEEP_STUCK_AFTER_SECONDS", default=60)
KAMENG_MAX_ORDER_QUANTITY = env.int("KAMENG_MAX_ORDER_QUANTITY", default=500)
# After-sales requests (售后申请, kameng.after_sales): a buyer may ask this many days after delivery (exactly that long
# after still counts).
KAMENG_AFTER_SALES_WINDOW_DAYS = env.int("KAMENG_AFTER_SALES_WINDOW_DAYS", default=7)
# Unpaid orders (keys reserved for the payment window) one buyer may hold at once; the next one is refused.
KAMENG_UNPAID_ORDERS_PER_BUYER = env.int("KAMENG_UNPAID_ORDERS_PER_BUYER", default=3)
# Bounds on keys held by unpaid orders (kameng/orders/reservations.py has the design): unpaid orders per client
# address; the share of a SKU's unsold stock unpaid orders may hold in total and per buyer; how close to its deadline
# an unpaid order's keys may be taken over by a buyer paying from the wallet who finds none available.
KAMENG_UNPAID_ORDERS_PER_ADDRESS = env.int("KAMENG_UNPAID_ORDERS_PER_ADDRESS", default=6)
KAMENG_UNPAID_STOCK_SHARE = env.float("KAMENG_UNPAID_STOCK_SHARE", default=0.5)
KAMENG_UNPAID_STOCK_SHARE_PER_BUYER = env.float("KAMENG_UNPAID_STOCK_SHARE_PER_BUYER", default=0.25)
KAMENG_UNPAID_TAKEOVER_SECONDS = env.int("KAMENG_UNPAID_TAKEOVER_SECONDS", default=120)
# Price rules (kameng/catalog/pricing.py): dotted paths of callables applied in order to every SKU price.
# On by default: membership levels and member prices (kameng/membership/pricing.py); "" in the env turns them off.
KAMENG_PRICE_RULES = env.list("KAMENG_PRICE_RULES", default=["kameng.membership.pricing.member_price_rule",
                                                             "kameng.resellers.pricing.reseller_price_rule"])
# Aftercare listeners (kameng/orders/aftercare.py): dotted paths told after commit when orders are delivered or
# refunded. Membership counts spend there (kameng/membership/services.py).
KAMENG_ORDER_AFTERCARE = env.list("KAMENG_ORDER_AFTERCARE", default=[
    "kameng.membership.services.membership_orders_count",
    "kameng.notices.listeners.orders_delivered_email",
    "kameng.points.services.points_aftercare",
    "kameng.suppliers.settlement.settlement_aftercare",
    "kameng.suppliers.restock.restock_orders_delivered",
    "kameng.resellers.notify.notify_aftercare",
    "kameng.resellers.earnings.earnings_aftercare",
])
# How long a server process gathers the orders it tells the listeners about into one task (seconds; 0: each
# commit's orders as soon as the sender is free).
KAMENG_ORDER_AFTERCARE_GATHER_SECONDS = env.float("KAMENG_ORDER_AFTERCARE_GATHER_SECONDS", default=1.0)
# Supplier money (kameng/suppliers/settlement.py, withdrawals.py): how far back the settlement sweeper looks for
# orders the aftercare listener missed; the smallest withdrawal a supplier may request (yuan).
KAMENG_SUPPLIER_SETTLEMENT_SWEEP_HOURS = env.int("KAMENG_SUPPLIER_SETTLEMENT_SWEEP_HOURS", default=72)
KAMENG_SUPPLIER_WITHDRAWAL_MIN = env.str("KAMENG_SUPPLIER_WITHDRAWAL_MIN", default="100.00")
# Points (积分, kameng/points): earned per yuan of cash paid on a completed order (rounded down); how many points
# offset one yuan at checkout; the largest share of an order points may offset; days after which earned points
# expire (empty: never), by a daily task, oldest first.
KAMENG_POINTS_PER_YUAN = env.int("KAMENG_POINTS_PER_YUAN", default=1)
KAMENG_POINTS_PER_YUAN_REDEEMED = env.int("KAMENG_POINTS_PER_YUAN_REDEEMED", default=100)
KAMENG_POINTS_REDEEM_MAX_SHARE = env.str("KAMENG_POINTS_REDEEM_MAX_SHARE", default="0.5")
KAMENG_POINTS_EXPIRY_DAYS = env.int("KAMENG_POINTS_EXPIRY_DAYS", default=None)
# Group commit (PostgreSQL only): wallet checkouts that arrive together are written in one transaction by a writer
# thread per server process (kameng/orders/group_commit.py). It batches only what is in flight at once, so the
# server needs threads: granian --blocking-threads 32 (or gunicorn gthread) rather than a handful of sync workers.
KAMENG_CHECKOUT_GROUP_COMMIT = env.bool("KAMENG_CHECKOUT_GROUP_COMMIT", default=True)
KAMENG_CHECKOUT_GROUP_MAX = env.int("KAMENG_CHECKOUT_GROUP_MAX", default=64)
KAMENG_CHECKOUT_GROUP_WRITERS = env.int("KAMENG_CHECKOUT_GROUP_WRITERS", default=1)
KAMENG_CHECKOUT_GROUP_GATHER_SECONDS = env.float("KAMENG_CHECKOUT_GROUP_GATHER_SECONDS", default=0.015)
KAMENG_CHECKOUT_GROUP_WAIT_SECONDS = env.float("KAMENG_CHECKOUT_GROUP_WAIT_SECONDS", default=30.0)
# Fulfillers of delivery kinds that live above orders in the layers (kameng/orders/fulfilment.py): dotted paths by
# delivery kind, merged over the built-in ones. Direct top-up (直充) is routed and submitted by the suppliers.
KAMENG_FULFILLERS = {"direct_topup": "kameng.suppliers.topup.order_fulfil_direct_topup"}
# Paid orders fulfilled later go to the worker as `fulfil_orders` tasks of at most this many orders: whatever a
# process committed since its last send (kameng/orders/fulfilment_queue.py).
KAMENG_FULFIL_BATCH_MAX = env.int("KAMENG_FULFIL_BATCH_MAX", default=50)
# Direct top-up pipeline (kameng/suppliers/topup.py, dispatch.py): threads per worker process that call suppliers
# concurrently (each call waits on the upstream, not on the CPU); seconds an attempt left RECORDED waits before the
# sweeper re-drives it, and a submit in flight may take before its attempt is queried; the first query of a result
# not known yet, and of one processing at an upstream without callbacks (then doubling up to BACKOFF_MAX); how long
# a processing attempt waits for its callback before it is queried; how long after a submit the upstream's "no such
# order" is believed (then the same number is submitted again, at most SUBMIT_MAX submits in all, and never while a
# submit's answer is outstanding); queries after which staff must look (需人工核查).
KAMENG_TOPUP_DISPATCH_THREADS = env.int("KAMENG_TOPUP_DISPATCH_THREADS", default=256)
KAMENG_TOPUP_REDRIVE_AFTER_SECONDS = env.int("KAMENG_TOPUP_REDRIVE_AFTER_SECONDS", default=30)
KAMENG_TOPUP_SUBMIT_TIMEOUT_SECONDS = env.int("KAMENG_TOPUP_SUBMIT_TIMEOUT_SECONDS", default=60)
KAMENG_TOPUP_QUERY_FIRST_SECONDS = env.int("KAMENG_TOPUP_QUERY_FIRST_SECONDS", default=5)
KAMENG_TOPUP_BACKOFF_MAX_SECONDS = env.int("KAMENG_TOPUP_BACKOFF_MAX_SECONDS", default=600)
KAMENG_TOPUP_CALLBACK_WAIT_SECONDS = env.int("KAMENG_TOPUP_CALLBACK_WAIT_SECONDS", default=120)
KAMENG_TOPUP_NOT_FOUND_GRACE_SECONDS = env.int("KAMENG_TOPUP_NOT_FOUND_GRACE_SECONDS", default=60)
KAMENG_TOPUP_QUERY_MAX = env.int("KAMENG_TOPUP_QUERY_MAX", default=30)
KAMENG_TOPUP_SUBMIT_MAX = env.int("KAMENG_TOPUP_SUBMIT_MAX", default=3)
# How the worker hears that a weakly signed callback (Fulu) made an attempt due for a query: "task" (one
# query_topups task per callback) or "poll" (the worker's due poller claims every due attempt at once, every
# KAMENG_TOPUP_DUE_POLL_SECONDS; kameng.suppliers.dispatch).
# "poll" is the production wiring: each worker process hosting a dispatcher runs the poller
# (kameng/suppliers/worker.py); the callback's request then only makes its attempt due.
KAMENG_TOPUP_CALLBACK_PROMPT = env.str("KAMENG_TOPUP_CALLBACK_PROMPT", default="poll")
KAMENG_TOPUP_DUE_POLL_SECONDS = env.float("KAMENG_TOPUP_DUE_POLL_SECONDS", default=0.2)
# Seconds a web process holds a supplier's connector (its decrypted config) for the callbacks it receives: a config
# changed in the admin is used for callbacks that much later (kameng/suppliers/callbacks.py).
KAMENG_TOPUP_CALLBACK_CONNECTOR_SECONDS = env.float("KAMENG_TOPUP_CALLBACK_CONNECTOR_SECONDS", default=2.0)
KAMENG_TOPUP_MIN = env.str("KAMENG_TOPUP_MIN", default="1.00")
KAMENG_TOPUP_MAX = env.str("KAMENG_TOPUP_MAX", default="50000.00")
# Gateway notifications (kameng/payments/intake.py): a body or query larger than this is refused unread (real
# notifications are a few KB); a client address whose notifications were refused this many times within a minute
# is answered 429 without a row until the minute is over.
KAMENG_NOTIFY_MAX_BYTES = env.int("KAMENG_NOTIFY_MAX_BYTES", default=16 * 1024)
KAMENG_NOTIFY_REJECTIONS_PER_ADDRESS = env.int("KAMENG_NOTIFY_REJECTIONS_PER_ADDRESS", default=20)
# Reseller tiers (kameng/resellers/tiers.py): where the platform's supply cost of SKUs comes from (a dotted path of
# `(sku_ids) -> {sku_id: cost}`, the cheapest active supplier offer); a tier price is never below
# max(floor price, that cost). Batch purchase (批量采购, kameng/web/views/reseller_batch.py) and the Open API take up
# to KAMENG_BATCH_PURCHASE_MAX units of one SKU in one order (the product's own max_quantity is the storefront's).
KAMENG_SKU_SUPPLY_COST = env.str("KAMENG_SKU_SUPPLY_COST", default="kameng.suppliers.selectors.sku_supply_costs")
KAMENG_BATCH_PURCHASE_MAX = env.int("KAMENG_BATCH_PURCHASE_MAX", default=1000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_secrets": {"()": "kameng.core.logging.MaskSecretsFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["mask_secrets"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django's own defaults give "django" a console handler of its own (when DEBUG) that has no mask: its
        # records go through the masked root handler instead.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # runserver's access log (the demo's web process) has a handler of its own without the mask.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # httpx logs every request URL at INFO, query string and all: an epay V1 query carries the merchant key.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # Tencent Cloud's SDK logs whole requests at DEBUG: a real-name check's body holds the name and ID number.
        "tencentcloud_sdk_common": {"level": "WARNING"},
    },
}

UNFOLD = {
    "SITE_TITLE": "kameng 管理后台",
    "SITE_HEADER": "kameng",
    "SITE_SYMBOL": "storefront",
    "SHOW_LANGUAGES": True,
    "SITE_FAVICONS": [{"rel": "icon", "type": "image/svg+xml", "href": "kameng.core.admin.admin_favicon_url"}],
}
KAMENG_BANNED_KEYWORDS = env.list("KAMENG_BANNED_KEYWORDS", default=["赌博", "博彩", "色情", "外挂"])
KAMENG_IMPORT_INLINE_LIMIT = env.int("KAMENG_IMPORT_INLINE_LIMIT", default=2000)
# Card-key bidding (kameng/inventory/services.py): which suppliers' keys of a SKU may be sold, in what order.
KAMENG_CARD_KEY_SOURCES = "kameng.suppliers.card_key_bidding.card_key_sources"
# Supplier ratings (kameng/suppliers/ratings.py): the window they are computed over, and the orders a supplier needs
# in it before its stars move from 3.00.
KAMENG_SUPPLIER_RATING_WINDOW_DAYS = env.int("KAMENG_SUPPLIER_RATING_WINDOW_DAYS", default=30)
KAMENG_SUPPLIER_RATING_MIN_ORDERS = env.int("KAMENG_SUPPLIER_RATING_MIN_ORDERS", default=20)

# --- supplier onboarding (kameng/suppliers/onboarding.py) ---------------------------------------------------
# Qualification documents live here, owner-only and outside MEDIA_ROOT (which the web server publishes); they
# are read only through the permission-checked download view.
KAMENG_SUPPLIER_DOCUMENTS_DIR = Path(env.str("KAMENG_SUPPLIER_DOCUMENTS_DIR",
                                             default=str(VAR_DIR / "private" / "supplier-documents")))
KAMENG_SUPPLIER_DOCUMENT_MAX_BYTES = env.int("KAMENG_SUPPLIER_DOCUMENT_MAX_BYTES", default=10 * 1024 * 1024)
# Staff approve a supplier only after a passing sample test (样品测试) of its goods.
KAMENG_SUPPLIER_SAMPLE_TEST_REQUIRED = env.bool("KAMENG_SUPPLIER_SAMPLE_TEST_REQUIRED", default=True)

# --- e-mail ----------------------------------------------------------------------------------------------
# The buyer's e-mails (kameng/notices): the delivery notice and the link that confirms a notification address.
# With DEBUG (the demo) they are printed by the process that sends them (the Celery worker for the delivery
# notice); in production set EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend (the default without DEBUG)
# and the SMTP server below. EMAIL_USE_TLS (STARTTLS, usually port 587) and EMAIL_USE_SSL (port 465) exclude each
# other.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend" if DEBUG
                        else "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="kameng <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Put the card secrets in the delivery e-mail. Off by default: an e-mail is copied to mail servers and devices the
# platform does not control, and anyone reading the mailbox has the keys; the e-mail links to the order page.
KAMENG_EMAIL_INCLUDE_KEYS = env.bool("KAMENG_EMAIL_INCLUDE_KEYS", default=False)
# A notification address is set by opening a link sent to it, valid this many hours; confirmation e-mails are
# bounded per account and per address to this many a day (so the form cannot be used to mail someone repeatedly).
KAMENG_EMAIL_CONFIRM_HOURS = env.int("KAMENG_EMAIL_CONFIRM_HOURS", default=24)
KAMENG_EMAIL_CONFIRMATIONS_PER_DAY = env.int("KAMENG_EMAIL_CONFIRMATIONS_PER_DAY", default=3)
# Open API order notifications (kameng/resellers/notify.py): private, loopback and link-local targets and plain
# http are refused unless this is on (the demo) — one rule, applied by kameng.core.ssrf when POST /orders takes a
# notify_url (422) and again at every send; the POST's timeout; the retry backoff (first wait, doubling, capped)
# and how long retries go on before giving up.
KAMENG_NOTIFY_ALLOW_PRIVATE = env.bool("KAMENG_NOTIFY_ALLOW_PRIVATE", default=DEBUG)
KAMENG_NOTIFY_TIMEOUT_SECONDS = env.float("KAMENG_NOTIFY_TIMEOUT_SECONDS", default=5.0)
KAMENG_NOTIFY_BACKOFF_FIRST_SECONDS = env.int("KAMENG_NOTIFY_BACKOFF_FIRST_SECONDS", default=15)
KAMENG_NOTIFY_BACKOFF_MAX_SECONDS = env.int("KAMENG_NOTIFY_BACKOFF_MAX_SECONDS", default=3600)
KAMENG_NOTIFY_RETRY_WINDOW_SECONDS = env.int("KAMENG_NOTIFY_RETRY_WINDOW_SECONDS", default=24 * 3600)

# --- sub-sites (分站, kameng/resellers/subsites.py, kameng/web/subsites.py) ------------------------------------
# The platform's own domain (e.g. "kameng.example.com"): a sub-site is served at `<slug>.<this domain>` as well as at
# /s/<slug>/. It and its subdomains are added to ALLOWED_HOSTS. Custom domains bound by resellers are NOT put in
# ALLOWED_HOSTS: the first middleware (kameng.web.subsites.SubSiteMiddleware) accepts a Host that ALLOWED_HOSTS
# does not only when it is a verified custom domain of a sub-site (held per process, reloaded within a second of a
# change), and answers 400 to any other, as Django would.
KAMENG_SITE_DOMAIN = env.str("KAMENG_SITE_DOMAIN", default="").strip().lower().rstrip(".")
if KAMENG_SITE_DOMAIN:
    ALLOWED_HOSTS = [*ALLOWED_HOSTS, "." + KAMENG_SITE_DOMAIN]
MIDDLEWARE.insert(0, "kameng.web.subsites.SubSiteMiddleware")  # first: it validates the Host before anything reads it
# Custom-domain verification by file fetches http://<domain>/.well-known/kameng-verify.txt: a domain resolving to a
# loopback, private or reserved address is refused unless this is on (a local demo only).
KAMENG_SUBSITE_VERIFY_ALLOW_PRIVATE = env.bool("KAMENG_SUBSITE_VERIFY_ALLOW_PRIVATE", default=False)
# The sub-site price rule comes LAST, after every rule that makes a reseller's own cost (it prices from that cost).
# Keep this the last change to KAMENG_PRICE_RULES; a KAMENG_PRICE_RULES set in the environment is taken as it is
# (list kameng.resellers.pricing_subsite.subsite_price_rule last in it for sub-sites to price).
if "KAMENG_PRICE_RULES" not in os.environ:
    KAMENG_PRICE_RULES = [*KAMENG_PRICE_RULES, "kameng.resellers.pricing_subsite.subsite_price_rule"]
# acg-faka 店铺共享 docking (kameng/openapi/acg_shared.py): existing 异次元发卡 sites take this site as their upstream
# at /openapi/acg with an Open API key (app_id = key id, app_key = secret). Weaker than the Open API v1 (MD5, the
# secret in every request body, no timestamp or nonce: replayable), so on by default only with DEBUG (the demo);
# turn it on in production only for resellers who need it. The shop name it reports to the docking site.
KAMENG_ACG_SHARED_ENABLED = env.bool("KAMENG_ACG_SHARED_ENABLED", default=DEBUG)
KAMENG_ACG_SHARED_SHOP_NAME = env.str("KAMENG_ACG_SHARED_SHOP_NAME", default="kameng 卡盟商城")

# --- reseller earnings (kameng/resellers/earnings.py, referrals.py, commission_withdrawals.py) -------------------
# Days a sub-site margin or a commission waits after delivery before it is confirmed (staff may override it in the
# commission settings); how long an `?aff=<invite code>` link keeps its visitor attributed (the signed cookie's
# life); the smallest commission withdrawal to a bank account, in yuan.
KAMENG_RESELLER_CONFIRM_DAYS = env.int("KAMENG_RESELLER_CONFIRM_DAYS", default=7)
KAMENG_AFF_COOKIE_DAYS = env.int("KAMENG_AFF_COOKIE_DAYS", default=30)
KAMENG_RESELLER_WITHDRAWAL_MIN = env.str("KAMENG_RESELLER_WITHDRAWAL_MIN", default="100.00")

# --- Open API v1 (kameng/openapi, kameng/resellers/apikeys.py, nonces.py) ---------------------------------------
# Signed requests per API key per minute (0: no limit); past it 429 with Retry-After.
KAMENG_OPENAPI_RATE_PER_MINUTE = env.int("KAMENG_OPENAPI_RATE_PER_MINUTE", default=3000)
# Where used nonces are kept: "auto" (Redis cache when REDIS_URL is set, else a database table), "cache", "database".
KAMENG_OPENAPI_NONCE_STORE = env.str("KAMENG_OPENAPI_NONCE_STORE", default="auto")
# Keys a reseller may hold at once (revoked ones not counted).
KAMENG_OPENAPI_KEYS_PER_RESELLER = env.int("KAMENG_OPENAPI_KEYS_PER_RESELLER", default=10)
# notify_url follows KAMENG_NOTIFY_ALLOW_PRIVATE (above): off, POST /orders refuses (422) a notify_url that is not
# https or whose host resolves to a non-public address, and every send checks it again.
# django-ninja as an app: the Open API's docs (/openapi/v1/docs) serve its bundled Swagger UI files, not a CDN's.
INSTALLED_APPS += ["ninja"]
# --- staff security, audit log, security headers (kameng/accounts/staff_*.py, kameng/audit) ----------------------
# Staff (is_staff) must confirm a TOTP authenticator (django-otp) before any admin page, with 10 single-use recovery
# codes; wrong codes are throttled by django-otp (a doubling wait after each failure: OTP_*_THROTTLE_FACTOR seconds).
INSTALLED_APPS += ["django_otp", "django_otp.plugins.otp_totp", "django_otp.plugins.otp_static", "kameng.audit"]
# After the messages middleware (it leaves a message when it logs an idle staff session out).
MIDDLEWARE.insert(MIDDLEWARE.index("kameng.web.middleware.LazyMessageMiddleware") + 1,
                  "kameng.accounts.staff_middleware.StaffSecurityMiddleware")
OTP_TOTP_ISSUER = env.str("KAMENG_STAFF_TOTP_ISSUER", default="kameng")
OTP_TOTP_THROTTLE_FACTOR = env.int("KAMENG_STAFF_OTP_THROTTLE_FACTOR", default=1)
OTP_STATIC_THROTTLE_FACTOR = OTP_TOTP_THROTTLE_FACTOR
# A staff session idle this long on the admin is logged out (buyers' sessions keep SESSION_COOKIE_AGE).
KAMENG_STAFF_SESSION_IDLE_SECONDS = env.int("KAMENG_STAFF_SESSION_IDLE_SECONDS", default=2 * 3600)
# Step-up (再次验证): sensitive staff actions (kameng.accounts.staff_reauth.staff_reauth_required) ask for a code
# again unless one was entered within this long; refunds above this amount (yuan) are such an action.
KAMENG_STAFF_REAUTH_SECONDS = env.int("KAMENG_STAFF_REAUTH_SECONDS", default=300)
KAMENG_STAFF_REAUTH_REFUND_OVER = env.str("KAMENG_STAFF_REAUTH_REFUND_OVER", default="500.00")
# Behind HTTPS for good (a TLS-terminating proxy that sets X-Forwarded-Proto): one switch for the proxy header,
# the redirect to HTTPS, secure cookies and HSTS (a year unless SECURE_HSTS_SECONDS says otherwise). Off in the demo.
KAMENG_BEHIND_HTTPS = env.bool("KAMENG_BEHIND_HTTPS", default=False)
if KAMENG_BEHIND_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
# Permissions-Policy, sent with every answer by kameng.web.middleware.ContentSecurityPolicyMiddleware: browser
# features no page of ours uses (payment=() is the Payment Request API; gateways' own pages are not ours).
KAMENG_PERMISSIONS_POLICY = env.str("KAMENG_PERMISSIONS_POLICY", default=(
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()"))
# AML review of wallet top-ups (反洗钱, kameng.payments.aml). Defaults for the staff-editable policy (admin
# 反洗钱审核规则): one top-up above the threshold (not equal) is held; so is one that completes a structuring pattern —
# STRUCTURING_COUNT top-ups each ≥ RATIO × threshold within WINDOW_HOURS, or several summing above DAILY_SUM
# (0 turns either off). The verified identity kept with a review is purged RETENTION_DAYS after the decision.
KAMENG_AML_REVIEW_THRESHOLD = env.str("KAMENG_AML_REVIEW_THRESHOLD", default="5000.00")
KAMENG_AML_STRUCTURING_RATIO = env.str("KAMENG_AML_STRUCTURING_RATIO", default="0.80")
KAMENG_AML_STRUCTURING_COUNT = env.int("KAMENG_AML_STRUCTURING_COUNT", default=3)
KAMENG_AML_STRUCTURING_DAILY_SUM = env.str("KAMENG_AML_STRUCTURING_DAILY_SUM", default="10000.00")
KAMENG_AML_STRUCTURING_WINDOW_HOURS = env.int("KAMENG_AML_STRUCTURING_WINDOW_HOURS", default=24)
KAMENG_AML_RETENTION_DAYS = env.int("KAMENG_AML_RETENTION_DAYS", default=1095)
# --- risk engine (风控, kameng/risk/engine.py) --------------------------------------------------------------------
# How often a process looks at the rules' version in the cache (a staff change applies within this many seconds),
# and the longest it keeps a snapshot whatever the version says (the local-memory cache is not shared between
# processes). Allow decisions at the order checkpoint are stored for this fraction of orders (0: none; the other
# checkpoints store every decision).
KAMENG_RISK_RULES_CHECK_SECONDS = env.float("KAMENG_RISK_RULES_CHECK_SECONDS", default=2.0)
KAMENG_RISK_RULES_MAX_AGE_SECONDS = env.float("KAMENG_RISK_RULES_MAX_AGE_SECONDS", default=60.0)
KAMENG_RISK_ORDER_ALLOW_SAMPLE_RATE = env.float("KAMENG_RISK_ORDER_ALLOW_SAMPLE_RATE", default=0.0)
# Card keys bought upstream when the platform's stock cannot fill a card-key order (kameng/orders/upstream.py): the
# object that says whether an upstream offer can take the order and routes it; "" sells card keys from stock only.
KAMENG_CARD_KEY_UPSTREAM = "kameng.suppliers.upstream_cards.UPSTREAM"
