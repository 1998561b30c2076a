"""Log in with a username or a phone number and a password; find the session's user on every request."""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest

from kameng.accounts.models import User
from kameng.accounts.selectors import user_by_login
from kameng.accounts.throttle import LOGIN_LOCK_ATTRIBUTE, login_account, login_failed, login_succeeded, login_take
from kameng.core.http import client_address


@dataclass(frozen=True)
class _UserLookup:
    """The ORM's own `SELECT … WHERE id = %s` for User, compiled once per database connection."""

    sql: str
    attnames: list[str]
    converters: list[tuple[int, list[Any], Any]]  # (column position, converter functions, column expression)


_lookups: weakref.WeakKeyDictionary[BaseDatabaseWrapper, _UserLookup] = weakref.WeakKeyDictionary()
_lookups_lock = threading.Lock()


def _user_lookup(connection: BaseDatabaseWrapper) -> _UserLookup:
    lookup = _lookups.get(connection)
    if lookup is None:
        queryset = User._default_manager.db_manager(connection.alias).filter(pk=0).order_by()
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        assert list(params) == [0], (sql, params)  # the primary key is the one and only parameter
        columns = [column for column, _sql, _alias in compiler.select]
        converters = [(position, functions, expression)
                      for position, (functions, expression) in compiler.get_converters(columns).items()]
        lookup = _UserLookup(sql=sql, attnames=[column.target.attname for column in columns], converters=converters)
        with _lookups_lock:
            _lookups[connection] = lookup
    return lookup


class UsernameOrPhoneBackend(ModelBackend):
    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs: Any) -> User | None:
        """Storefront and admin alike: the try is counted before its password is checked, and a login past its
        failures (kameng.accounts.throttle) is refused before any password check (PermissionDenied stops Django's
        authenticate()); the lock is left on the request, and the login forms say why and for how long."""
        if not username or password is None:
            return None
        address = client_address(request) if request is not None else None
        user = user_by_login(username)
        attempt = login_take(account=login_account(login=username, user=user), address=address)
        if attempt.lock is not None:
            if request is not None:
                setattr(request, LOGIN_LOCK_ATTRIBUTE, attempt.lock)
            raise PermissionDenied("too many failed logins")
        if user is None:
            User().set_password(password)  # same work as a real check: no timing hint that the login is unknown
        elif user.check_password(password) and self.user_can_authenticate(user):
            login_succeeded(attempt=attempt)
            return user
        login_failed(attempt=attempt)
        return None

    def get_user(self, user_id: Any) -> User | None:
        """`ModelBackend.get_user()` — the same SELECT, the same User, the same `is_active` rule — minus the ORM.

        Runs on every authenticated request. `.get(pk=…)` rebuilds and compiles its query each time (~0.4 ms of
        CPU, about a fifth of a checkout's request overhead); here the statement Django compiles for it is kept
        per connection and the row goes through the same column converters into `User.from_db()`. The row is
        read fresh every time, so django.contrib.auth's session-hash check still sees a changed password and a
        deactivated user at once.
        """
        connection = connections[router.db_for_read(User)]
        lookup = _user_lookup(connection)
        with connection.cursor() as cursor:
            cursor.execute(lookup.sql, [user_id])
            row = cursor.fetchone()
        if row is None:
            return None
        values = list(row)
        for position, functions, expression in lookup.converters:
            value = values[position]
            for function in functions:
                value = function(value, expression, connection)
            values[position] = value
        user = User.from_db(connection.alias, lookup.attnames, values)
        return user if self.user_can_authenticate(user) else None
