import pytest

from nimbus.domain.errors import RateLimited
from nimbus.services.throttle import Limit, Throttle
from tests.services.conftest import Clock

WIDE = Limit("wide", 5, 60)
NARROW = Limit("narrow", 1, 60)


def test_a_full_limit_keeps_nothing_of_the_others_taken_with_it(throttle: Throttle) -> None:
    assert throttle.take((WIDE, "a"), (NARROW, "a")) == ("wide:a", "narrow:a")
    for _ in range(3):
        with pytest.raises(RateLimited):
            throttle.take((WIDE, "a"), (NARROW, "a"))
    # Only the first take counted under WIDE: four more fit, and no fifth.
    for _ in range(4):
        throttle.take((WIDE, "a"))
    with pytest.raises(RateLimited):
        throttle.take((WIDE, "a"))


def test_given_back_or_cleared_counts_make_room_again(throttle: Throttle) -> None:
    (key,) = throttle.take((NARROW, "c"))
    throttle.give_back(key)
    throttle.take((NARROW, "c"))
    throttle.clear(key)
    throttle.take((NARROW, "c"))
    with pytest.raises(RateLimited):
        throttle.take((NARROW, "c"))


@pytest.mark.parametrize(("elapsed", "retry_after"), [(0.0, 60), (30.5, 30), (59.9, 1)])
def test_retry_after_is_the_rest_of_the_window_in_whole_seconds_and_at_least_one(
    throttle: Throttle, clock: Clock, elapsed: float, retry_after: int
) -> None:
    throttle.take((NARROW, "b"))
    clock.advance(seconds=elapsed)
    with pytest.raises(RateLimited) as limited:
        throttle.take((NARROW, "b"))
    assert limited.value.retry_after == retry_after
    clock.advance(seconds=60 - elapsed)
    throttle.take((NARROW, "b"))
