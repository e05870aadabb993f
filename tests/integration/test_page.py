"""The page at `/`, in a real browser: build a reference, pull it, see what it will run.

Headless Chromium (Debian's, through Selenium and chromedriver) against the local gateway
and the harness's upstream. Each test keeps a screenshot of every state it reaches in its
tmp dir (`browser/NN-<state>.png`), and fails on any console error it did not expect.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from harness.browser import Browser
from harness.clients import skopeo_copy
from harness.gateway import LocalGateway
from harness.images import BASE_PATH
from harness.logins import htpasswd_line

pytestmark = pytest.mark.integration

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
USER, PASSWORD = "page-user", "a-long-page-password"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    with Browser(tmp_path / "browser") as started:
        yield started


# -- reading the page -------------------------------------------------------------------------


def by_id(browser: Browser, element_id: str) -> Any:
    return browser.driver.find_element(By.ID, element_id)


def text_of(element: Any) -> str:
    """Exactly the text the page put there (Selenium's `.text` folds whitespace)."""
    return element.get_attribute("textContent")


def fill(
    browser: Browser, base: str, wrappers: list[str], env: str = "", platform: str = ""
) -> None:
    by_id(browser, "base").send_keys(base)
    for number, wrapper in enumerate(wrappers, start=1):
        if number > 1:
            by_id(browser, "add-wrapper").click()
        by_id(browser, f"wrapper-{number}").send_keys(wrapper)
    if env:
        by_id(browser, "env").send_keys(env)
    if platform:
        by_id(browser, "platform").send_keys(platform)


def shown_reference(browser: Browser) -> str:
    return browser.wait(
        lambda d: (
            by_id(browser, "reference-row").is_displayed() and text_of(by_id(browser, "reference"))
        )
    )


def inspect(browser: Browser) -> None:
    """Click Inspect and wait for what it shows: the image, or the registry's error."""
    by_id(browser, "inspect").click()
    wait_for_inspection(browser)


def wait_for_inspection(browser: Browser) -> None:
    browser.wait(
        lambda d: (
            by_id(browser, "inspect-error").is_displayed()
            or "Inspected" in text_of(by_id(browser, "inspect-status"))
        )
    )


def shown_run(browser: Browser) -> tuple[list[str], list[str]]:
    """(entrypoint, command) as the page lists what runs, in order."""
    items = browser.driver.find_elements(By.CSS_SELECTOR, "#inspect-run li")
    entrypoint = [
        text_of(i.find_element(By.TAG_NAME, "code")) for i in items if has(i, "entrypoint")
    ]
    cmd = [text_of(i.find_element(By.TAG_NAME, "code")) for i in items if has(i, "cmd")]
    return entrypoint, cmd


def has(element: Any, css_class: str) -> bool:
    return css_class in (element.get_attribute("class") or "").split()


def shown_env(browser: Browser) -> list[str]:
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "#inspect-env tbody tr")
    return [
        "=".join(text_of(cell) for cell in row.find_elements(By.TAG_NAME, "td")) for row in rows
    ]


def shown_layers(browser: Browser) -> list[tuple[str, str, str]]:
    """(from, size in bytes, digest) of each layer row."""
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "#inspect-layers tbody tr")
    layers = []
    for row in rows:
        cells = row.find_elements(By.TAG_NAME, "td")
        size = cells[2].get_attribute("title").removesuffix(" bytes")
        layers.append((text_of(cells[1]), size, text_of(cells[3])))
    return layers


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


# -- tests ------------------------------------------------------------------------------------


def test_a_wrap_path_is_built_pulled_and_inspected(
    browser, shared_gateway, pushed_images, tmp_path
):
    gw = shared_gateway
    base, wrapper = pushed_images["base-entrypoint"], pushed_images["wrapper"]
    browser.open(f"{gw.url}/")
    assert browser.driver.title == "ociwrap: wrap an image"
    browser.shot("empty-form")

    fill(browser, f"local/{base.ref}", [f"local/{wrapper.ref}"])
    reference = shown_reference(browser)
    assert reference == (
        f"{gw.host}/wrap/local/library/busybox-entrypoint/1/with/local/tools/wrapper/1:latest"
    )
    assert not by_id(browser, "create-token").is_displayed()
    assert text_of(by_id(browser, "snippet-docker")) == f"docker run --rm {reference}"
    assert text_of(by_id(browser, "snippet-podman")) == (
        f"podman run --rm --tls-verify=false {reference}"
    )
    for snippet in ("woodpecker", "github", "gitlab"):
        assert f"image: {reference}" in text_of(by_id(browser, f"snippet-{snippet}"))
    copy = browser.driver.find_element(By.CSS_SELECTOR, 'button[data-copy="reference"]')
    copy.click()
    # "Copied" with clipboard access; without it the reference is selected for Ctrl+C.
    browser.wait(lambda d: text_of(copy) in ("Copied", "Selected"))
    if text_of(copy) == "Selected":
        assert browser.driver.execute_script("return String(getSelection())") == reference
    browser.shot("reference")

    layout = skopeo_copy(reference, tmp_path / "pulled")
    assert json.loads((layout / "index.json").read_text())["manifests"]

    inspect(browser)
    browser.shot("inspected")
    assert not by_id(browser, "inspect-error").is_displayed()
    name, tag = name_of(reference, gw)
    manifest, config = composed(gw, name, tag)
    entrypoint, cmd = shown_run(browser)
    assert entrypoint == config["config"]["Entrypoint"]
    assert entrypoint == ["/wrapper/run.sh", "/bin/echo", "base-entrypoint"]
    assert cmd == (config["config"].get("Cmd") or [])
    assert text_of(by_id(browser, "inspect-command")) == "/wrapper/run.sh /bin/echo base-entrypoint"
    env = shown_env(browser)
    assert f"PATH={BASE_PATH}" in env and "BASE_VAR=base" in env and "WRAPPER_VAR=1" in env
    assert text_of(by_id(browser, "inspect-workdir")) == "/"
    assert text_of(by_id(browser, "inspect-user")) == "(not set: root)"
    assert not by_id(browser, "platform-block").is_displayed()
    layers = [(layer["size"], layer["digest"]) for layer in manifest["layers"]]
    assert shown_layers(browser) == [
        ("base", str(layers[0][0]), layers[0][1]),
        ("wrapper", str(layers[1][0]), layers[1][1]),
    ]
    assert text_of(by_id(browser, "inspect-base")) == f"local/{base.ref}"
    assert_no_console_errors(browser)


def test_overrides_and_an_index_go_through_a_token(
    browser, shared_gateway, pushed_images, tmp_path
):
    gw = shared_gateway
    base, wrapper = pushed_images["base-multi"], pushed_images["wrapper-multi"]
    markup = "<b>from the page</b>"
    browser.open(f"{gw.url}/")
    fill(browser, f"local/{base.ref}", [f"local/{wrapper.ref}"], env=f"PAGE_VAR={markup}")
    browser.wait(lambda d: by_id(browser, "create-token").is_displayed())
    assert "container token" in text_of(by_id(browser, "plan-note"))
    assert "environment overrides" in text_of(by_id(browser, "plan-note"))
    assert not by_id(browser, "reference-row").is_displayed()
    browser.shot("token-needed")

    by_id(browser, "create-token").click()
    reference = shown_reference(browser)
    assert re.fullmatch(
        rf"{re.escape(gw.host)}/wt/[a-z2-7]{{26}}/local/{base.repo}:multi", reference
    )
    assert "expires at" in text_of(by_id(browser, "token-note"))
    browser.shot("token-created")
    skopeo_copy(reference, tmp_path / "pulled")

    inspect(browser)
    name, tag = name_of(reference, gw)
    index = get(gw, f"/v2/{name}/manifests/{tag}", accept=OCI_INDEX).json()
    platforms = [platform_of(entry) for entry in index["manifests"]]
    assert platforms == ["linux/amd64", "linux/arm64/v8"]
    chips = browser.driver.find_elements(By.CSS_SELECTOR, "#inspect-platforms li")
    assert [text_of(chip) for chip in chips] == platforms
    assert f"PAGE_VAR={markup}" in shown_env(browser)
    assert browser.driver.find_elements(By.CSS_SELECTOR, "#inspect-result b") == []
    _, amd64 = composed(gw, name, index["manifests"][0]["digest"])
    assert shown_run(browser)[0] == amd64["config"]["Entrypoint"] == ["/wrapper/run.sh"]
    browser.shot("token-inspected-amd64")

    Select(by_id(browser, "platform-choice")).select_by_visible_text("linux/arm64/v8")
    browser.wait(lambda d: "Inspected" in text_of(by_id(browser, "inspect-status")))
    arm64_manifest, arm64 = composed(gw, name, index["manifests"][1]["digest"])
    assert arm64["architecture"] == "arm64"
    assert shown_run(browser)[0] == arm64["config"]["Entrypoint"]
    assert [row[0] for row in shown_layers(browser)] == ["base", "wrapper", "wrapper"]
    assert [row[2] for row in shown_layers(browser)] == [
        layer["digest"] for layer in arm64_manifest["layers"]
    ]
    browser.shot("token-inspected-arm64")
    assert_no_console_errors(browser)


def test_a_wrapper_without_the_label_shows_the_registry_error(
    browser, shared_gateway, pushed_images
):
    gw = shared_gateway
    browser.open(f"{gw.url}/")
    base, wrapper = pushed_images["base"], pushed_images["wrapper-nolabel"]
    fill(browser, f"local/{base.ref}", [f"local/{wrapper.ref}"])
    reference = shown_reference(browser)
    inspect(browser)
    browser.shot("registry-error")
    error = text_of(by_id(browser, "inspect-error"))
    assert "400 MANIFEST_INVALID" in error
    assert "wrapper image missing 'org.goci.wrapper' label" in error
    assert not by_id(browser, "inspect-result").is_displayed()
    # The one console entry is the browser's own note of the refused manifest request.
    name, _ = name_of(reference, gw)
    errors = browser.console_errors()
    assert len(errors) == 1, errors
    assert errors[0]["source"] == "network"
    assert f"/v2/{name}/manifests/latest" in errors[0]["message"] and "400" in errors[0]["message"]


def test_typed_markup_stays_text_and_the_form_works_from_the_keyboard(
    browser, shared_gateway, pushed_images
):
    browser.open(f"{shared_gateway.url}/")
    unlabelled = browser.driver.execute_script(
        "return [...document.querySelectorAll('input, textarea, select')]"
        ".filter(e => e.labels.length === 0).map(e => e.id)"
    )
    assert unlabelled == []

    by_id(browser, "base").send_keys("<img/src=/x/onerror=document.title=1>:1")
    browser.wait(lambda d: by_id(browser, "base-error").is_displayed())
    assert text_of(by_id(browser, "base-error")) == (
        'Base image has an invalid name part "<img": lowercase letters and digits separated'
        " by . _ __ or -."
    )
    assert browser.driver.find_elements(By.CSS_SELECTOR, "main img") == []
    assert text_of(by_id(browser, "plan-note")) == "Fix the fields marked above."
    browser.shot("invalid-input")

    # Keyboard only: Tab into the fields, type, Enter inspects.
    browser.driver.refresh()
    keys = ActionChains(browser.driver)
    keys.send_keys(Keys.TAB, f"local/{pushed_images['base'].ref}", Keys.TAB)
    keys.send_keys(f"local/{pushed_images['wrapper'].ref}", Keys.ENTER).perform()
    assert browser.driver.switch_to.active_element.get_attribute("id") == "wrapper-1"
    wait_for_inspection(browser)
    assert shown_run(browser) == (["/wrapper/run.sh"], ["sh", "-c", "echo base-cmd"])
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
    inspect(browser)
    browser.shot("logged-in-inspected")
    assert not by_id(browser, "inspect-error").is_displayed()
    name, tag = name_of(reference, gw)
    _, config = composed(gw, name, tag, auth=(USER, PASSWORD))
    assert shown_run(browser) == (config["config"]["Entrypoint"], config["config"]["Cmd"])
    assert_no_console_errors(browser)
