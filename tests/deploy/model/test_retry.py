"""The one retry rule (deploy/model/retry.py): what may be sent again after a broken connection, what is read
back first, and what is never sent twice."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from deploy.model.retry import Declined, RetryPolicy

FAST = RetryPolicy(deadline=2, initial=0.001, maximum=0.01)


class Cut(ConnectionError):
    """A connection that broke while the answer was read."""


def sending(*outcomes: object) -> tuple[Callable[[], object], list[int]]:
    """A send that raises or returns the outcomes in turn, and the count of its calls."""
    calls = [0]

    def send() -> object:
        outcome = outcomes[min(calls[0], len(outcomes) - 1)]
        calls[0] += 1
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return send, calls


def broken(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionError)


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE", "PUT"])
def test_an_idempotent_request_is_sent_again_after_a_broken_connection(method: str) -> None:
    send, calls = sending(Cut(), Cut(), "answer")
    assert FAST.call(send, method, broken) == "answer" and calls == [3]


def test_a_create_is_not_sent_again_without_reading_back() -> None:
    send, calls = sending(Cut(), "answer")
    with pytest.raises(Cut):
        FAST.call(send, "POST", broken)
    assert calls == [1]


def test_a_create_that_landed_is_read_back_and_not_sent_again() -> None:
    send, calls = sending(Cut(), "answer")
    assert FAST.call(send, "POST", broken, landed=lambda: "read back") == "read back" and calls == [1]


def test_a_create_that_did_not_land_is_sent_again() -> None:
    send, calls = sending(Cut(), "answer")
    looked = []
    assert FAST.call(send, "POST", broken, landed=lambda: looked.append(1)) == "answer"
    assert calls == [2] and looked == [1]


def test_an_answer_that_says_the_server_did_not_act_is_retried_whatever_the_method() -> None:
    send, calls = sending(Declined(429, "POST /x", retry_after=0.01), Declined(503, "POST /x"), "answer")
    assert FAST.call(send, "POST", broken) == "answer" and calls == [3]


def test_other_errors_are_not_retried_and_the_deadline_ends_it() -> None:
    send, calls = sending(ValueError("a bug"), "answer")
    with pytest.raises(ValueError):
        FAST.call(send, "GET", broken)
    assert calls == [1]
    send, calls = sending(Cut())
    with pytest.raises(Cut):
        RetryPolicy(deadline=0.2, initial=0.01, maximum=0.02).call(send, "GET", broken)
    assert 5 <= calls[0] <= 30


def test_a_caller_may_declare_a_post_safe_to_send_again() -> None:
    send, calls = sending(Cut(), "session")  # a registry's upload session: a lost one expires unused
    assert FAST.call(send, "POST", broken, idempotent=True) == "session" and calls == [2]
