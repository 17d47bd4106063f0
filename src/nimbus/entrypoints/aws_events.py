"""What the Lambda entry points share, kept free of heavy imports: the authorizer loads this
without FastAPI."""

from collections.abc import Callable
from typing import Any

LambdaEvent = dict[str, Any]
LambdaFunction = Callable[[LambdaEvent, Any], dict[str, Any]]

# The key nimbus's authorizer puts its verified claims under, as a JSON string (API Gateway
# passes only flat string, number and boolean values on).
CLAIMS_CONTEXT_KEY = "nimbus_claims"


def is_warm_up(event: LambdaEvent) -> bool:
    """A keep-warm ping: the template's schedule sends `{"warmer": true}`; a bare EventBridge
    scheduled event counts too."""
    return event.get("warmer") is True or (
        event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event"
    )
