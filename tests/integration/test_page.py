"""The page at `/`, in a real browser: build a reference, see what it will run, pull it.

Headless Chromium (Debian's, through Selenium and chromedriver) against the local gateway
and the harness's upstream. Each test keeps a screenshot of every state it reaches in its
tmp dir (`browser/NN-<state>.png`), and a failed test adds screenshots of where it stopped
at desktop and at phone width (their paths are printed with the failure). Tests find
things as a person does, by label, role and visible text, and fail on any console error
they did not expect.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from harness.browser import CALL_FAILED, Browser
from harness.clients import skopeo_copy
from harness.gateway import LocalGateway
from harness.images import BASE_PATH
from harness.logins import htpasswd_line

pytestmark = pytest.mark.integration

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
USER, PASSWORD = "page-user", "a-long-page-password"
PHONE = 390


@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Browser]:
    with Browser(tmp_path / "browser") as started:
        yield started
        if request.node.stash.get(CALL_FAILED, False):
            for path in started.shots_of_failure():
                print(f"screenshot of the failure: {path}")
                request.node.user_properties.append(("screenshot", str(path)))


# -- reading the page as a person does ---------------------------------------------------------


def text_of(element: Any) -> str:
    """Exactly the text the page put there (Selenium's `.text` folds whitespace)."""
    return element.get_attribute("textContent")


def field(browser: Browser, label: str) -> Any:
    """The form control a visible label names (exactly that label's text)."""
    for candidate in browser.driver.find_elements(By.TAG_NAME, "label"):
        if text_of(candidate).strip() == label:
            return browser.driver.find_element(By.ID, candidate.get_attribute("for"))
    raise AssertionError(f"no field labelled {label!r}")


def button(browser: Browser, name: str) -> Any:
    """The button a person knows by its text or its accessible name."""
    for candidate in browser.driver.find_elements(By.TAG_NAME, "button"):
        if name in (text_of(candidate).strip(), candidate.get_attribute("aria-label")):
            return candidate
    raise AssertionError(f"no button {name!r}")


def by_role(browser: Browser, role: str) -> list[Any]:
    return browser.driver.find_elements(By.CSS_SELECTOR, f'[role="{role}"]')


def region(browser: Browser, css: str) -> Any:
    return browser.driver.find_element(By.CSS_SELECTOR, css)


def fill(
    browser: Browser,
    base: str,
    wrappers: list[str],
    env: str = "",
    entrypoint: str = "",
    platform: str = "",
) -> None:
    field(browser, "Base image").send_keys(base)
    for number, wrapper in enumerate(wrappers, start=1):
        if number > 1:
            button(browser, "Add a wrapper").click()
        field(browser, f"Wrapper {number}").send_keys(wrapper)
    if env or entrypoint or platform:
        advanced = region(browser, "details summary")
        if not region(browser, "details").get_attribute("open"):
            advanced.click()
    if env:
        field(browser, "Environment overrides").send_keys(env)
    if entrypoint:
        field(browser, "Entrypoint override").send_keys(entrypoint)
    if platform:
        field(browser, "Platform").send_keys(platform)


def shown_reference(browser: Browser) -> str:
    return browser.wait(
        lambda d: (
            region(browser, "#reference-row").is_displayed()
            and text_of(region(browser, "#reference"))
        )
    )


def answered(browser: Browser) -> None:
    """Wait for the answer under the reference: what the image runs, or the refusal."""
    browser.wait(
        lambda d: (
            region(browser, "#inspect-error").is_displayed()
            or "Inspected" in text_of(region(browser, "#inspect-status"))
        )
    )


def shown_error(browser: Browser) -> tuple[str, str]:
    """(the registry's words, the page's hint) of the alert under the reference."""
    alert = browser.wait(lambda d: region(browser, "#inspect-error").is_displayed())
    assert alert
    hint = region(browser, "#inspect-error-hint")
    return text_of(region(browser, "#inspect-error-text")), text_of(hint)


def shown_run(browser: Browser) -> list[tuple[str, str]]:
    """(word, where it comes from) of each entry of "Runs, in order"."""
    items = browser.driver.find_elements(By.CSS_SELECTOR, "#inspect-run li")
    return [
        (
            text_of(item.find_element(By.TAG_NAME, "code")),
            text_of(item.find_element(By.CSS_SELECTOR, ".part")),
        )
        for item in items
    ]


def shown_env(browser: Browser) -> list[tuple[str, str, str]]:
    """(name, value, from) of each row of the environment table."""
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "#inspect-env tbody tr")
    return [tuple(text_of(cell) for cell in row.find_elements(By.TAG_NAME, "td")) for row in rows]


def shown_layers(browser: Browser) -> list[tuple[str, str, str]]:
    """(from, size in bytes, digest) of each layer row."""
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "#inspect-layers tbody tr")
    layers = []
    for row in rows:
        cells = row.find_elements(By.TAG_NAME, "td")
        size = cells[2].get_attribute("title").removesuffix(" bytes")
        layers.append((text_of(cells[1]), size, text_of(cells[3])))
    return layers


def visible_snippets(browser: Browser) -> list[str]:
    """The text of each snippet panel a person can see (tabs show one at a time)."""
    panels = [p for p in by_role(browser, "tabpanel") if p.is_displayed()]
    return [text_of(p.find_element(By.TAG_NAME, "code")) for p in panels]


def selected_tab(browser: Browser) -> str:
    chosen = [t for t in by_role(browser, "tab") if t.get_attribute("aria-selected") == "true"]
    assert len(chosen) == 1
    return text_of(chosen[0])


def tab(browser: Browser, name: str) -> Any:
    return next(t for t in by_role(browser, "tab") if text_of(t) == name)


def above(browser: Browser, first: Any, second: Any) -> bool:
    """Does `first` end above where `second` starts (the page's own layout)?"""
    return browser.driver.execute_script(
        "return arguments[0].getBoundingClientRect().bottom"
        " <= arguments[1].getBoundingClientRect().top",
        first,
        second,
    )


def assert_no_console_errors(browser: Browser) -> None:
    assert browser.console_errors() == []


# -- reading the registry ourselves -----------------------------------------------------------


def get(gw: LocalGateway, path: str, accept: str = OCI_MANIFEST, auth=None) -> requests.Response:
    response = requests.get(f"{gw.url}{path}", headers={"Accept": accept}, auth=auth, timeout=60)
    assert response.status_code == 200, response.text
    return response


def name_of(reference: str, gw: LocalGateway) -> tuple[str, str]:
    """(name, tag) of `<gateway host>/<name>:<tag>`."""
    assert reference.startswith(f"{gw.host}/")
    name, _, tag = reference[len(gw.host) + 1 :].rpartition(":")
    return name, tag


def composed(gw: LocalGateway, name: str, ref: str, auth=None) -> tuple[dict, dict]:
    """(manifest, config) of a wrapped image as any client reads them: the config by
    following the registry's 307, its bytes checked against the digest."""
    manifest = get(gw, f"/v2/{name}/manifests/{ref}", auth=auth).json()
    digest = manifest["config"]["digest"]
    blob = requests.get(f"{gw.url}/v2/{name}/blobs/{digest}", auth=auth, timeout=60)
    assert blob.status_code == 200 and blob.history[0].status_code == 307
    assert "sha256:" + hashlib.sha256(blob.content).hexdigest() == digest
    return manifest, json.loads(blob.content)


def platform_of(entry: dict) -> str:
    """`os/architecture[/variant]` of an index entry."""
    platform = entry["platform"]
    return "/".join(
        filter(None, (platform["os"], platform["architecture"], platform.get("variant")))
    )


# -- answer first -------------------------------------------------------------------------------


def test_a_wrap_path_answers_what_it_runs_right_under_the_reference(
    browser, shared_gateway, pushed_images, tmp_path
):
    gw = shared_gateway
    base, wrapper = pushed_images["base-entrypoint"], pushed_images["wrapper"]
    browser.open(f"{gw.url}/")
    assert browser.driver.title == "ociwrap: wrap an image"
    browser.shot("empty-form")

    # No button pressed: typing both images is enough for the answer.
    fill(browser, f"local/{base.ref}", [f"local/{wrapper.ref}"])
    reference = shown_reference(browser)
    assert reference == (
        f"{gw.host}/wrap/local/library/busybox-entrypoint/1/with/local/tools/wrapper/1:latest"
    )
    assert not button(browser, "Create a container token").is_displayed()
    answered(browser)
    browser.shot("answered")
    assert not region(browser, "#inspect-error").is_displayed()
    # What it runs is right under the reference, before the snippets.
    runs = region(browser, "#inspect-run")
    assert above(browser, region(browser, "#reference-row"), runs)
    assert above(browser, runs, region(browser, "#snippets"))

    name, tag = name_of(reference, gw)
    manifest, config = composed(gw, name, tag)
    assert config["config"]["Entrypoint"] == ["/wrapper/run.sh", "/bin/echo", "base-entrypoint"]
    assert shown_run(browser) == [
        ("/wrapper/run.sh", "wrapper's script"),
        ("/bin/echo", "base entrypoint"),
        ("base-entrypoint", "base entrypoint"),
    ]
    assert text_of(region(browser, "#inspect-command")) == (
        "/wrapper/run.sh /bin/echo base-entrypoint"
    )
    env = shown_env(browser)
    assert ("PATH", BASE_PATH, "base") in env  # the base keeps its PATH over the wrapper's
    assert ("BASE_VAR", "base", "base") in env
    assert ("WRAPPER_VAR", "1", "wrapper") in env
    assert text_of(region(browser, "#inspect-workdir")) == "/"
    assert text_of(region(browser, "#inspect-user")) == "(not set: root)"
    assert not region(browser, "#platform-block").is_displayed()
    layers = [(layer["size"], layer["digest"]) for layer in manifest["layers"]]
    assert shown_layers(browser) == [
        ("base", str(layers[0][0]), layers[0][1]),
        ("wrapper", str(layers[1][0]), layers[1][1]),
    ]
    assert text_of(region(browser, "#inspect-base")) == f"local/{base.ref}"
    assert text_of(region(browser, "#inspect-signature")) == (
        "Not signed: this registry does not sign what it composes."
    )

    # The snippets are tabs: one visible at a time, docker first.
    assert selected_tab(browser) == "docker"
    assert visible_snippets(browser) == [f"docker run --rm {reference}"]
    copy = button(browser, "Copy the reference")
    copy.click()
    # "Copied" with clipboard access; without it the reference is selected for Ctrl+C.
    browser.wait(lambda d: text_of(copy) in ("Copied", "Selected"))
    if text_of(copy) == "Selected":
        assert browser.driver.execute_script("return String(getSelection())") == reference

    layout = skopeo_copy(reference, tmp_path / "pulled")
    assert json.loads((layout / "index.json").read_text())["manifests"]
    assert_no_console_errors(browser)


def test_a_wrapper_without_the_label_is_explained_before_anything_is_copied(
    browser, shared_gateway, pushed_images
):
    gw = shared_gateway
    browser.open(f"{gw.url}/")
    base, wrapper = pushed_images["base"], pushed_images["wrapper-nolabel"]
    fill(browser, f"local/{base.ref}", [f"local/{wrapper.ref}"])
    reference = shown_reference(browser)
    message, hint = shown_error(browser)
    browser.shot("missing-label")
    assert "400 MANIFEST_INVALID" in message
    assert "wrapper image missing 'org.goci.wrapper' label" in message
    assert "LABEL org.goci.wrapper=" in hint
    assert above(browser, region(browser, "#reference-row"), region(browser, "#inspect-error"))
    assert above(browser, region(browser, "#inspect-error"), region(browser, "#snippets"))
    assert not region(browser, "#inspect-result").is_displayed()
    # The one console entry is the browser's own note of the refused manifest request.
    name, _ = name_of(reference, gw)
    errors = browser.console_errors()
    assert len(errors) == 1, errors
    assert errors[0]["source"] == "network"
    assert f"/v2/{name}/manifests/latest" in errors[0]["message"] and "400" in errors[0]["message"]


def test_a_token_request_is_checked_before_the_token_is_made(
    browser, shared_gateway, pushed_images
):
    gw = shared_gateway
    browser.open(f"{gw.url}/")
    base = pushed_images["base"]
    good, bad = pushed_images["wrapper"], pushed_images["wrapper-nolabel"]
    fill(browser, f"local/{base.ref}", [f"local/{good.ref}", f"local/{bad.ref}"])
    browser.wait(lambda d: button(browser, "Create a container token").is_displayed())
    message, hint = shown_error(browser)
    browser.shot("token-preflight-refused")
    assert message.startswith(
        "With wrapper 2, the registry refused the image: 400 MANIFEST_INVALID"
    )
    assert "LABEL org.goci.wrapper=" in hint
    assert not region(browser, "#reference-row").is_displayed()

    # Removing the wrapper without the label: the check passes, the token is one press away.
    button(browser, "Remove wrapper 2").click()
    button(browser, "Add a wrapper").click()
    field(browser, "Wrapper 2").send_keys(f"local/{pushed_images['wrapper-2layers'].ref}")
    browser.wait(lambda d: "Create the token to see" in text_of(region(browser, "#inspect-status")))
    assert not region(browser, "#inspect-error").is_displayed()
    button(browser, "Create a container token").click()
    shown_reference(browser)
    answered(browser)
    browser.shot("two-wrappers")
    assert shown_run(browser) == [
        ("/wrapper/run.sh", "wrapper 1's script"),
        ("/wrapper/run.sh", "wrapper 2's script"),
        ("sh", "base command"),
        ("-c", "base command"),
        ("echo base-cmd", "base command"),
    ]
    env = shown_env(browser)
    assert ("WRAPPER_VAR", "1", "wrapper 2") in env and ("BASE_VAR", "base", "base") in env


def test_a_missing_base_is_explained(browser, shared_gateway, pushed_images):
    browser.open(f"{shared_gateway.url}/")
    fill(browser, "local/library/no-such-base:1", [f"local/{pushed_images['wrapper'].ref}"])
    shown_reference(browser)
    message, hint = shown_error(browser)
    browser.shot("missing-base")
    assert "404 MANIFEST_UNKNOWN" in message
    assert "base image local/library/no-such-base:1 not found" in message
    assert hint.startswith("Check the image's name and tag")


def test_a_refused_name_is_explained(browser, gateway, pushed_images):
    gw = gateway(env={"UPSTREAM_ALLOW": "local/library/*"})
    browser.open(f"{gw.url}/")
    fill(browser, f"local/{pushed_images['base'].ref}", [f"local/{pushed_images['wrapper'].ref}"])
    shown_reference(browser)
    message, hint = shown_error(browser)
    browser.shot("refused")
    assert "403 DENIED" in message and "UPSTREAM_ALLOW" in message
    assert "UPSTREAM_ALLOW" in hint and "operator" in hint


# -- tokens people can rely on ----------------------------------------------------------------


def test_a_token_gets_the_lifetime_chosen_and_says_when_it_stops_working(
    browser, shared_gateway, pushed_images, tmp_path
):
    gw = shared_gateway
    base, wrapper = pushed_images["base-multi"], pushed_images["wrapper-multi"]
    markup = "<b>from the page</b>"
    browser.open(f"{gw.url}/")
    lifetimes = Select(field(browser, "Token lifetime"))
    assert [text_of(o) for o in lifetimes.options] == ["1 hour", "1 day", "7 days", "30 days"]
    assert text_of(lifetimes.first_selected_option) == "1 day"
    fill(browser, f"local/{base.ref}", [f"local/{wrapper.ref}"], env=f"PAGE_VAR={markup}")
    browser.wait(lambda d: button(browser, "Create a container token").is_displayed())
    assert "container token" in text_of(region(browser, "#plan-note"))
    assert "environment overrides" in text_of(region(browser, "#plan-note"))
    assert not region(browser, "#reference-row").is_displayed()
    lifetimes.select_by_visible_text("7 days")
    browser.shot("token-needed")

    button(browser, "Create a container token").click()
    reference = shown_reference(browser)
    assert re.fullmatch(
        rf"{re.escape(gw.host)}/wt/[a-z2-7]{{26}}/local/{base.repo}:multi", reference
    )
    expiry = region(browser, "#token-expiry")
    assert text_of(region(browser, "#token-note")).split() == [
        "Token",
        "created;",
        "it",
        "expires",
        "in",
        "7",
        "days.",
    ]
    exact = datetime.fromisoformat(expiry.get_attribute("datetime"))
    token = reference.split("/")[2]
    kept = requests.get(f"{gw.url}/v1alpha/tokens/{token}", timeout=30).json()
    assert exact == datetime.fromisoformat(kept["expiresAt"])
    assert kept["request"]["ttlSeconds"] == 7 * 86400  # the lifetime chosen, asked for
    assert exact.strftime("%Y-%m-%dT%H:%M:%S") in expiry.get_attribute("title")
    warning = text_of(region(browser, "#token-warning"))
    assert "stops working" in warning and "wrap path" in warning
    answered(browser)
    browser.shot("token-inspected-amd64")
    skopeo_copy(reference, tmp_path / "pulled")

    name, tag = name_of(reference, gw)
    index = get(gw, f"/v2/{name}/manifests/{tag}", accept=OCI_INDEX).json()
    platforms = [platform_of(entry) for entry in index["manifests"]]
    assert platforms == ["linux/amd64", "linux/arm64/v8"]
    chips = browser.driver.find_elements(By.CSS_SELECTOR, "#inspect-platforms li")
    assert [text_of(chip) for chip in chips] == platforms
    assert ("PAGE_VAR", markup, "override") in shown_env(browser)
    assert browser.driver.find_elements(By.CSS_SELECTOR, "#inspect-result b") == []
    _, amd64 = composed(gw, name, index["manifests"][0]["digest"])
    assert amd64["config"]["Entrypoint"] == ["/wrapper/run.sh"]
    assert shown_run(browser)[0] == ("/wrapper/run.sh", "wrapper's script")

    Select(field(browser, "Show the platform")).select_by_visible_text("linux/arm64/v8")
    browser.wait(lambda d: "Inspected" in text_of(region(browser, "#inspect-status")))
    arm64_manifest, arm64 = composed(gw, name, index["manifests"][1]["digest"])
    assert arm64["architecture"] == "arm64"
    assert [word for word, _ in shown_run(browser)] == [
        *arm64["config"]["Entrypoint"],
        *arm64["config"]["Cmd"],
    ]
    assert [row[0] for row in shown_layers(browser)] == ["base", "wrapper", "wrapper"]
    assert [row[2] for row in shown_layers(browser)] == [
        layer["digest"] for layer in arm64_manifest["layers"]
    ]
    browser.shot("token-inspected-arm64")

    # Back to one wrapper and no overrides: the wrap path is offered, no token needed.
    field(browser, "Environment overrides").clear()
    field(browser, "Environment overrides").send_keys(" ")
    path = shown_reference(browser)
    assert "/wrap/local/library/busybox/multi/with/local/tools/wrapper/multi:latest" in path
    assert not region(browser, "#token-note").is_displayed()
    assert not button(browser, "Create a container token").is_displayed()
    assert_no_console_errors(browser)


def test_the_lifetimes_offered_stop_at_the_deployment_s_maximum(browser, gateway):
    gw = gateway(env={"TOKEN_MAX_TTL_SECONDS": "172800"})
    browser.open(f"{gw.url}/")
    lifetimes = Select(field(browser, "Token lifetime"))
    assert [text_of(o) for o in lifetimes.options] == ["1 hour", "1 day", "2 days"]
    assert text_of(region(browser, "#token-max")) == "2 days"


# -- snippets -----------------------------------------------------------------------------------


def test_snippets_are_tabs_remembered_across_visits(browser, shared_gateway, pushed_images):
    gw = shared_gateway
    images = (f"local/{pushed_images['base'].ref}", [f"local/{pushed_images['wrapper'].ref}"])
    browser.open(f"{gw.url}/")
    fill(browser, *images)
    reference = shown_reference(browser)
    names = [text_of(t) for t in by_role(browser, "tab")]
    assert names == ["docker", "podman", "Kubernetes", "GitHub Actions", "GitLab CI", "Woodpecker"]

    tab(browser, "podman").click()
    assert visible_snippets(browser) == [f"podman run --rm --tls-verify=false {reference}"]
    # Arrow keys move along the tabs, as in any tab list.
    ActionChains(browser.driver).send_keys(Keys.ARROW_RIGHT).perform()
    assert selected_tab(browser) == "Kubernetes"
    assert browser.driver.switch_to.active_element == tab(browser, "Kubernetes")
    pod = visible_snippets(browser)[0]
    assert pod.splitlines()[-2:] == ["    - name: main", f"      image: {reference}"]
    for name, line in (
        ("GitHub Actions", f"      image: {reference}"),
        ("GitLab CI", f"  image: {reference}"),
        ("Woodpecker", f"    image: {reference}"),
    ):
        tab(browser, name).click()
        assert line in visible_snippets(browser)[0].splitlines()
    browser.shot("woodpecker-tab")
    # YAML is never soft-wrapped: each line stays one line, however narrow the screen.
    browser.resize(PHONE)
    panel = next(p for p in by_role(browser, "tabpanel") if p.is_displayed())
    pre = panel.find_element(By.TAG_NAME, "pre")
    assert pre.value_of_css_property("white-space") == "pre"
    line_height = browser.driver.execute_script(
        "const s = getComputedStyle(arguments[0]); return parseFloat(s.lineHeight)"
        " || parseFloat(s.fontSize) * 1.2",
        pre,
    )
    lines = len(visible_snippets(browser)[0].splitlines())
    assert pre.size["height"] < (lines + 2) * line_height + 40
    browser.shot("woodpecker-phone")

    browser.driver.refresh()
    fill(browser, *images)
    shown_reference(browser)
    assert selected_tab(browser) == "Woodpecker"
    assert len(visible_snippets(browser)) == 1
    assert_no_console_errors(browser)


# -- phone width and long values ---------------------------------------------------------------

WIDEST_SCRIPT = """
const width = document.documentElement.clientWidth;
const outside = (e) => {
  const box = e.getBoundingClientRect();
  return box.right > width + 0.5 || box.left < -0.5;
};
const wider = [...document.querySelectorAll('body *')]
  .filter(e => e.getClientRects().length && !e.closest('pre') && outside(e))
  .map(e => e.tagName + (e.id ? '#' + e.id : '') + ' ' + e.getBoundingClientRect().right);
return [document.documentElement.scrollWidth, width, wider];
"""


def nothing_wider(browser: Browser) -> None:
    scroll_width, width, wider = browser.driver.execute_script(WIDEST_SCRIPT)
    assert (scroll_width, wider) == (width, [])


def test_at_phone_width_nothing_is_wider_than_the_screen(browser, shared_gateway, pushed_images):
    gw = shared_gateway
    browser.open(f"{gw.url}/")
    base = field(browser, "Base image")
    # Wide screens give labels a column of their own.
    assert browser.driver.execute_script(
        "return arguments[0].labels[0].getBoundingClientRect().right"
        " <= arguments[0].getBoundingClientRect().left",
        base,
    )
    browser.resize(PHONE)
    assert above(
        browser, browser.driver.execute_script("return arguments[0].labels[0]", base), base
    )
    # Optional fields wait behind "Advanced".
    assert not field(browser, "Environment overrides").is_displayed()
    long_word = "--an-argument-" + "x" * 300
    long_value = "v" * 400
    fill(
        browser,
        f"local/{pushed_images['base-multi'].ref}",
        [f"local/{pushed_images['wrapper'].ref}"],
        env=f"LONG_VALUE_{'N' * 60}={long_value}",
        entrypoint=json.dumps(["/wrapper/run.sh", long_word]),
    )
    assert field(browser, "Environment overrides").is_displayed()
    browser.shot("phone-form")
    nothing_wider(browser)
    button(browser, "Create a container token").click()
    shown_reference(browser)
    answered(browser)
    assert shown_run(browser)[1] == (long_word, "entrypoint override")
    assert (f"LONG_VALUE_{'N' * 60}", long_value, "override") in shown_env(browser)
    browser.shot("phone-answered")
    nothing_wider(browser)
    for name in ("Kubernetes", "GitHub Actions"):
        tab(browser, name).click()
        nothing_wider(browser)
    assert_no_console_errors(browser)


# -- trust at a glance -----------------------------------------------------------------------------


def test_a_signed_composition_says_so_and_links_the_key(
    browser, gateway, pushed_images, signing_key, moto_s3
):
    gw = gateway(env={"SIGNING_KEY_FILE": str(signing_key[0])})
    browser.open(f"{gw.url}/")
    nav = browser.driver.find_element(By.CSS_SELECTOR, 'nav[aria-label="Documentation"]')
    links = {text_of(a): a.get_attribute("href") for a in nav.find_elements(By.TAG_NAME, "a")}
    assert links["Signing key"] == f"{gw.url}/v1alpha/signing-key"
    assert requests.get(links["Signing key"], timeout=30).content == signing_key[1]
    openapi = requests.get(links["OpenAPI"], timeout=30)
    assert openapi.status_code == 200 and openapi.json()["openapi"].startswith("3.")
    for section in ("Wrapping images", "Container tokens", "Signing"):
        manual = requests.get(links[section], timeout=30)
        assert manual.status_code == 200
        assert manual.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert f"\n## {section}\n" in manual.text

    fill(browser, f"local/{pushed_images['base'].ref}", [f"local/{pushed_images['wrapper'].ref}"])
    answered(browser)
    signature = region(browser, "#inspect-signature")
    assert text_of(signature).startswith("Signed by this registry")
    digest = text_of(region(browser, "#inspect-digest"))
    assert f"sha256-{digest.removeprefix('sha256:')}.sig" in text_of(signature)
    key_link = signature.find_element(By.TAG_NAME, "a")
    assert (text_of(key_link), key_link.get_attribute("href")) == (
        "the public key",
        f"{gw.url}/v1alpha/signing-key",
    )
    # The provenance: its DSSE signature checked in the browser with the registry's key,
    # and the inputs by digest, as the composed manifest's annotations name them.
    provenance = text_of(region(browser, "#provenance-summary"))
    assert provenance.startswith("Signature verified with this registry's key: SLSA provenance")
    assert f"sha256-{digest.removeprefix('sha256:')}.att" in provenance
    name, tag = name_of(shown_reference(browser), gw)
    notes = get(gw, f"/v2/{name}/manifests/{tag}").json()["annotations"]
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "#provenance-inputs tbody tr")
    inputs = [[text_of(cell) for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    assert [(row[0], row[2]) for row in inputs] == [
        ("base", notes["org.opencontainers.image.base.digest"]),
        ("wrapper", notes["org.goci.wrapper.digest"]),
    ]
    assert [row[3] for row in inputs] == ["no policy", "no policy"]
    browser.shot("signed")

    # A statement changed in the bucket is shown as what it is: not verified.
    attestation = get(gw, f"/v2/{name}/manifests/sha256-{digest.removeprefix('sha256:')}.att")
    envelope_digest = attestation.json()["layers"][0]["digest"]
    key = f"blobs/sha256/{envelope_digest.removeprefix('sha256:')}"
    s3 = moto_s3.client()
    envelope = json.loads(s3.get_object(Bucket=gw.bucket, Key=key)["Body"].read())
    statement = base64.b64decode(envelope["payload"]).replace(b"ociwrap", b"ociwarp", 1)
    envelope["payload"] = base64.b64encode(statement).decode()
    s3.put_object(Bucket=gw.bucket, Key=key, Body=json.dumps(envelope).encode())
    button(browser, "Inspect again").click()
    browser.wait(lambda d: "NOT verified" in text_of(region(browser, "#provenance-summary")))
    browser.shot("provenance-changed")
    assert_no_console_errors(browser)


def test_without_signing_the_header_has_no_key_link(browser, shared_gateway):
    browser.open(f"{shared_gateway.url}/")
    nav = browser.driver.find_element(By.CSS_SELECTOR, 'nav[aria-label="Documentation"]')
    shown = [text_of(a) for a in nav.find_elements(By.TAG_NAME, "a") if a.is_displayed()]
    assert shown == ["Wrapping images", "Container tokens", "Signing", "OpenAPI"]


# -- safety and access -------------------------------------------------------------------------


def test_axe_finds_nothing_wrong_at_desktop_or_phone_width(
    browser, gateway, pushed_images, signing_key
):
    gw = gateway(env={"SIGNING_KEY_FILE": str(signing_key[0])})
    browser.open(f"{gw.url}/")
    assert browser.accessibility_problems() == []
    fill(
        browser,
        f"local/{pushed_images['base-multi'].ref}",
        [f"local/{pushed_images['wrapper'].ref}"],
        env="PAGE_VAR=1",
    )
    button(browser, "Create a container token").click()
    shown_reference(browser)
    answered(browser)
    assert region(browser, "#provenance-block").is_displayed()
    for width in (1280, PHONE):
        browser.resize(width)
        assert browser.accessibility_problems() == [], width
    # Another tab chosen, and an error shown, are checked too.
    browser.resize(1280)
    tab(browser, "GitLab CI").click()
    assert browser.accessibility_problems() == []
    field(browser, "Wrapper 1").clear()
    field(browser, "Wrapper 1").send_keys(f"local/{pushed_images['wrapper-nolabel'].ref}")
    shown_error(browser)
    assert browser.accessibility_problems() == []
    errors = browser.console_errors()
    assert len(errors) == 1 and "400" in errors[0]["message"], errors  # the refused request


def test_typed_markup_stays_text_and_the_form_works_from_the_keyboard(
    browser, shared_gateway, pushed_images
):
    browser.open(f"{shared_gateway.url}/")
    unlabelled = browser.driver.execute_script(
        "return [...document.querySelectorAll('input, textarea, select')]"
        ".filter(e => e.labels.length === 0).map(e => e.id)"
    )
    assert unlabelled == []

    field(browser, "Base image").send_keys("<img/src=/x/onerror=document.title=1>:1")
    browser.wait(lambda d: region(browser, "#base-error").is_displayed())
    assert text_of(region(browser, "#base-error")) == (
        'Base image has an invalid name part "<img": lowercase letters and digits separated'
        " by . _ __ or -."
    )
    assert browser.driver.find_elements(By.CSS_SELECTOR, "main img") == []
    assert text_of(region(browser, "#plan-note")) == "Fix the fields marked above."
    browser.shot("invalid-input")

    # Keyboard only: Tab past the header's links into the fields, type, Enter answers at once.
    browser.driver.refresh()
    presses = 0
    while browser.driver.switch_to.active_element.get_attribute("id") != "base":
        ActionChains(browser.driver).send_keys(Keys.TAB).perform()
        presses += 1
        assert presses <= 5, "the base image field is more than 5 Tab presses away"
    keys = ActionChains(browser.driver)
    keys.send_keys(f"local/{pushed_images['base'].ref}", Keys.TAB)
    keys.send_keys(f"local/{pushed_images['wrapper'].ref}", Keys.ENTER).perform()
    assert browser.driver.switch_to.active_element.get_attribute("id") == "wrapper-1"
    answered(browser)
    assert [word for word, _ in shown_run(browser)] == [
        "/wrapper/run.sh",
        "sh",
        "-c",
        "echo base-cmd",
    ]
    browser.shot("keyboard-inspected")
    assert_no_console_errors(browser)


def test_with_logins_the_page_works_after_the_login_prompt(
    browser, gateway, pushed_images, tmp_path
):
    users = tmp_path / "htpasswd"
    users.write_text(htpasswd_line(USER, PASSWORD) + "\n")
    gw = gateway(env={"REGISTRY_AUTH": "basic", "REGISTRY_AUTH_FILE": str(users)})
    challenge = requests.get(f"{gw.url}/", timeout=30)
    assert challenge.status_code == 401
    assert challenge.headers["WWW-Authenticate"] == 'Basic realm="ociwrap"'

    # A login in the URL is what Chromium keeps after its prompt is answered.
    browser.open(f"http://{USER}:{PASSWORD}@{gw.host}/")
    fill(browser, f"local/{pushed_images['base'].ref}", [f"local/{pushed_images['wrapper'].ref}"])
    reference = shown_reference(browser)
    answered(browser)
    browser.shot("logged-in-inspected")
    assert not region(browser, "#inspect-error").is_displayed()
    name, tag = name_of(reference, gw)
    _, config = composed(gw, name, tag, auth=(USER, PASSWORD))
    assert [word for word, _ in shown_run(browser)] == [
        *config["config"]["Entrypoint"],
        *config["config"]["Cmd"],
    ]
    env = shown_env(browser)
    assert ("BASE_VAR", "base", "base") in env and ("WRAPPER_VAR", "1", "wrapper") in env
    assert_no_console_errors(browser)
