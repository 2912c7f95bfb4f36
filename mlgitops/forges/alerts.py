"""Alerts: a Slack-compatible incoming-webhook POST on gate failures, drift and failed runs.

The webhook URL is a secret, so it comes from an environment variable named in
mlops.yaml (``alerts.webhook_env``), never from the file, and is never printed. A
delivery is retried on connection errors, 429 and 5xx (honouring Retry-After up to
10 s), at most ``alerts.retries`` times; an alert that cannot be delivered never fails
the run, it is reported as a note.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

KINDS = ("gate_failure", "drift", "run_failure")
ICONS = {"gate_failure": ":x:", "drift": ":chart_with_downwards_trend:", "run_failure": ":rotating_light:"}

def _opener() -> Any:
    """urllib would follow a 301/302 on POST with a bodiless GET and report success;
    a webhook that redirects has not received the alert. (Imported here: load_config
    configures alerts, and `mlops validate` must stay fast.)"""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(NoRedirect)


_CONFIG: Any = None  # the loaded config's `alerts`, set once a command has read mlops.yaml
_NAME = "model"
NOTES: list[str] = []


def reset() -> None:
    """Forget the previous command's config (commands run in one process in tests)."""
    global _CONFIG
    _CONFIG = None
    NOTES.clear()


def configure(cfg: Any) -> None:
    global _CONFIG, _NAME
    _CONFIG = cfg.config.alerts
    _NAME = cfg.config.name


def payload(kind: str, title: str, lines: list[str], link: str | None = None) -> dict[str, Any]:
    """Slack's incoming-webhook shape: `text` (shown everywhere) plus `blocks`."""
    text = f"{ICONS.get(kind, '')} *{_NAME}*: {title}".strip()
    body = "\n".join(f"• {line}" for line in lines[:10])
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if body:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}})
    if link:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": link}]})
    return {"text": f"{text}\n{body}".strip(), "blocks": blocks}


def send(kind: str, title: str, lines: list[str], link: str | None = None) -> bool:
    """Deliver one alert if alerts are configured for ``kind``; True when delivered."""
    cfg = _CONFIG
    if cfg is None or cfg.webhook_env is None or kind not in cfg.on:
        return False
    url = os.environ.get(cfg.webhook_env)
    if not url:
        NOTES.append(f"alert not sent: ${cfg.webhook_env} is not set")
        return False
    import http.client
    import urllib.error
    import urllib.request

    opener = _opener()
    data = json.dumps(payload(kind, title, lines, link)).encode()
    delay = 0.5
    for attempt in range(cfg.retries + 1):  # bounded
        try:
            request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", "User-Agent": "mlgitops-alerts"}, method="POST")
            with opener.open(request, timeout=cfg.timeout) as resp:
                if 200 <= resp.status < 300:
                    return True
                why = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            why = f"HTTP {exc.code}"
            if exc.code != 429 and exc.code < 500:
                NOTES.append(f"alert not sent: the webhook (${cfg.webhook_env}) answered {why}")
                return False
            after = exc.headers.get("Retry-After") if exc.headers else None
            if after and after.isdigit():
                delay = min(float(after), 10.0)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            why = type(reason).__name__  # never the text: it may quote the secret URL
        except (ValueError, http.client.HTTPException) as exc:  # e.g. a URL without https://
            NOTES.append(f"alert not sent: ${cfg.webhook_env} is not a usable URL ({type(exc).__name__})")
            return False
        if attempt < cfg.retries:
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
    NOTES.append(f"alert not sent: the webhook (${cfg.webhook_env}) failed {cfg.retries + 1} times (last: {why})")
    return False
