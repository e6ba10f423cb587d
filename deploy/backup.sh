#!/usr/bin/env bash
# Nightly backup. PostgreSQL: pg_dump in custom format. SQLite: the online backup API
# (consistent while the bot keeps writing; never copy the .db file of a running bot).
set -euo pipefail
dest=${BACKUP_DIR:-/srv/microwish/backups}/$(date +%Y%m%d-%H%M%S)
mkdir -p "$(dirname "$dest")"
url=${MICROWISH_DATABASE_URL:?set MICROWISH_DATABASE_URL}
case "$url" in
  postgresql*)
    pg_dump --format=custom --file="$dest.dump" "${url/postgresql+psycopg/postgresql}"
    ;;
  sqlite:///*)
    python3 - "${url#sqlite:///}" "$dest.db" <<'PY'
import sqlite3, sys
src = sqlite3.connect(sys.argv[1])
dst = sqlite3.connect(sys.argv[2])
with dst:
    src.backup(dst)
print("backup written to", sys.argv[2])
PY
    ;;
  *) echo "unknown database URL" >&2; exit 2 ;;
esac
find "$(dirname "$dest")" -mtime +30 -delete
