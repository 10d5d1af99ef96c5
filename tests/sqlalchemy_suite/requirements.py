"""What SQLite supports, for SQLAlchemy's suite: one class for every SQLite driver compared.

SQLAlchemy's ``SuiteRequirements`` closes every optional feature; these are the ones SQLite
has, so that the suite also runs its transaction, isolation, savepoint and JSON tests.
"""

from sqlalchemy.testing import exclusions
from sqlalchemy.testing.requirements import SuiteRequirements


class Requirements(SuiteRequirements):
    @property
    def autocommit(self):
        return exclusions.open()

    @property
    def skip_autocommit_rollback(self):
        return exclusions.open()

    @property
    def isolation_level(self):
        return exclusions.open()

    def get_isolation_levels(self, config):
        return {
            "default": "SERIALIZABLE",
            "supported": ["SERIALIZABLE", "READ UNCOMMITTED", "AUTOCOMMIT"],
        }

    @property
    def get_isolation_level_values(self):
        return exclusions.open()

    @property
    def savepoints(self):
        return exclusions.open()

    @property
    def json_type(self):
        return exclusions.open()

    @property
    def views(self):
        return exclusions.open()

    @property
    def window_functions(self):
        return exclusions.open()

    @property
    def intersect(self):
        return exclusions.open()

    @property
    def except_(self):
        return exclusions.open()

    @property
    def datetime_microseconds(self):
        return exclusions.open()

    @property
    def regexp_match(self):
        return exclusions.open()

    @property
    def async_dialect(self):
        return exclusions.only_if(lambda config: config.db.dialect.is_async)
