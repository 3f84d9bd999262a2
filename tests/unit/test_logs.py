"""Log lines are key=value, quoted where needed, with the bind prefix."""

from __future__ import annotations

import logging

from smppgw.logs import BindLogger, KeyValueFormatter


def render(record_logger: logging.Logger | BindLogger, message: str, **extra: object) -> str:
    captured: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record)

    base = record_logger.logger if isinstance(record_logger, BindLogger) else record_logger
    handler = Capture()
    base.addHandler(handler)
    base.setLevel(logging.INFO)
    try:
        record_logger.info(message, extra=extra)
    finally:
        base.removeHandler(handler)
    return KeyValueFormatter(with_time=False).format(captured[0])


def test_key_value_line_with_quoting_and_bind() -> None:
    log = BindLogger(logging.getLogger("smppgw.test"), {"bind": "wavy#2"})
    line = render(log, "bind refused", kv={"status": "ESME_RINVPASWD", "host": "a b"})
    assert line == (
        'level=info logger=smppgw.test bind=wavy#2 msg="bind refused" '
        'status=ESME_RINVPASWD host="a b"'
    )
