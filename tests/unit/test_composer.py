"""The composer of recipes, over the in-memory bucket and upstream: several wrappers in
order (their errors naming "wrapper 1", "wrapper 2"), overrides of a container token,
WRAPPER_POLICY admitting base and wrappers, the platform of a single-platform base,
compositions found again or made again from the digests they were made of, and how
many platforms are composed at once."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from doubles.at_once import AtOnce
from doubles.bucket import MemoryBucket
from doubles.upstream import MemoryUpstream, digest_of
from ociwrap.bucket.links import Links
from ociwrap.bucket.sources import SourceRecords
from ociwrap.image.recipes import Overrides, Recipe
from ociwrap.names.reference import ImageRef, Registry, Repository
from ociwrap.registry.compositions import Composer
from ociwrap.registry.imagesource import ImageSource
from ociwrap.registry.signatures import Signatures
from ociwrap.registry.verification import SignatureCheck
from ociwrap.runtime import telemetry
from ociwrap.runtime.errors import RegistryError
from ociwrap.runtime.memcache import BoundedCache
from ociwrap.signing.policy import parse_policy
from ociwrap.signing.signers import FileSigner

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"
WRAPPER_NAME = "org.goci.wrapper.name"
WRAPPER_DIGEST = "org.goci.wrapper.digest"
HOSTNAME = "registry.example.com"
STUB = Registry("stub", "http://stub.invalid", trusted=True)
LINUX_AMD64 = {"os": "linux", "architecture": "amd64"}
PATHS = ("team/base", "team/w1", "team/w2")


def ref(path: str) -> ImageRef:
    return ImageRef(Repository(STUB, path), tag="1")


def push(
    upstream: MemoryUpstream,
    path: str,
    platform: dict,
    *,
    label: str | None = None,
    config: dict | None = None,
    tag: str | None = None,
) -> dict:
    """A one-layer image of `platform` (its config says it too) in `path`, tagged `tag`
    when given; its descriptor, with the platform. `config` replaces the config."""
    layer = f"layer of {path} for {json.dumps(platform, sort_keys=True)}".encode()
    inner: dict = {"Env": [f"FROM={path}"]}
    if label:
        inner["Labels"] = {"org.goci.wrapper": label}
    document = config or {
        **platform,
        "config": inner,
        "rootfs": {"type": "layers", "diff_ids": [digest_of(layer)]},
    }
    config_bytes = json.dumps(document).encode()
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": digest_of(config_bytes),
                "size": len(config_bytes),
            },
            "layers": [{"mediaType": OCI_LAYER, "digest": digest_of(layer), "size": len(layer)}],
        }
    ).encode()
    upstream.blobs[path, digest_of(config_bytes)] = config_bytes
    upstream.blobs[path, digest_of(layer)] = layer
    digest = upstream.push(path, body, *([tag] if tag else []))
    return {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body), "platform": platform}


def push_index(upstream: MemoryUpstream, path: str, entries: list[dict]) -> str:
    """An index of `entries`, tagged `1`; its digest."""
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    return upstream.push(path, body.encode(), "1", media_type=OCI_INDEX)


def layer_of(path: str, platform: dict) -> str:
    return digest_of(f"layer of {path} for {json.dumps(platform, sort_keys=True)}".encode())


def recipe(*wrappers: str, base: str = "team/base", **overrides) -> Recipe:
    return Recipe(
        "wt/token/stub/team/base",
        "token-scope",
        ref(base),
        tuple(ref(path) for path in wrappers),
        Overrides(**overrides),
        tag="1",
    )


class World:
    """A bucket and an upstream; each `composer()` is a new process over them."""

    def __init__(self) -> None:
        self.bucket = MemoryBucket()
        self.upstream = MemoryUpstream()
        self.policy: dict | None = None

    def composer(self, cache: BoundedCache | None = None, key: str | None = None) -> Composer:
        """A composer; signing with the key file `key` when given."""
        cache = cache if cache is not None else BoundedCache()
        links = Links(self.bucket, cache, 60, private=lambda registry: False)
        images = ImageSource(
            self.bucket,
            self.upstream,
            links,
            tag_ttl_seconds=60,
            stale_if_error_seconds=0,
            private=lambda registry: False,
            cache=cache,
        )
        check = None
        if self.policy is not None:
            policy = parse_policy(self.policy)
            check = SignatureCheck(lambda: policy, self.upstream, cache)
        sources = SourceRecords(self.bucket, cache)
        signatures = None
        if key is not None:
            signer = FileSigner(key)
            signatures = Signatures(signer, HOSTNAME, self.bucket, images, sources, cache)
        return Composer(images, self.bucket, sources, cache, signatures=signatures, check=check)

    def document(self, digest: str) -> dict:
        stored = self.bucket.get_manifest(digest)
        assert stored is not None
        return json.loads(stored.body)


@pytest.fixture
def world() -> World:
    """`team/base` (linux/amd64) and the wrappers `team/w1`, `team/w2` (single images)."""
    world = World()
    push(world.upstream, "team/base", LINUX_AMD64, tag="1")
    push(world.upstream, "team/w1", LINUX_AMD64, label="/w/one", tag="1")
    push(world.upstream, "team/w2", LINUX_AMD64, label="/w/two", tag="1")
    return world


def refusal(call) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        call()
    return caught.value


def tagged(world: World, path: str) -> str:
    return digest_of(world.upstream.manifests[path, "1"][0])


def inputs(world: World) -> tuple[str, list[str]]:
    """The digests `team/base:1` and `team/w1:1`, `team/w2:1` stand for now."""
    return tagged(world, "team/base"), [tagged(world, path) for path in ("team/w1", "team/w2")]


TWO = recipe("team/w1", "team/w2")


# -- several wrappers ------------------------------------------------------------------------


def test_several_wrappers_are_stacked_in_order_and_named_in_order(world):
    composition = world.composer().compose(recipe("team/w1", "team/w2"))
    document = json.loads(composition.body)
    assert composition.media_type == OCI_MANIFEST
    assert [layer["digest"] for layer in document["layers"]] == [
        layer_of("team/base", LINUX_AMD64),
        layer_of("team/w1", LINUX_AMD64),
        layer_of("team/w2", LINUX_AMD64),
    ]
    assert document["annotations"] == {
        BASE_NAME: "stub/team/base:1",
        BASE_DIGEST: tagged(world, "team/base"),
        WRAPPER_NAME: "stub/team/w1:1,stub/team/w2:1",
        WRAPPER_DIGEST: f"{tagged(world, 'team/w1')},{tagged(world, 'team/w2')}",
    }


def test_each_layer_of_several_wrappers_is_recorded_as_its_wrappers(world):
    composer = world.composer()
    made = composer.compose(recipe("team/w1", "team/w2"))
    lookup = composer.sources.lookup
    base, first, second = (layer_of(path, LINUX_AMD64) for path in PATHS)
    size = {path: len(world.upstream.blobs[path, layer_of(path, LINUX_AMD64)]) for path in PATHS}
    assert lookup("token-scope", base) == {
        "kind": "blob",
        "source": "base",
        "size": size["team/base"],
    }
    assert lookup("token-scope", first) == {
        "kind": "blob",
        "source": "wrapper",
        "size": size["team/w1"],
    }
    assert lookup("token-scope", second) == {
        "kind": "blob",
        "source": "wrapper",
        "size": size["team/w2"],
        "wrapper": 1,
    }
    base_digest, wrapper_digests = inputs(world)
    assert lookup("token-scope", made.digest) == {
        "kind": "manifest",
        "base": base_digest,
        "wrappers": wrapper_digests,
    }


@pytest.mark.parametrize(("missing", "role"), [("team/w1", "wrapper 1"), ("team/w2", "wrapper 2")])
def test_a_wrapper_the_upstream_lacks_is_named_by_its_place(world, missing, role):
    del world.upstream.manifests[missing, "1"]
    error = refusal(lambda: world.composer().compose(recipe("team/w1", "team/w2")))
    assert (error.code, error.status) == ("MANIFEST_UNKNOWN", 404)
    assert error.message.startswith(f"{role} image stub/{missing}:1 not found: ")
    assert error.detail == {"image": f"stub/{missing}:1", "role": role}


def test_the_one_wrapper_of_a_recipe_is_the_wrapper(world):
    del world.upstream.manifests["team/w1", "1"]
    error = refusal(lambda: world.composer().compose(recipe("team/w1", env=(("A", "1"),))))
    assert error.detail == {"image": "stub/team/w1:1", "role": "wrapper"}


def bad_config(world: World, path: str, platform: dict, **pushed) -> dict:
    """An image of `path` whose config lists two diff_ids for its one layer."""
    config = {**platform, "rootfs": {"type": "layers", "diff_ids": ["sha256:1", "sha256:2"]}}
    return push(world.upstream, path, platform, config=config, **pushed)


BAD_CONFIG = "config lists 2 diff_ids but the manifest has 1 layers"


def test_a_wrappers_bad_config_is_named_by_its_place(world):
    bad_config(world, "team/w2", LINUX_AMD64, tag="1")
    error = refusal(lambda: world.composer().compose(recipe("team/w1", "team/w2")))
    assert error.code == "MANIFEST_INVALID"
    assert error.detail == {"image": "wrapper 2", "reason": BAD_CONFIG}


def test_a_bad_config_of_a_wrapper_indexs_entry_is_named_by_its_place(world):
    entry = bad_config(world, "team/w2", LINUX_AMD64)
    push_index(world.upstream, "team/w2", [entry])
    error = refusal(lambda: world.composer().compose(recipe("team/w1", "team/w2")))
    assert error.detail == {"image": "wrapper 2", "reason": BAD_CONFIG}


def test_a_bad_config_of_a_base_indexs_entry_is_named_the_bases(world):
    entry = bad_config(world, "team/base", LINUX_AMD64)
    push_index(world.upstream, "team/base", [entry])
    error = refusal(lambda: world.composer().compose(recipe("team/w1", "team/w2")))
    assert error.detail == {"image": "base", "reason": BAD_CONFIG}


def test_a_bad_config_of_a_single_platform_base_is_named_the_bases(world):
    bad_config(world, "team/base", LINUX_AMD64, tag="1")
    error = refusal(lambda: world.composer().compose(recipe("team/w1", "team/w2")))
    assert error.detail == {"image": "base", "reason": BAD_CONFIG}


@pytest.mark.parametrize(("path", "role"), [("team/base", "base"), ("team/w2", "wrapper 2")])
def test_a_document_of_neither_kind_is_named_by_its_place(world, path, role):
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode()
    world.upstream.push(path, body, "1")
    error = refusal(lambda: world.composer().compose(recipe("team/w1", "team/w2")))
    assert error.code == "MANIFEST_INVALID" and error.detail["image"] == role


def test_a_wrappers_config_the_upstream_lacks_is_named_by_its_place(world):
    entry = push(world.upstream, "team/w2", LINUX_AMD64, label="/w/two", tag="1")
    manifest = json.loads(world.upstream.manifests["team/w2", entry["digest"]][0])
    del world.upstream.blobs["team/w2", manifest["config"]["digest"]]
    error = refusal(lambda: world.composer().compose(recipe("team/w1", "team/w2")))
    assert error.code == "MANIFEST_UNKNOWN"
    assert error.message.startswith("wrapper 2 image stub/team/w2:1 not found: ")


def test_an_index_entry_that_is_itself_an_index_is_named_by_its_place(world):
    inner = push_index(world.upstream, "team/w2", [push(world.upstream, "team/w2", LINUX_AMD64)])
    entry = {
        "mediaType": OCI_MANIFEST,  # says a manifest: it is an index
        "digest": inner,
        "size": len(world.upstream.manifests["team/w2", inner][0]),
        "platform": LINUX_AMD64,
    }
    push_index(world.upstream, "team/w2", [entry])
    error = refusal(lambda: world.composer().compose(recipe("team/w1", "team/w2")))
    assert error.code == "MANIFEST_INVALID"
    assert error.detail == {
        "image": "wrapper 2",
        "reason": f"index entry {inner} is itself an index",
    }


# -- overrides -------------------------------------------------------------------------------


def test_the_overrides_are_applied_to_the_composed_config(world):
    composition = world.composer().compose(recipe("team/w1", env=(("MODE", "test"),)))
    config = json.loads(world.bucket.get_blob(json.loads(composition.body)["config"]["digest"]))
    assert "MODE=test" in config["config"]["Env"]


def test_only_the_platforms_asked_for_are_composed(world):
    arm64 = {"os": "linux", "architecture": "arm64"}
    push_index(
        world.upstream,
        "team/base",
        [push(world.upstream, "team/base", LINUX_AMD64), push(world.upstream, "team/base", arm64)],
    )
    composition = world.composer().compose(recipe("team/w1", platforms=("linux/arm64",)))
    index = json.loads(composition.body)
    assert composition.media_type == OCI_INDEX
    assert [entry["platform"]["architecture"] for entry in index["manifests"]] == ["arm64"]
    [entry] = index["manifests"]
    layers = world.document(entry["digest"])["layers"]
    assert layers[0]["digest"] == layer_of("team/base", arm64)
    assert world.document(entry["digest"])["annotations"][BASE_NAME] == "stub/team/base:1"


# -- the platform of a single-platform base --------------------------------------------------


def test_a_single_platform_bases_variant_chooses_the_wrappers(world):
    v6 = {"os": "linux", "architecture": "arm", "variant": "v6"}
    v7 = {"os": "linux", "architecture": "arm", "variant": "v7"}
    push(world.upstream, "team/base", v6, tag="1")
    push_index(
        world.upstream,
        "team/w1",
        [
            push(world.upstream, "team/w1", v7, label="/w"),
            push(world.upstream, "team/w1", v6, label="/w"),
        ],
    )
    layers = json.loads(world.composer().compose(recipe("team/w1")).body)["layers"]
    assert [layer["digest"] for layer in layers] == [
        layer_of("team/base", v6),
        layer_of("team/w1", v6),
    ]


def test_a_single_platform_bases_windows_build_chooses_the_wrappers(world):
    def windows(build: str) -> dict:
        return {"os": "windows", "architecture": "amd64", "os.version": build}

    push(world.upstream, "team/base", windows("10.0.17763.1234"), tag="1")
    other, same = windows("10.0.20348.1"), windows("10.0.17763.5")
    push_index(
        world.upstream,
        "team/w1",
        [
            push(world.upstream, "team/w1", other, label="/w"),
            push(world.upstream, "team/w1", same, label="/w"),
        ],
    )
    layers = json.loads(world.composer().compose(recipe("team/w1")).body)["layers"]
    assert layers[1]["digest"] == layer_of("team/w1", same)


# -- WRAPPER_POLICY --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "role", "image"),
    [
        ({"wrappers": [{"images": "stub/team/w1", "unsigned": True}]}, "wrapper 2", "team/w2"),
        ({"wrappers": [{"images": "stub/team/w2", "unsigned": True}]}, "wrapper 1", "team/w1"),
    ],
)
def test_the_policy_refuses_an_image_no_rule_admits_naming_its_place(world, policy, role, image):
    world.policy = policy
    error = refusal(lambda: world.composer().compose(recipe("team/w1", "team/w2")))
    assert (error.code, error.status) == ("DENIED", 403)
    assert error.message == (
        f"{role} image stub/{image}:1 is not admitted: no rule of WRAPPER_POLICY "
        f"matches stub/{image}"
    )
    assert error.detail == {"image": f"stub/{image}:1", "role": role}
    assert world.bucket.listing("tags/compositions/") == []


def test_the_policy_refuses_an_unsigned_base_its_rule_wants_signed(world):
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    world.policy = {
        "bases": [{"images": "stub/team/base", "keys": [pem]}],
        "wrappers": [{"images": "stub/team/*", "unsigned": True}],
    }
    error = refusal(lambda: world.composer().compose(recipe("team/w1", "team/w2")))
    digest = tagged(world, "team/base")
    assert (error.code, error.status) == ("DENIED", 403)
    assert error.message == (
        f"base image stub/team/base:1 ({digest}) is refused by WRAPPER_POLICY rule "
        f"'stub/team/base': it has no signature (no tag sha256-{digest[7:]}.sig)"
    )
    assert error.detail == {"image": "stub/team/base:1", "role": "base", "rule": "stub/team/base"}


def test_the_policy_admits_what_its_rules_match(world):
    world.policy = {"wrappers": [{"images": "stub/team/*", "unsigned": True}]}
    assert world.composer().compose(recipe("team/w1", "team/w2")).media_type == OCI_MANIFEST


def test_what_the_policy_admitted_stays_with_each_input(world):
    wrapper = ref("team/w1")
    no_policy = world.composer().inputs.resolve("wrapper", wrapper)
    assert (no_policy.media_type, no_policy.verdict) == (OCI_MANIFEST, None)
    world.policy = {"wrappers": [{"images": "stub/team/*", "unsigned": True}]}
    inputs = world.composer().inputs
    admitted = inputs.resolve("wrapper", wrapper)
    assert (admitted.image, admitted.media_type) == (wrapper, OCI_MANIFEST)
    assert admitted.verdict == {"rule": "stub/team/*", "unsigned": True}
    pinned = inputs.pinned("wrapper", wrapper, admitted.digest)
    assert (pinned.digest, pinned.media_type) == (admitted.digest, OCI_MANIFEST)
    assert pinned.verdict == admitted.verdict
    base = inputs.resolve("base", ref("team/base"))
    assert base.verdict == {"rule": None}  # a base no rule names is admitted


def test_a_composition_made_again_is_admitted_by_the_policy_again(world):
    made = world.composer().compose(recipe("team/w1", "team/w2"))
    base, wrappers = inputs(world)
    world.policy = {"wrappers": [{"images": "stub/team/w1", "unsigned": True}]}
    error = refusal(
        lambda: world.composer().recompose(recipe("team/w1", "team/w2"), base, wrappers)
    )
    assert error.code == "DENIED"
    assert error.detail == {"image": "stub/team/w2:1", "role": "wrapper 2"}
    world.policy = {"wrappers": [{"images": "stub/team/*", "unsigned": True}]}
    assert world.composer().recompose(recipe("team/w1", "team/w2"), base, wrappers) == made


# -- found again, made again -----------------------------------------------------------------


def test_a_composition_is_found_again_by_a_new_process(world):
    made = world.composer().compose(recipe("team/w1", "team/w2"))
    with telemetry.collecting() as stats:
        assert world.composer().compose(recipe("team/w1", "team/w2")) == made
    assert stats.events["compositions"] == 0
    assert stats.cache[("composition", "stored")] == 1


def test_a_composition_is_made_once(world):
    with telemetry.collecting() as stats:
        world.composer().compose(recipe("team/w1", "team/w2"))
    assert stats.events["compositions"] == 1
    assert stats.cache[("composition", "stored")] == 0


@pytest.mark.parametrize(("max_bytes", "reads"), [(100, 1), (1024 * 1024, 0)])
def test_a_composition_record_larger_than_memory_holds_is_read_again(world, max_bytes, reads):
    composer = world.composer(BoundedCache(max_bytes=max_bytes))
    made = composer.compose(recipe("team/w1", "team/w2"))
    world.bucket.calls.clear()
    assert composer.compose(recipe("team/w1", "team/w2")) == made
    records = [key for key in world.bucket.called("get_json") if "/compositions/" in key]
    assert len(records) == reads


def test_a_new_base_digest_is_a_new_composition(world):
    first = world.composer().compose(recipe("team/w1", "team/w2"))
    push(world.upstream, "team/base", {**LINUX_AMD64, "variant": "v2"}, tag="1")
    world.bucket.expire("tags/upstream/")
    second = world.composer().compose(recipe("team/w1", "team/w2"))
    assert second.digest != first.digest
    assert json.loads(second.body)["annotations"][BASE_DIGEST] == tagged(world, "team/base")
    assert len(world.bucket.listing("tags/compositions/")) == 2


def test_a_composition_made_again_is_recorded_and_found_by_its_tag(world):
    made = world.composer().compose(recipe("team/w1", "team/w2"))
    base, wrappers = inputs(world)
    world.bucket.expire("manifests/", "tags/compositions/")
    with telemetry.collecting() as stats:
        again = world.composer().recompose(recipe("team/w1", "team/w2"), base, wrappers)
    assert again == made and stats.events["compositions"] == 1
    with telemetry.collecting() as stats:
        assert world.composer().compose(recipe("team/w1", "team/w2")) == made
    assert stats.events["compositions"] == 0


def test_a_composition_is_made_again_of_the_digests_given_not_the_tags(world):
    made = world.composer().compose(recipe("team/w1", "team/w2"))
    base, wrappers = inputs(world)
    push(world.upstream, "team/base", {**LINUX_AMD64, "variant": "v2"}, tag="1")
    push(world.upstream, "team/w2", LINUX_AMD64, label="/w/new", tag="1")
    world.bucket.expire("manifests/", "tags/")
    assert world.composer().recompose(recipe("team/w1", "team/w2"), base, wrappers) == made


@pytest.mark.parametrize(("gone", "role"), [("team/base", "base"), ("team/w2", "wrapper 2")])
def test_an_input_gone_upstream_cannot_be_made_again_naming_its_place(world, gone, role):
    world.composer().compose(recipe("team/w1", "team/w2"))
    base, wrappers = inputs(world)
    digest = tagged(world, gone)
    del world.upstream.manifests[gone, digest]
    world.bucket.expire("manifests/", "tags/")
    error = refusal(
        lambda: world.composer().recompose(recipe("team/w1", "team/w2"), base, wrappers)
    )
    assert error.code == "MANIFEST_UNKNOWN"
    assert error.message.startswith(f"{role} image stub/{gone}:1 not found: ")
    assert error.detail == {"image": f"stub/{gone}:1", "role": role}


def test_digests_for_fewer_wrappers_than_the_recipe_has_are_refused(world):
    base, first = tagged(world, "team/base"), tagged(world, "team/w1")
    with pytest.raises(ValueError):
        world.composer().recompose(recipe("team/w1", "team/w2"), base, [first])
    assert world.upstream.calls == [] and world.bucket.listing() == []  # before anything


# -- signing -------------------------------------------------------------------------------


def test_with_signing_what_is_composed_is_signed_before_it_is_recorded(world, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "signing.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    made = world.composer(key=str(path)).compose(TWO)
    writes = [name for method, name in world.bucket.calls if method == "put_json"]
    [signature] = world.bucket.listing("tags/signatures/")
    [record] = world.bucket.listing("tags/compositions/")
    assert writes.index(signature) < writes.index(record)
    signed = json.loads(world.bucket.held(signature))
    assert json.loads(signed["manifest"])["subject"]["digest"] == made.digest


# -- platforms at once -----------------------------------------------------------------------


def test_four_platforms_are_composed_at_once_and_never_a_fifth(world):
    archs = ["amd64", "arm64", "386", "ppc64le", "s390x"]
    entries = [
        push(world.upstream, "team/base", {"os": "linux", "architecture": arch}) for arch in archs
    ]
    push_index(world.upstream, "team/base", entries)
    platforms = {entry["digest"] for entry in entries}
    composing = AtOnce(4, "platforms")

    def count(call) -> None:
        if call.operation == "get_manifest" and call.ref in platforms:
            composing()

    world.upstream.before = count
    index = json.loads(world.composer().compose(recipe("team/w1")).body)
    assert composing.most == 4
    assert len(index["manifests"]) == 5
    assert Counter(entry["platform"]["architecture"] for entry in index["manifests"]) == Counter(
        archs
    )
