"""Is the Hugging Face Hub reachable? Asked once, with a short timeout, before anything is downloaded.

Without this, an offline machine spends tens of seconds in the libraries' retries (five for datasets,
each warning printed twice) before failing. ``HF_HUB_OFFLINE=1`` (or ``HF_DATASETS_OFFLINE=1`` for data)
means "use the local cache only": then nothing is probed and the libraries load cached copies or fail at
once.
"""
from __future__ import annotations

import functools
import os
import urllib.error
import urllib.request

from sparsenlp.errors import SparseNLPError

PROBE_TIMEOUT_S = 3.0
_TRUE = {"1", "ON", "YES", "TRUE"}


def offline(data: bool = False) -> bool:
    """Whether the user asked for cache-only loading."""
    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE") if data else ("HF_HUB_OFFLINE",)
    return any(os.environ.get(name, "").upper() in _TRUE for name in names)


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


@functools.cache
def _probe(url: str) -> str | None:
    """None when ``url`` answers (any HTTP status), else why not."""
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=PROBE_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        return None  # it answered
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))
    return None


def require(what: str, fix: str, data: bool = False) -> None:
    """Fail within seconds, naming ``what`` needed the Hub and the ``fix``, when it cannot be reached."""
    if offline(data):
        return
    reason = _probe(endpoint())
    if reason is not None:
        raise SparseNLPError(
            f"{what} comes from the Hugging Face Hub, which is unreachable ({endpoint()}: {reason}); {fix} "
            "(or set HF_HUB_OFFLINE=1 to use a copy in the local Hugging Face cache)"
        )
