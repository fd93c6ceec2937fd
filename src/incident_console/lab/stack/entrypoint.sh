#!/bin/sh
# The lab backend's entrypoint, shaped like the seed's backend/entrypoint.sh: gunicorn's settings
# come from the environment (with defaults in docker-compose.yml), so a fix is an env change.
# One access line per request on stdout, as production setups log them: the console counts
# them for the request rate (GUNICORN_ACCESSLOG names a file instead). gunicorn's default
# format plus the worker's pid (%(p)s, '<8>'): the console ties each request to its worker.
set -eu

set -- \
    --bind 0.0.0.0:8000 \
    --chdir /app \
    --workers "${GUNICORN_WORKERS:-4}" \
    --timeout "${GUNICORN_TIMEOUT:-30}" \
    --log-level info \
    --error-logfile - \
    --access-logfile "${GUNICORN_ACCESSLOG:--}" \
    --access-logformat '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(p)s'

# 0 or unset: workers are never recycled (the seed's state before the fix).
if [ "${GUNICORN_MAX_REQUESTS:-0}" -gt 0 ]; then
    set -- "$@" \
        --max-requests "$GUNICORN_MAX_REQUESTS" \
        --max-requests-jitter "${GUNICORN_MAX_REQUESTS_JITTER:-0}"
fi

echo "entrypoint: gunicorn $*" >&2
exec /usr/bin/gunicorn "$@" app:app
