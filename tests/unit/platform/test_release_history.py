"""An environment's release history: deploys of one execution make one release, and rollback
walks back through it (or to a named version)."""

from __future__ import annotations

from pathlib import Path

import pytest

from caravan.errors import ConflictError, NotFoundError
from caravan.platform.release_book import ReleaseBook

COMMIT_A, COMMIT_B, COMMIT_C = "a" * 40, "b" * 40, "c" * 40


def deploy(book: ReleaseBook, execution: str, version: str, site: str, label: str) -> None:
    book.record("deploy", execution_id=execution, functions={"api": version})
    book.record("deploy", execution_id=execution, site={"version": site, "label": label})


def served(entry: dict[str, object]) -> tuple[object, object]:
    site = entry["site"]
    return entry["functions"], site["version"] if isinstance(site, dict) else None


@pytest.fixture
def book(tmp_path: Path) -> ReleaseBook:
    book = ReleaseBook(tmp_path / "shop-prod.json")
    deploy(book, "e1", "1", "1", COMMIT_A)
    deploy(book, "e2", "2", "2", COMMIT_B)
    deploy(book, "e3", "3", "3", COMMIT_C)
    return book


def test_the_function_and_site_of_one_execution_are_one_release(book: ReleaseBook) -> None:
    assert [served(e) for e in book.history] == [
        ({"api": "1"}, "1"),
        ({"api": "2"}, "2"),
        ({"api": "3"}, "3"),
    ]
    assert [e["executionId"] for e in book.history] == ["e1", "e2", "e3"]


def test_the_history_survives_a_restart(book: ReleaseBook, tmp_path: Path) -> None:
    assert ReleaseBook(tmp_path / "shop-prod.json").history == book.history


def test_a_redeploy_of_what_is_served_adds_nothing(book: ReleaseBook) -> None:
    book.record("deploy", execution_id="e4", functions={"api": "3"})
    assert len(book.history) == 3


def test_rollback_targets_the_release_before_and_then_walks_further_back(
    book: ReleaseBook,
) -> None:
    target = book.rollback_target("shop/prod", None)
    assert served(target) == ({"api": "2"}, "2")
    book.record(
        "rollback",
        functions=target["functions"],
        site=target["site"],
        restored_from=target["id"],
        replace=True,
    )
    again = book.rollback_target("shop/prod", None)
    assert served(again) == ({"api": "1"}, "1")  # not back to 3: a second rollback goes further


def test_rollback_to_a_version_or_a_commit(book: ReleaseBook) -> None:
    assert served(book.rollback_target("shop/prod", "1")) == ({"api": "1"}, "1")
    assert served(book.rollback_target("shop/prod", COMMIT_B[:7])) == ({"api": "2"}, "2")


def test_rollback_to_an_unknown_version_names_the_known_ones(book: ReleaseBook) -> None:
    with pytest.raises(NotFoundError) as caught:
        book.rollback_target("shop/prod", "9")
    assert caught.value.message == (
        "shop/prod has no release with version 9 (function versions released there: 1, 2, 3)"
    )


def test_rollback_to_the_version_served_now_is_a_conflict(book: ReleaseBook) -> None:
    with pytest.raises(ConflictError, match="shop/prod already serves version 3"):
        book.rollback_target("shop/prod", "3")


def test_nothing_to_roll_back_to(tmp_path: Path) -> None:
    book = ReleaseBook(tmp_path / "shop-test.json")
    with pytest.raises(ConflictError, match="shop/test has no release yet"):
        book.rollback_target("shop/test", None)
    deploy(book, "e1", "1", "1", COMMIT_A)
    with pytest.raises(ConflictError) as caught:
        book.rollback_target("shop/test", None)
    assert caught.value.message == (
        "shop/test has no earlier release to roll back to (it serves api version 1, site version 1)"
    )
