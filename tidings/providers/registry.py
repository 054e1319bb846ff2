"""Provider names to classes: an explicit table, so what exists is readable in one place."""

from __future__ import annotations

from tidings.providers.aliyun import Aliyun
from tidings.providers.base import Provider
from tidings.providers.console import Console
from tidings.providers.http import GenericHttp
from tidings.providers.smtp import Smtp
from tidings.providers.twilio import Twilio
from tidings.providers.yunpian import Yunpian

PROVIDERS: dict[str, type[Provider]] = {cls.name: cls for cls in (Console, Twilio, Yunpian, Aliyun, GenericHttp, Smtp)}
