"""The ``account_review:`` section: the staff roster and approved accounts for
``sscp-ops review accounts`` (quarterly least-privilege review).

Shape::

    account_review:
      inactive_days: 90
      mysql: [db1]                 # names from targets.mysql to review (default: all); the
                                   # target's user needs SELECT on mysql.* to list accounts
      staff:
        - {name: 张伟, os: [zhangwei], mysql: [zhangwei], tokens: [zhangwei-cli]}
      service_accounts: {os: [deploy], mysql: [exporter, app_rw], tokens: [grafana]}
      privileged: {os: [zhangwei], mysql: [root], tokens: [zhangwei-cli]}
                                   # approved sudo, global ALL / SUPER / GRANT OPTION, and
                                   # admin API tokens

The webhook's API tokens are read from ``webhook.database`` of the same file.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from sscp_ops.config.base import Model, Name

Account = Annotated[str, Field(min_length=1, max_length=80)]


class StaffMember(Model):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    os: list[Account] = []
    mysql: list[Account] = []
    tokens: list[Account] = []  # names of the webhook API tokens this person holds


class AccountLists(Model):
    os: list[Account] = []
    mysql: list[Account] = []
    tokens: list[Account] = []  # webhook API token names (``webhook token create --name``)


class AccountReviewConfig(Model):
    inactive_days: Annotated[int, Field(ge=1, le=3650)] = 90
    mysql: list[Name] | None = None
    staff: list[StaffMember] = []
    service_accounts: AccountLists = AccountLists()
    privileged: AccountLists = AccountLists()
