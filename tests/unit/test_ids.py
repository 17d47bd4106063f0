import time
import uuid

from nimbus.domain.ids import new_id


def test_new_id_is_a_version_7_uuid_carrying_the_current_time() -> None:
    value = uuid.UUID(new_id())
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert abs((value.int >> 80) - time.time() * 1000) < 5000


def test_new_ids_sort_in_the_order_they_were_made() -> None:
    ids = [new_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
