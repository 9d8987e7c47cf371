"""Structured logs: stdlib logging records rendered by structlog, as one JSON object a line
or as text for a terminal. Every line logged while an RPC is being handled carries its
method (`rpc_method` sets it); ids are spelled as kizuna_node.common.ids spells them; no
service ever logs a message's payload."""

import contextvars
import logging

import structlog

current_method: contextvars.ContextVar[str] = contextvars.ContextVar("kizuna_rpc_method", default="")


def formatter(service: str, log_format: str) -> logging.Formatter:
    def add_context(_, __, event: dict) -> dict:
        event["service"] = service
        method = current_method.get()
        if method and "method" not in event:
            event["method"] = method
        return event

    renderer = (structlog.processors.JSONRenderer(sort_keys=False) if log_format == "json"
                else structlog.dev.ConsoleRenderer(colors=False))
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            add_context,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
