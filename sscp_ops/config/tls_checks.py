"""The ``tls_checks:`` section: the platform's HTTPS endpoints whose TLS set-up is checked.

Shape::

    tls_checks:
      include_probes: true          # also every https:// target of targets.probe
      endpoints:
        - name: portal
          url: "https://zhjg.example.gov.cn/"
          http_url: "http://zhjg.example.gov.cn/"   # must redirect to https (default: same
                                                    # host, port 80); redirect_check: false skips
          ca_file: /etc/ssl/certs/gov-ca.pem        # default: the system CA store
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field

from sscp_ops.config.base import Model, Name, PositiveSeconds, unique_names

HttpsUrl = Annotated[str, Field(pattern=r"^https://\S+$")]
PlainHttpUrl = Annotated[str, Field(pattern=r"^http://\S+$")]


class TlsEndpoint(Model):
    name: Name
    url: HttpsUrl
    http_url: PlainHttpUrl | None = None
    redirect_check: bool = True
    ca_file: Path | None = None
    timeout: PositiveSeconds = 5.0


class TlsChecksConfig(Model):
    include_probes: bool = True
    endpoints: Annotated[
        list[TlsEndpoint], AfterValidator(lambda items: unique_names(items, "tls endpoint"))
    ] = []
