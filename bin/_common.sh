# Shared by bin/run and bin/test: a project virtualenv and the local services, on a fresh machine.
# Sourced, not run. Everything it installs comes from the pinned requirements files.

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$PROJECT_DIR/.venv"
PY="$VENV/bin/python"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf '\033[31mERROR: %s\033[0m\n' "$*" >&2; exit 1; }

python_311() {
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      command -v "$candidate"
      return 0
    fi
  done
  fail "Python 3.11 is required (python3.11 not found)"
}

# ensure_venv FILE: create .venv and install FILE's pinned packages unless they are installed
# already for the current requirements files (the dev file includes the runtime one).
ensure_venv() {
  local requirements="$1" wanted
  wanted="$(cat "$PROJECT_DIR"/requirements*.txt | sha256sum | cut -d' ' -f1)"
  if [ ! -x "$PY" ]; then
    say "Creating the virtualenv in .venv"
    "$(python_311)" -m venv "$VENV"
  fi
  for stamp in "$VENV/.installed-$(basename "$requirements")" "$VENV/.installed-requirements-dev.txt"; do
    [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ] && return 0
  done
  say "Installing $(basename "$requirements")"
  "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$PY" -m pip install --quiet --disable-pip-version-check -r "$PROJECT_DIR/$requirements"
  echo "$wanted" >"$VENV/.installed-$(basename "$requirements")"
}

postgres_ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

ensure_postgres() {
  postgres_ready && return 0
  say "Starting PostgreSQL"
  command -v pg_ctlcluster >/dev/null 2>&1 || fail "PostgreSQL is not running on 127.0.0.1:5432 and pg_ctlcluster is not installed"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start ||
    fail "could not start PostgreSQL"
  for _ in $(seq 30); do postgres_ready && return 0; sleep 1; done
  fail "PostgreSQL did not accept connections on 127.0.0.1:5432"
}

redis_ready() { "$PY" - "${1:-redis://127.0.0.1:6379/0}" <<'PYEOF' 2>/dev/null
import sys
import redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()
PYEOF
}

ensure_redis() {
  redis_ready && return 0
  say "Starting Redis"
  command -v redis-server >/dev/null 2>&1 || return 1
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null || return 1
  for _ in $(seq 20); do redis_ready && return 0; sleep 0.5; done
  return 1
}
