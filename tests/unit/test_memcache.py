"""The warm-Lambda cache stays within its bounds and honours expiry."""

from ociwrap.runtime.memcache import BoundedCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_evicts_least_recently_used_by_count():
    cache = BoundedCache(max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c"), len(cache)) == (1, 3, 2)


def test_evicts_by_bytes_and_skips_oversized():
    cache = BoundedCache(max_entries=10, max_bytes=100)
    cache.put("a", "x", size=60)
    cache.put("b", "y", size=60)
    assert cache.get("a") is None and cache.get("b") == "y"
    cache.put("huge", "z", size=101)
    assert cache.get("huge") is None and cache.get("b") == "y"


def test_expiry():
    clock = Clock()
    cache = BoundedCache(clock=clock)
    cache.put("tag", "sha256:1", ttl=5)
    clock.now = 4.9
    assert cache.get("tag") == "sha256:1"
    clock.now = 5.0
    assert cache.get("tag") is None


def test_namespaces_share_the_bounds_but_never_a_key():
    cache = BoundedCache(max_entries=2)
    manifests, links = cache.namespace("manifests"), cache.namespace("links")
    manifests.put("sha256:a", "manifest")
    links.put("sha256:a", "link")
    assert (manifests.get("sha256:a"), links.get("sha256:a")) == ("manifest", "link")
    cache.namespace("other").put("x", 1)  # a third entry evicts the oldest, in any namespace
    assert manifests.get("sha256:a") is None and links.get("sha256:a") == "link"
    links.discard("sha256:a")
    assert links.get_or_load("sha256:a", lambda: "loaded") == "loaded"
    assert links.get("sha256:a") == "loaded"
