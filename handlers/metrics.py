"""GET /metrics: the Prometheus scrape, for operators only (docs/operating/metrics.md)."""

import hashlib
import hmac

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest

from handlers.base import BaseHandler
from services import metrics
from services.errors import ApiError, not_found


class MetricsHandler(BaseHandler):
    """404 unless METRICS_TOKEN is set, as if there were no such route; then 401 without that bearer token."""

    public = True  # not a user's token: the operators' METRICS_TOKEN, checked here

    async def get(self) -> None:
        token = self.config.metrics_token
        if not token:
            raise not_found()  # the same answer as an unknown route: nothing to discover (CWE-200)
        if not self.bearer_matches(token):
            raise ApiError(401, "Please authenticate", headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        queue_depth = await metrics.email_queue_depth(self.services.outbox)
        encoder, content_type = self.encoder()
        self.set_header("Content-Type", content_type)
        self.finish(metrics.exposition(encoder, queue_depth))

    def bearer_matches(self, token: str) -> bool:
        scheme, _, given = self.request.headers.get("Authorization", "").partition(" ")
        # Digests compared in constant time: neither the token's bytes nor its length leak (CWE-208).
        return scheme.lower() == "bearer" and hmac.compare_digest(_digest(given.strip()), _digest(token))

    def encoder(self) -> tuple:
        """The format the scraper asks for in Accept (Prometheus's text format, or OpenMetrics)."""
        try:
            return choose_encoder(self.request.headers.get("Accept", ""))
        except (TypeError, ValueError):  # prometheus_client trips on a malformed version: never a 500
            return generate_latest, CONTENT_TYPE_PLAIN_0_0_4


def _digest(value: str) -> bytes:
    # surrogatepass: an environment value that is not UTF-8 arrives with surrogate escapes.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()
