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


def test_holds_512_entries_by_default_and_evicts_the_oldest_at_513():
    cache = BoundedCache()
    for number in range(512):
        cache.put(number, number)
    assert len(cache) == 512 and cache.get(0) == 0
    cache.put(512, 512)
    assert len(cache) == 512
    assert cache.get(1) is None and cache.get(0) == 0 and cache.get(512) == 512


def test_the_byte_bound_holds_exactly_up_to_it():
    cache = BoundedCache(max_entries=10, max_bytes=100)
    cache.put("a", "x", size=50)
    cache.put("b", "y", size=50)
    assert (cache.get("a"), cache.get("b")) == ("x", "y")
    cache.put("whole", "z", size=100)
    assert cache.get("whole") == "z" and len(cache) == 1


def test_an_entry_counts_one_byte_unless_sized():
    cache = BoundedCache(max_entries=10, max_bytes=3)
    for key in "abc":
        cache.put(key, key)
    assert len(cache) == 3
    names = cache.namespace("n")
    cache.discard("a")
    names.put("d", "d")
    assert len(cache) == 3 and names.get("d") == "d"


def test_putting_a_key_again_replaces_its_value_and_its_size():
    cache = BoundedCache(max_entries=10, max_bytes=100)
    cache.put("a", "old", size=60)
    cache.put("a", "new", size=60)
    assert cache.get("a") == "new" and len(cache) == 1
    cache.put("b", "b", size=40)
    assert cache.get("a") == "new"


def test_bytes_of_dropped_entries_are_freed():
    cache = BoundedCache(max_entries=10, max_bytes=100)
    for key in "abc":
        cache.put(key, key, size=30)
    cache.discard("a")
    cache.put("d", "d", size=50)  # 110 bytes: b, the oldest, goes
    assert cache.get("b") is None
    assert (cache.get("c"), cache.get("d")) == ("c", "d")


def test_get_or_load_loads_once_and_keeps_the_size_and_ttl_it_is_given():
    clock = Clock()
    cache = BoundedCache(max_entries=10, max_bytes=100, clock=clock)
    loads = []

    def load():
        loads.append(1)
        return "v" * 60

    assert cache.get_or_load("k", load, size=len, ttl=5) == "v" * 60
    assert cache.get_or_load("k", load, size=len, ttl=5) == "v" * 60
    assert len(loads) == 1
    cache.put("other", "o", size=50)  # 110 bytes: the loaded value counted 60
    assert cache.get("k") is None
    cache.get_or_load("k", load, ttl=5)
    clock.now = 5.0
    assert cache.get("k") is None
    assert cache.get_or_load("none", lambda: None) is None and cache.get("none") is None


def test_a_namespace_passes_on_sizes_and_ttls():
    clock = Clock()
    cache = BoundedCache(max_entries=10, max_bytes=100, clock=clock)
    names = cache.namespace("n")
    names.put("a", "x", size=60, ttl=5)
    names.put("b", "y", size=50)
    assert names.get("a") is None and names.get("b") == "y"
    names.put("c", "z", ttl=5)
    names.put("d", "w")
    names.put("e", "v")
    assert names.get("b") == "y"  # 50 + 1 + 1 + 1 bytes: unsized entries count one
    assert names.get_or_load("f", lambda: "u" * 60, size=len, ttl=5) == "u" * 60
    assert names.get("b") is None  # 60 more bytes: pushed out until they fit
    assert names.get("f") == "u" * 60
    clock.now = 5.0
    assert names.get("f") is None
    names.put("t", "t", ttl=1)
    clock.now = 6.0
    assert names.get("t") is None


def test_a_loaded_value_counts_one_byte_unless_measured():
    cache = BoundedCache(max_entries=10, max_bytes=2)
    cache.get_or_load("a", lambda: "x")
    cache.get_or_load("b", lambda: "y")
    assert (cache.get("a"), cache.get("b")) == ("x", "y")
