from nimbus.api.errors import STATUS_BY_ERROR, status_of
from nimbus.domain import errors


def _all_subclasses(kind: type[errors.NimbusError]) -> set[type[errors.NimbusError]]:
    found: set[type[errors.NimbusError]] = set()
    for sub in kind.__subclasses__():
        found |= {sub} | _all_subclasses(sub)
    return found


def test_every_domain_error_has_a_status_code() -> None:
    kinds = _all_subclasses(errors.NimbusError)
    assert kinds
    assert kinds <= set(STATUS_BY_ERROR)


def test_client_mistakes_are_4xx_and_only_an_outage_is_5xx() -> None:
    for kind, status in STATUS_BY_ERROR.items():
        if kind is errors.Unavailable:
            assert status == 503
        else:
            assert 400 <= status < 500, kind


def test_codes_are_stable_snake_case_and_can_be_overridden() -> None:
    assert errors.NotFound().code == "not_found"
    assert errors.PermissionDenied("closed", code="signup_disabled").code == "signup_disabled"
    assert errors.PermissionDenied().code == "forbidden"
    assert status_of(errors.RateLimited(5)) == 429
