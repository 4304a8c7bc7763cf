"""A workspace: a folder with cx360.toml, its data and its warehouse."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from cx360.config import CONFIG_FILE, Config, load_config
from cx360.errors import ConfigError, ErasurePendingError
from cx360.filemodes import secure_workspace

if TYPE_CHECKING:
    from cx360.engine import Engine

TEMPLATE = """\
# cx360 workspace. Every key is checked: a typo is an error that names it.
# Paths are relative to this file.

[workspace]
name = "{name}"
# Country (ISO 3166 alpha-2) assumed for phone numbers written without a +country code.
default_region = "{region}"

[engine]
# "duckdb": one embedded file, the default. "spark": set master (e.g. "local[*]" or a cluster URL).
kind = "duckdb"
path = "warehouse.duckdb"

[identity]
# Records linked when their match probability reaches this (see docs/identity.md).
match_threshold = 0.9
# Most trusted source first: the golden record takes each attribute from the first that has it.
source_priority = []
# Values that must never link people, by identifier kind (placeholders are blocked already).
# blocked_values = {{ email = ["info@mybank.ru"], phone = ["+74950000000"] }}
# The organisation's own e-mail domains: addresses there are staff or shared mailboxes, never a customer's.
# own_domains = ["mybank.ru"]
# An identifier held by records of this many different people (first name and birth date) links none of them.
# shared_by_people = 2

[ingest]
# Dates more than this many days after the ingest, or before `earliest`, are quarantined.
max_future_days = 2
earliest = 1900-01-01
# A quoted CSV field longer than this, or a row over more lines, is a stray quote: its line is quarantined.
max_field_chars = 1048576
max_row_lines = 100
# Reads of a file that changes while it is read, before its source fails.
read_attempts = 3

[events]
# Event names beyond the canonical ones (cx360.schema.EVENT_NAMES) that sources may emit.
custom_names = []

# The contact centre's routing table (docs/calls.md): the first route whose conditions hold takes the call.
# [calls]
# default_queue = "general"
# [[calls.routes]]
# reason = "card_blocked"         # the forecast's top reason (one code or a list)
# queue = "cards"
# [[calls.routes]]
# value_tier = ["platinum", "gold"]
# min_churn_risk = 0.6
# queue = "retention"

# The PII vault (docs/privacy.md#the-pii-vault): the warehouse keeps identifiers as keyed tokens and no
# names or birth dates; their values are encrypted per person in privacy/vault.sqlite. Decide before the
# first ingest.
# [privacy]
# vault = true

# Purposes and their consent defaults (docs/privacy.md): marketing (opt-in, per channel), profiling and
# analytics (opt-out) are known without a declaration; declare one to change it or to add another.
# [privacy.purposes.marketing]
# default = "opt-in"
# channels = ["email", "sms", "push", "call", "post"]

# Each source is one [[sources]] table: where to read (kind = csv | parquet | jsonl | sql)
# and a mapping to canonical records ([sources.records]), events ([sources.events]) or consent
# changes ([sources.consents]).
# A field is a column name, or a table: {{ column = "dob", type = "date", formats = ["%d.%m.%Y"] }};
# a constant is {{ value = "web" }}; `values` renames source values (event names, channels).
#
# [[sources]]
# name = "crm"
# kind = "csv"
# path = "data/crm.csv"
# delimiter = ","
#
# [sources.records]
# record_id = "client_id"
# updated_at = {{ column = "modified", type = "timestamp" }}
# identifiers = {{ email = "email", phone = "mobile", customer_no = "client_id" }}
# attributes = {{ first_name = "first_name", last_name = "last_name", birth_date = {{ column = "dob", type = "date" }} }}
#
# [[sources]]
# name = "web"
# kind = "jsonl"
# path = "data/web/*.jsonl"
#
# [sources.events]
# event_id = "message_id"
# timestamp = {{ column = "timestamp", type = "timestamp" }}
# name = {{ column = "type", values = {{ page = "page_viewed", login = "login" }} }}
# channel = {{ value = "web" }}
# identifiers = {{ cookie_id = "anonymous_id", customer_no = "user_id" }}
# properties = {{ path = "path" }}
#
# [[sources]]
# name = "preferences"
# kind = "csv"
# path = "data/preferences.csv"
#
# [sources.consents]
# timestamp = {{ column = "changed_at", type = "timestamp" }}
# purpose = "purpose"
# channel = "channel"
# status = {{ column = "opt", values = {{ Y = "granted", N = "denied", W = "withdrawn" }} }}
# identifiers = {{ customer_no = "client_id" }}
#
# A Segment or RudderStack export, every call type, read as it is (docs/segment.md):
#
# [[sources]]
# name = "app"
# kind = "jsonl"                  # or parquet
# path = "data/segment/*.jsonl"
# format = "segment"
#
# [[sources]]
# name = "billing"
# kind = "sql"
# url_env = "BILLING_DB_URL"      # e.g. postgresql+psycopg://user:pass@host/db
# table = "public.payments"
"""  # noqa: E501 (TOML 1.0: an inline table stays on one line)


PENDING_ERASURES = "erasure/pending"  # journals of erasures under way (cx360.erasure)


class Workspace:
    def __init__(self, root: Path | str, *, erasing: bool = False, read_only: bool = False):
        self.root = Path(root).resolve()
        self.read_only = read_only  # a reader beside the writers (the dashboard): DuckDB opens it shared
        self.config_path = self.root / CONFIG_FILE
        self.erasing = erasing  # opened by an erasure, which may find its own journal
        secure_workspace(self.root)  # personal data: owner-only files, whatever the user's umask

    def check_erasures(self) -> None:
        """An erasure cut short (a crash) leaves its journal: nothing may read the workspace until it is
        completed, since the person may be half gone."""
        pending = sorted((self.root / PENDING_ERASURES).glob("*.json"))
        if pending and not self.erasing:
            raise ErasurePendingError(
                f"an erasure was interrupted ({pending[0].relative_to(self.root)}); complete it with "
                f"`cx360 privacy erase --resume -w {self.root}` before anything else reads this workspace"
            )

    @cached_property
    def config(self) -> Config:
        return load_config(self.config_path)

    @cached_property
    def engine(self) -> Engine:
        from cx360.config import DuckDBEngine
        from cx360.engine import connect, connect_read_only

        self.check_erasures()
        if self.read_only and isinstance(self.config.engine, DuckDBEngine):
            return connect_read_only(self.config.engine, self.root)
        return connect(self.config.engine, self.root)

    def profile(self, key: str):
        """The 3D profile behind a profile id or any identifier: `Workspace("my-bank").profile("ivan@mail.ru")`."""
        from cx360.profiles.read import read

        return read(self, key)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.close()
            del self.__dict__["engine"]

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def init_workspace(root: Path | str, *, name: str | None = None, region: str = "US", force: bool = False) -> Path:
    root = Path(root)
    path = root / CONFIG_FILE
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists (use --force to overwrite)")
    (root / "data").mkdir(parents=True, exist_ok=True)
    path.write_text(TEMPLATE.format(name=name or root.resolve().name, region=region), encoding="utf-8")
    return path
