"""Django's SQLite backend, except that the database file is created 0600 before SQLite would create it 0644.

Made when a connection opens, not when settings load: a command that refuses to run writes nothing, not even an
empty database file. An existing file readable by others is tightened at the same moment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db.backends.sqlite3 import base

from kameng.core.files import private_file_ensure


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        name = str(conn_params.get("database", ""))
        if name and name != ":memory:" and not name.startswith("file:"):  # in-memory databases have no file
            private_file_ensure(Path(name))
        return super().get_new_connection(conn_params)
