"""Errors a client sees: the distribution spec's codes, their HTTP statuses, and the wording
of each kind of failure."""

from __future__ import annotations

import pytest

from ociwrap.runtime import errors
from ociwrap.runtime.errors import RegistryError


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("BLOB_UNKNOWN", 404),
        ("MANIFEST_UNKNOWN", 404),
        ("NAME_UNKNOWN", 404),
        ("NAME_INVALID", 400),
        ("DIGEST_INVALID", 400),
        ("MANIFEST_INVALID", 400),
        ("PAGINATION_NUMBER_INVALID", 400),
        ("SIZE_INVALID", 400),
        ("UNAUTHORIZED", 401),
        ("DENIED", 403),
        ("UNSUPPORTED", 405),
        ("TOOMANYREQUESTS", 429),
        ("UNAVAILABLE", 502),
        ("SOMETHING_ELSE", 400),
    ],
)
def test_each_code_has_its_status(code, status):
    error = RegistryError(code, "what happened")
    assert (error.code, error.message, error.status) == (code, "what happened", status)
    assert error.detail is None and error.headers == {}
    assert str(error) == "what happened"


def test_a_status_given_wins_over_the_codes():
    assert RegistryError("UNAVAILABLE", "m", status=503).status == 503
    assert RegistryError("NAME_UNKNOWN", "m", status=0).status == 0


def test_headers_are_a_copy_of_those_given():
    given = {"Retry-After": "5"}
    error = RegistryError("TOOMANYREQUESTS", "slow down", headers=given)
    given["Retry-After"] = "50"
    assert error.headers == {"Retry-After": "5"}


def test_repr_shows_code_message_and_status():
    error = RegistryError("DENIED", "no pulls from there", status=403)
    assert repr(error) == "RegistryError('DENIED', 'no pulls from there', status=403)"


@pytest.mark.parametrize(
    ("factory", "code", "status"),
    [
        (errors.name_invalid, "NAME_INVALID", 400),
        (errors.name_unknown, "NAME_UNKNOWN", 404),
        (errors.manifest_unknown, "MANIFEST_UNKNOWN", 404),
        (errors.manifest_invalid, "MANIFEST_INVALID", 400),
        (errors.blob_unknown, "BLOB_UNKNOWN", 404),
        (errors.digest_invalid, "DIGEST_INVALID", 400),
        (errors.pagination_invalid, "PAGINATION_NUMBER_INVALID", 400),
        (errors.unsupported, "UNSUPPORTED", 405),
        (errors.denied, "DENIED", 403),
        (errors.upstream_unavailable, "UNAVAILABLE", 502),
    ],
)
def test_each_factory_makes_its_code_with_message_and_detail(factory, code, status):
    error = factory("the message", {"name": "library/busybox"})
    assert (error.code, error.status) == (code, status)
    assert error.message == "the message" and error.detail == {"name": "library/busybox"}
    assert factory("only a message").detail is None


def test_too_many_requests_passes_on_the_upstreams_retry_after():
    told = errors.too_many_requests("docker.io asks to slow down", retry_after="30")
    assert (told.code, told.status, told.message) == (
        "TOOMANYREQUESTS",
        429,
        "docker.io asks to slow down",
    )
    assert told.headers == {"Retry-After": "30"}
    assert errors.too_many_requests("slow down").headers == {}
    assert errors.too_many_requests("slow down", retry_after="").headers == {}


def test_an_upstream_time_out_is_a_504_and_any_other_failure_a_502():
    assert errors.upstream_unavailable("ghcr.io timed out", timeout=True).status == 504
    assert errors.upstream_unavailable("ghcr.io failed", timeout=False).status == 502


def test_a_blob_with_other_bytes_names_both_digests():
    wanted, actual = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    error = errors.blob_mismatch(wanted, actual)
    assert (error.code, error.status) == ("UNAVAILABLE", 502)
    assert error.message == f"blob {wanted} from upstream has digest {actual}"
    assert error.detail == {"digest": wanted}


def test_storage_failures_are_503_and_never_blamed_on_an_upstream():
    default = errors.storage_unavailable()
    assert (default.code, default.status) == ("UNAVAILABLE", 503)
    assert default.message == "artifact storage (S3) is unavailable; try again"
    assert errors.storage_unavailable("REGISTRY_AUTH_FILE cannot be read").message == (
        "REGISTRY_AUTH_FILE cannot be read"
    )
    assert default.detail is None and default.headers == {}


def test_a_deadline_that_ran_out_is_a_504_naming_what_was_awaited():
    error = errors.deadline_exceeded("ghcr.io", 27.6)
    assert (error.code, error.status) == ("UNAVAILABLE", 504)
    assert error.message == "the request's deadline (28 s) ran out while waiting for ghcr.io"
