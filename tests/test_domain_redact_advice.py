"""Secrets never reach the journal or the screen; worker/limit advice does the runbook's sums."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from incident_console.domain.advice import (
    LIMIT_STEP,
    advise_workers,
    cpu_worker_bound,
    suggest_limit,
    suggest_workers,
)
from incident_console.domain.redact import (
    MASK,
    is_secret_name,
    redact_env,
    redact_record,
    redact_text,
)

MIB = 1 << 20


def test_redact_env() -> None:
    env = [
        "POSTGRES_PASSWORD=hunter2",
        "DB_PASSWD=x",
        "DJANGO_SECRET_KEY=abc",
        "GITHUB_TOKEN=ghp_1",
        "AWS_ACCESS_KEY_ID=AKIA",
        "API_KEY=k",
        "APIKEY=k",
        "SENTRY_DSN=https://pub:priv@sentry.example/1",
        "DATABASE_URL=postgres://app:pw@db:5432/app",
        "REDIS_URL=redis://redis:6379/0",
        "GUNICORN_WORKERS=4",
        "GUNICORN_KEEPALIVE=5",
        "PATH=/usr/bin",
        "PWD=/app",
        "EMPTY_PASSWORD=",
        "NOEQUALS",
    ]
    assert redact_env(env) == (
        "POSTGRES_PASSWORD=***",
        "DB_PASSWD=***",
        "DJANGO_SECRET_KEY=***",
        "GITHUB_TOKEN=***",
        "AWS_ACCESS_KEY_ID=***",
        "API_KEY=***",
        "APIKEY=***",
        "SENTRY_DSN=https://pub:***@sentry.example/1",
        "DATABASE_URL=postgres://app:***@db:5432/app",
        "REDIS_URL=redis://redis:6379/0",
        "GUNICORN_WORKERS=4",
        "GUNICORN_KEEPALIVE=5",
        "PATH=/usr/bin",
        "PWD=/app",
        "EMPTY_PASSWORD=",
        "NOEQUALS",
    )


def test_redact_text() -> None:
    assert redact_text("connect password=hunter2 host=db") == "connect password=*** host=db"
    assert redact_text('{"token": "abc", "user": "u"}') == '{"token": "***", "user": "u"}'
    assert redact_text("SECRET_KEY='x y' DEBUG=1") == "SECRET_KEY='***' DEBUG=1"
    assert (
        redact_text("could not connect to postgresql://app:s3cr3t@db/app")
        == "could not connect to postgresql://app:***@db/app"
    )
    assert redact_text("Authorization: Bearer eyJhbGci") == "Authorization: Bearer ***"
    line = "[2026-11-30 15:10:07 +0000] [7] [INFO] Booting worker with pid: 7"
    assert redact_text(line) == line
    kernel = "oom-kill:constraint=CONSTRAINT_MEMCG,task=python3,pid=9595,uid=0"
    assert redact_text(kernel) == kernel


def test_redact_record() -> None:
    record = {
        "kind": "note",
        "what": "command",
        "data": {
            "argv": ["psql", "--password", "hunter2", "-h", "db", "--token=abc"],
            "env": ("DB_PASSWORD=x", "A=1"),
            "api_key": "k",
            "password": 1234,
            "key": "r",
            "output": "DATABASE_URL=postgres://u:pw@h/db",
            "nested": [{"secret": "s"}],
        },
    }
    assert redact_record(record) == {
        "kind": "note",
        "what": "command",
        "data": {
            "argv": ["psql", "--password", MASK, "-h", "db", "--token=***"],
            "env": ("DB_PASSWORD=***", "A=1"),
            "api_key": MASK,
            "password": MASK,
            "key": "r",
            "output": "DATABASE_URL=postgres://u:***@h/db",
            "nested": [{"secret": MASK}],
        },
    }
    assert record["data"]["api_key"] == "k"  # a copy: the input is untouched


def test_secret_names() -> None:
    assert all(map(is_secret_name, ["PASSWORD", "db_pass", "X_AUTH_TOKEN", "SSH_PRIVATE_KEY"]))
    assert not any(map(is_secret_name, ["PATH", "HOSTNAME", "KEEPALIVE", "WORKERS", "PWD"]))


@given(st.text())
def test_redactors_never_raise(text: str) -> None:
    redact_text(text)
    redact_env([text, text + "=" + text])
    redact_record({text: text, "x": [text, {"password": text}]})


# --- advice --------------------------------------------------------------------------------


def test_suggest_workers_fits_the_limit() -> None:
    # (2 x 96 + 30) x 1.2 = 266.4 MiB > 256; 1 worker: 151.2 MiB fits.
    assert suggest_workers(256 * MIB, [90 * MIB, 96 * MIB], 30 * MIB) == 1
    # The seed: 4 workers of ~250 MB in 826 MB; a 512M limit holds 1 with 20% headroom ...
    assert suggest_workers(512 * MIB, 250 * MIB, 30 * MIB) == 1
    # ... and 2 with 10%.
    assert suggest_workers(512 * MIB, 200 * MIB, 30 * MIB, headroom=0.1) == 2
    assert suggest_workers(4096 * MIB, 100 * MIB, 30 * MIB, cores=2) == 5  # 2 x cores + 1
    assert suggest_workers(64 * MIB, 300 * MIB, 30 * MIB) == 1  # the floor
    assert suggest_workers(0, 100 * MIB, 0) == 1


def test_suggest_limit_rounds_up_to_32_mib() -> None:
    assert suggest_limit(2, 96 * MIB, 30 * MIB) == 288 * MIB  # 266.4 -> 288
    assert suggest_limit(2, [96 * MIB], 30 * MIB) % LIMIT_STEP == 0
    assert suggest_limit(0, 0, 0) == LIMIT_STEP
    assert cpu_worker_bound(2) == 5


def test_advice_why_lines() -> None:
    # (4 x 96 + 30) x 1.2 = 496.8 MiB <= 512; 5 workers would need 612.
    fits = advise_workers(512 * MIB, [90 * MIB, 96 * MIB], 30 * MIB, headroom=0.2)
    assert (fits.workers, fits.limit_bytes, fits.raise_limit) == (4, 512 * MIB, False)
    assert fits.why == (
        "workers peaked at 96.0 MiB each; 4 workers + master 30.0 MiB + 20% headroom "
        "fit in 512.0 MiB"
    )
    tight = advise_workers(256 * MIB, 300 * MIB, 30 * MIB)
    assert (tight.workers, tight.raise_limit, tight.limit_bytes) == (1, True, 416 * MIB)
    assert tight.why.endswith("need 416.0 MiB, more than the 256.0 MiB limit")
    unlimited = advise_workers(0, 200 * MIB, 30 * MIB, cores=2, current_workers=4)
    assert (unlimited.workers, unlimited.limit_bytes) == (4, 1024 * MIB)
    assert "(no limit set now)" in unlimited.why


@given(
    st.integers(0, 1 << 40),
    st.lists(st.integers(0, 1 << 34), max_size=8),
    st.integers(0, 1 << 32),
    st.floats(0, 2),
)
def test_suggested_workers_fit_in_the_limit(limit: int, peaks: list[int], master: int, h: float):
    workers = suggest_workers(limit, peaks, master, h)
    assert workers >= 1
    if workers > 1:
        assert suggest_limit(workers, peaks, master, h) <= limit + LIMIT_STEP


def test_redact_text_pair_after_a_pair_and_markdown() -> None:
    assert redact_text("note: password=hunter2") == "note: password=***"
    assert redact_text("a=b:TOKEN=x") == "a=b:TOKEN=***"
    assert redact_text("run `PGPASSWORD=pw psql` | ok") == "run `PGPASSWORD=*** psql` | ok"
    assert redact_text("| SECRET=s3 | x |") == "| SECRET=*** | x |"
    assert redact_text('password="unterminated rest') == "password=*** rest"
