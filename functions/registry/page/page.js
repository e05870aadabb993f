// The ociwrap page: builds the reference of a wrapped image and shows what it will run.
//
// Everything shown is put into the page as text (textContent, attributes): never as
// markup. The Content-Security-Policy requires Trusted Types, so the browser itself
// refuses any string handed to an HTML sink. Images are read through this registry's
// own /v2/ API, on this origin, with the login the browser already holds.
"use strict";

(() => {
  // The largest generated config the registry answers to the page with its bytes
  // (page_routes.CONFIG_INLINE_MAX_BYTES); a larger one is only shown as its size.
  const CONFIG_MAX_BYTES = 1048576;
  // Docker refuses longer names (host included); longer requests need a token.
  const MAX_NAME_LENGTH = 255;
  const MAX_WRAPPERS = 8;
  const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
  const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
  const MANIFEST_ACCEPT = [
    "application/vnd.oci.image.manifest.v1+json",
    OCI_INDEX,
    "application/vnd.docker.distribution.manifest.v2+json",
    DOCKER_LIST,
  ].join(", ");
  const ANNOTATION = {
    baseName: "org.opencontainers.image.base.name",
    baseDigest: "org.opencontainers.image.base.digest",
    wrapperNames: "org.goci.wrapper.name",
    wrapperDigests: "org.goci.wrapper.digest",
  };
  // The grammar of docker references (distribution/reference), as the registry checks it.
  const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
  const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/;
  const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
  const DIGEST = /^sha256:[0-9a-f]{64}$/;
  const PIN = /^sha256-[0-9a-f]{64}$/;
  const PLATFORM = /^[a-z0-9_.-]{1,32}\/[a-z0-9_.-]{1,32}(?:\/[a-z0-9_.-]{1,32})?$/;

  const byId = (id) => document.getElementById(id);

  /** An element with attributes and children; strings become text nodes, never markup. */
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (name === "text") node.textContent = value;
      else if (name === "className") node.className = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function announce(text) {
    const announcer = byId("announcer");
    announcer.textContent = "";
    // A change the next frame is what screen readers announce, even for the same text.
    requestAnimationFrame(() => {
      announcer.textContent = text;
    });
  }

  // -- references -----------------------------------------------------------------------

  class InputError extends Error {}

  /** A docker reference split into repository and tag or digest, checked like the registry. */
  function parseReference(text) {
    const value = text.trim();
    if (!value) throw new InputError("is empty");
    if (/\s/.test(value)) throw new InputError("has a space in it");
    let name = value;
    let digest = null;
    let tag = null;
    const at = name.indexOf("@");
    if (at >= 0) {
      digest = name.slice(at + 1);
      name = name.slice(0, at);
      if (!DIGEST.test(digest)) {
        throw new InputError("has a digest that is not sha256: and 64 lowercase hex characters");
      }
    }
    const colon = name.lastIndexOf(":");
    if (colon > name.lastIndexOf("/")) {
      tag = name.slice(colon + 1);
      name = name.slice(0, colon);
      if (!TAG.test(tag)) throw new InputError(`has an invalid tag "${tag}"`);
    }
    if (name.includes(":")) {
      throw new InputError(
        "names a registry port: a name cannot say one, ask for an alias (REGISTRY_ALIASES)",
      );
    }
    const components = name.split("/");
    const first = components[0];
    const hasHost = components.length > 1 && (first.includes(".") || first === "localhost");
    if (hasHost && !HOST.test(first)) throw new InputError(`has an invalid registry host "${first}"`);
    for (const component of hasHost ? components.slice(1) : components) {
      if (!COMPONENT.test(component)) {
        throw new InputError(
          `has an invalid name part "${component}": lowercase letters and digits separated by . _ __ or -`,
        );
      }
    }
    return { repository: name, tag: digest ? null : tag || "latest", digest };
  }

  /** The image as a wrap path writes it: the tag (or sha256-<hex> pin) as the last component. */
  function imagePath(image) {
    const last = image.digest ? `sha256-${image.digest.slice("sha256:".length)}` : image.tag;
    return `${image.repository}/${last}`;
  }

  /** The host image references name: PUBLIC_HOSTNAME, else this page's own. */
  function registryHost() {
    const meta = document.querySelector('meta[name="ociwrap-registry-host"]');
    const configured = meta ? meta.getAttribute("content").trim() : "";
    return configured && !configured.includes("{{") ? configured : window.location.host;
  }

  /** A fact the HTML carries about this deployment (meta tags filled in by the function). */
  function pageFact(name) {
    const meta = document.querySelector(`meta[name="ociwrap-${name}"]`);
    const value = meta ? meta.getAttribute("content").trim() : "";
    return value.includes("{{") ? "" : value;
  }

  // -- token lifetimes --------------------------------------------------------------------

  const DEFAULT_TTL_SECONDS = 86400;
  const LIFETIMES = [3600, 86400, 7 * 86400, 30 * 86400];

  /** "1 hour", "7 days", "36 hours": a lifetime as a person says it. */
  function durationText(seconds) {
    const units = [
      [86400, "day"],
      [3600, "hour"],
      [60, "minute"],
      [1, "second"],
    ];
    for (const [size, unit] of units) {
      if (seconds >= size && seconds % size === 0) {
        const count = seconds / size;
        return `${count} ${unit}${count === 1 ? "" : "s"}`;
      }
    }
    return `${seconds} seconds`;
  }

  /** "in 6 days", "in 3 hours": how far off `when` is, rounded as a person would. */
  function relativeTime(when, now) {
    const seconds = (when.getTime() - now) / 1000;
    const format = new Intl.RelativeTimeFormat("en", { numeric: "always" });
    const steps = [
      [90, 1, "second"],
      [90 * 60, 60, "minute"],
      [36 * 3600, 3600, "hour"],
    ];
    for (const [below, size, unit] of steps) {
      if (Math.abs(seconds) < below) return format.format(Math.round(seconds / size), unit);
    }
    return format.format(Math.round(seconds / 86400), "day");
  }

  function fillLifetimes() {
    const max = Number(pageFact("token-max-ttl")) || 30 * 86400;
    const choices = LIFETIMES.filter((seconds) => seconds <= max);
    if (!choices.includes(max)) choices.push(max);
    const preferred = choices.includes(DEFAULT_TTL_SECONDS) ? DEFAULT_TTL_SECONDS : Math.max(...choices);
    byId("token-ttl").replaceChildren(
      ...choices.map((seconds) => {
        const option = el("option", { value: String(seconds), text: durationText(seconds) });
        option.selected = seconds === preferred;
        return option;
      }),
    );
    byId("token-max").textContent = durationText(max);
  }

  // -- the form ---------------------------------------------------------------------------

  const state = {
    wrappers: [""],
    token: null, // {key, reference, expiresAt} of the token made for the current request
    reference: null,
    plan: null,
    answered: null, // what the answer below the reference is about (a reference or a preflight)
  };

  function renderWrappers(focusIndex) {
    const list = byId("wrapper-list");
    list.replaceChildren();
    state.wrappers.forEach((value, index) => {
      const number = index + 1;
      const id = `wrapper-${number}`;
      const input = el("input", {
        id,
        type: "text",
        className: "wrapper-input",
        autocomplete: "off",
        autocapitalize: "off",
        spellcheck: "false",
        placeholder: number === 1 ? "ghcr.io/acme/ci-wrapper:2" : "another wrapper",
        "aria-describedby": `${id}-error`,
        "data-index": String(index),
      });
      input.value = value;
      const remove = el("button", {
        type: "button",
        className: "secondary remove-wrapper",
        "aria-label": `Remove wrapper ${number}`,
        "data-index": String(index),
        text: "Remove",
      });
      show(remove, state.wrappers.length > 1);
      const row = el(
        "li",
        { className: "field wrapper-row" },
        el("label", { for: id, text: `Wrapper ${number}` }),
        el(
          "div",
          { className: "field-body" },
          el("div", { className: "wrapper-line" }, input, remove),
          el("p", { id: `${id}-error`, className: "field-error", hidden: "" }),
        ),
      );
      list.append(row);
    });
    byId("add-wrapper").disabled = state.wrappers.length >= MAX_WRAPPERS;
    if (focusIndex !== undefined) {
      const target = byId(`wrapper-${focusIndex + 1}`) || byId("wrapper-1");
      target.focus();
    }
  }

  function setFieldError(id, message) {
    const input = byId(id);
    const error = byId(`${id}-error`);
    if (message) {
      input.setAttribute("aria-invalid", "true");
      error.textContent = message;
      show(error, true);
      if (byId("advanced").contains(input)) byId("advanced").open = true;
    } else {
      input.removeAttribute("aria-invalid");
      error.textContent = "";
      show(error, false);
    }
  }

  function parseEnv(text) {
    const env = {};
    text.split("\n").forEach((line, index) => {
      if (!line.trim()) return;
      const equals = line.indexOf("=");
      const name = equals > 0 ? line.slice(0, equals).trim() : "";
      if (!name) throw new InputError(`line ${index + 1}: write NAME=value`);
      env[name] = line.slice(equals + 1);
    });
    return env;
  }

  function parseEntrypoint(text) {
    const value = text.trim();
    if (!value) return null;
    if (value.startsWith("[")) {
      let parsed;
      try {
        parsed = JSON.parse(value);
      } catch {
        throw new InputError("is not a JSON list");
      }
      if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === "string")) {
        throw new InputError("must be a JSON list of strings");
      }
      return parsed;
    }
    return value.split(/\s+/);
  }

  /** What the form asks for, checked field by field; null when a field is wrong. */
  function readForm() {
    let ok = true;
    const check = (id, read) => {
      try {
        const value = read(byId(id).value);
        setFieldError(id, "");
        return value;
      } catch (error) {
        if (!(error instanceof InputError)) throw error;
        setFieldError(id, `${labelOf(id)} ${error.message}.`);
        ok = false;
        return null;
      }
    };
    const baseText = byId("base").value.trim();
    const base = baseText ? check("base", parseReference) : (setFieldError("base", ""), null);
    const wrappers = [];
    state.wrappers.forEach((text, index) => {
      const id = `wrapper-${index + 1}`;
      if (!text.trim()) {
        setFieldError(id, "");
        return;
      }
      const parsed = check(id, parseReference);
      if (parsed) wrappers.push({ text: text.trim(), parsed });
    });
    const env = check("env", parseEnv);
    const entrypoint = check("entrypoint", parseEntrypoint);
    const platform = check("platform", (text) => {
      const value = text.trim();
      if (value && !PLATFORM.test(value)) throw new InputError("must look like linux/arm64");
      return value || null;
    });
    if (!ok) return { status: "invalid" };
    if (!base || wrappers.length === 0) return { status: "incomplete" };
    return { status: "ready", base: { text: baseText, parsed: base }, wrappers, env, entrypoint, platform };
  }

  function labelOf(id) {
    const label = document.querySelector(`label[for="${id}"]`);
    return label ? label.textContent.trim() : id;
  }

  /** A wrap path when one exists for the request, else why a token is needed. */
  function plan(request) {
    const reasons = [];
    if (request.wrappers.length > 1) reasons.push(`${request.wrappers.length} wrappers`);
    if (Object.keys(request.env).length) reasons.push("environment overrides");
    if (request.entrypoint) reasons.push("an entrypoint override");
    if (request.platform) reasons.push("a platform");
    const host = registryHost();
    const basePath = imagePath(request.base.parsed);
    const wrapperPath = imagePath(request.wrappers[0].parsed);
    if (`${basePath}/`.includes("/with/")) reasons.push('a base named with a "with" part');
    if (request.base.parsed.tag && PIN.test(request.base.parsed.tag)) {
      reasons.push("a tag that reads as a digest pin");
    }
    if (request.wrappers[0].parsed.tag && PIN.test(request.wrappers[0].parsed.tag)) {
      reasons.push("a tag that reads as a digest pin");
    }
    const name = `wrap/${basePath}/with/${wrapperPath}`;
    if (reasons.length === 0 && `${host}/${name}`.length > MAX_NAME_LENGTH) {
      reasons.push(`a name of ${host.length + 1 + name.length} characters, over docker's ${MAX_NAME_LENGTH}`);
    }
    if (reasons.length === 0) return { kind: "path", reference: `${host}/${name}:latest` };
    const body = { image: request.base.text, wrappers: request.wrappers.map((w) => w.text) };
    if (Object.keys(request.env).length) body.env = request.env;
    if (request.entrypoint) body.entrypoint = request.entrypoint;
    if (request.platform) body.platforms = [request.platform];
    body.ttlSeconds = Number(byId("token-ttl").value) || DEFAULT_TTL_SECONDS;
    return {
      kind: "token",
      reasons: [...new Set(reasons)],
      body,
      key: JSON.stringify(body),
      checks: preflightChecks(request),
    };
  }

  /** The wrap paths of the base with each wrapper: read before a token is made, they show a
   * missing image, a wrapper without its label or a refused name at once. */
  function preflightChecks(request) {
    const base = request.base.parsed;
    const basePath = imagePath(base);
    if (`${basePath}/`.includes("/with/") || (base.tag && PIN.test(base.tag))) return [];
    return request.wrappers
      .filter((wrapper) => !(wrapper.parsed.tag && PIN.test(wrapper.parsed.tag)))
      .map((wrapper) => ({
        role: request.wrappers.length > 1 ? `wrapper ${request.wrappers.indexOf(wrapper) + 1}` : "wrapper",
        name: `wrap/${basePath}/with/${imagePath(wrapper.parsed)}`,
      }));
  }

  function update() {
    const request = readForm();
    state.plan = request.status === "ready" ? plan(request) : null;
    if (state.token && (!state.plan || state.plan.kind !== "token" || state.plan.key !== state.token.key)) {
      state.token = null;
    }
    let reference = null;
    const note = byId("plan-note");
    show(byId("token-error"), false);
    if (request.status === "invalid") {
      note.textContent = "Fix the fields marked above.";
    } else if (!state.plan) {
      note.textContent = "Fill in a base image and a wrapper.";
    } else if (state.plan.kind === "path") {
      reference = state.plan.reference;
      note.textContent = "One wrapper and nothing else: a wrap path, nothing to create, it never expires.";
    } else {
      note.textContent = `This needs a container token (${state.plan.reasons.join(", ")}): a short name the registry keeps for the request.`;
      reference = state.token ? state.token.reference : null;
    }
    const needsToken = Boolean(state.plan && state.plan.kind === "token" && !state.token);
    show(byId("token-controls"), needsToken);
    byId("create-token").disabled = false;
    showExpiry();
    setReference(reference);
    if (reference) scheduleAnswer({ kind: "reference", key: reference });
    else if (needsToken && state.plan.checks.length) {
      scheduleAnswer({ kind: "preflight", key: JSON.stringify(state.plan.checks), checks: state.plan.checks });
    } else scheduleAnswer(null);
  }

  /** When the token expires: relative, the exact time on hover, and what happens then. */
  function showExpiry() {
    const token = state.token;
    show(byId("token-note"), Boolean(token));
    show(byId("token-warning"), Boolean(token));
    if (!token) return;
    const when = new Date(token.expiresAt);
    const time = byId("token-expiry");
    time.setAttribute("datetime", when.toISOString());
    time.setAttribute("title", `${when.toString()} (${when.toISOString()})`);
    time.textContent = relativeTime(when, Date.now());
    byId("token-warning").textContent =
      `The reference stops working then: pulls of it fail once the token has expired (${when.toISOString()}). ` +
      "For CI, choose a longer lifetime and make a new token before then, or use a wrap path (one wrapper, no overrides), which never expires.";
  }

  function setReference(reference) {
    state.reference = reference;
    show(byId("reference-row"), Boolean(reference));
    show(byId("snippets"), Boolean(reference));
    byId("inspect").disabled = !reference;
    if (!reference) return;
    byId("reference").textContent = reference;
    const snippets = snippetsFor(reference);
    for (const [id, text] of Object.entries(snippets)) byId(id).textContent = text;
  }

  function snippetsFor(reference) {
    const plainHttp = window.location.protocol === "http:" && reference.startsWith(`${window.location.host}/`);
    return {
      "snippet-docker": `docker run --rm ${reference}`,
      "snippet-podman": `podman run --rm ${plainHttp ? "--tls-verify=false " : ""}${reference}`,
      "snippet-kubernetes": [
        "apiVersion: v1",
        "kind: Pod",
        "metadata:",
        "  name: wrapped",
        "spec:",
        "  containers:",
        "    - name: main",
        `      image: ${reference}`,
      ].join("\n"),
      "snippet-github": [
        "jobs:",
        "  test:",
        "    runs-on: ubuntu-latest",
        "    container:",
        `      image: ${reference}`,
        "    steps:",
        "      - run: ./run-tests",
      ].join("\n"),
      "snippet-gitlab": ["test:", `  image: ${reference}`, "  script:", "    - ./run-tests"].join("\n"),
      "snippet-woodpecker": [
        "steps:",
        "  test:",
        `    image: ${reference}`,
        "    commands:",
        "      - ./run-tests",
      ].join("\n"),
    };
  }

  // -- snippet tabs -------------------------------------------------------------------------

  const TAB_KEY = "ociwrap.snippet";

  function tabs() {
    return [...byId("snippet-tabs").querySelectorAll('[role="tab"]')];
  }

  function selectTab(tab, focus) {
    for (const other of tabs()) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      show(byId(other.getAttribute("aria-controls")), selected);
    }
    if (focus) tab.focus();
    try {
      window.localStorage.setItem(TAB_KEY, tab.id);
    } catch {
      // Storage refused (private mode, a policy): the choice lasts this visit only.
    }
  }

  function startTabs() {
    let remembered = null;
    try {
      remembered = window.localStorage.getItem(TAB_KEY);
    } catch {
      remembered = null;
    }
    const first = tabs().find((tab) => tab.id === remembered) || tabs()[0];
    selectTab(first, false);
    const list = byId("snippet-tabs");
    list.addEventListener("click", (event) => {
      const tab = event.target.closest('[role="tab"]');
      if (tab) selectTab(tab, false);
    });
    list.addEventListener("keydown", (event) => {
      const all = tabs();
      const index = all.indexOf(document.activeElement);
      if (index < 0) return;
      const moves = {
        ArrowRight: (index + 1) % all.length,
        ArrowLeft: (index - 1 + all.length) % all.length,
        Home: 0,
        End: all.length - 1,
      };
      if (!(event.key in moves)) return;
      event.preventDefault();
      selectTab(all[moves[event.key]], true);
    });
  }

  // -- talking to the registry -----------------------------------------------------------

  class RegistryFailure extends Error {
    constructor(message, code) {
      super(message);
      this.code = code || "";
    }
  }

  /** The registry's own words for a failed answer: its JSON errors, else the status. */
  async function failure(response, what) {
    let detail = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`;
    let code = "";
    try {
      const body = await response.json();
      if (body && Array.isArray(body.errors) && body.errors.length) {
        code = String(body.errors[0].code || "");
        detail = body.errors
          .map((entry) => [entry.code, entry.message].filter(Boolean).join(": "))
          .join("; ");
        detail = `${response.status} ${detail}`;
      } else if (body && typeof body.message === "string") {
        detail = `${response.status} ${body.message}`;
      }
    } catch {
      // Not JSON: the status says it.
    }
    return new RegistryFailure(`${what}: ${detail}`, code);
  }

  /** A request to this registry, same origin (URLs from location.origin never carry a login). */
  async function registry(path, options, what) {
    let response;
    try {
      response = await fetch(new URL(path, window.location.origin), {
        credentials: "same-origin",
        cache: "no-store",
        ...options,
      });
    } catch (error) {
      throw new RegistryFailure(`${what}: the registry could not be reached (${error.message})`);
    }
    if (!response.ok) throw await failure(response, what);
    return response;
  }

  async function getJson(path, accept, what) {
    const response = await registry(path, { headers: { Accept: accept } }, what);
    try {
      return { body: await response.json(), response };
    } catch {
      throw new RegistryFailure(`${what}: the registry's answer is not JSON`);
    }
  }

  /** A config the registry holds, as JSON; null when it answers with a redirect instead
   * (a config no composition read: the page does not follow it to another origin). */
  async function heldConfig(repository, digest) {
    try {
      const response = await fetch(new URL(`/v2/${repository}/blobs/${digest}`, window.location.origin), {
        credentials: "same-origin",
        cache: "no-store",
        redirect: "manual",
        headers: { Accept: "application/json, */*" },
      });
      return response.ok ? await response.json() : null;
    } catch {
      return null;
    }
  }

  async function createToken() {
    const current = state.plan;
    if (!current || current.kind !== "token") return;
    const button = byId("create-token");
    button.disabled = true;
    announce("Creating a container token…");
    try {
      const response = await registry(
        "/v1alpha/tokens",
        {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify(current.body),
        },
        "The token was not created",
      );
      const answer = await response.json();
      if (state.plan !== current) return; // the form changed meanwhile
      state.token = { key: current.key, reference: answer.targetImage, expiresAt: answer.expiresAt };
      update();
      announce("Token created: the reference is ready.");
      byId("reference-row").querySelector("button").focus();
    } catch (error) {
      if (!(error instanceof RegistryFailure)) throw error;
      button.disabled = false;
      const box = byId("token-error");
      box.textContent = error.message;
      show(box, true);
    }
  }

  // -- the answer: what the reference runs, or why it cannot ------------------------------

  const ANSWER_DELAY_MS = 400;
  let answerTimer = 0;
  let inspection = 0; // the newest inspection; older ones drop their results

  /** Answer for `target` once typing pauses; nothing new when it is what is shown already. */
  function scheduleAnswer(target) {
    const key = target ? `${target.kind}:${target.key}` : null;
    if (key === state.answered) return;
    state.answered = key;
    clearTimeout(answerTimer);
    resetAnswer();
    if (!target) return;
    answerTimer = setTimeout(() => answer(target), ANSWER_DELAY_MS);
  }

  function answer(target) {
    clearTimeout(answerTimer);
    if (target.kind === "reference") inspect();
    else preflight(target.checks);
  }

  function resetAnswer() {
    inspection += 1;
    show(byId("inspect-result"), false);
    show(byId("inspect-error"), false);
    byId("inspect-status").textContent = "";
  }

  /** What a person can do about a refusal, from the registry's code and words. */
  function hintFor(failed) {
    const text = failed.message;
    if (text.includes("org.goci.wrapper")) {
      return "A wrapper image names the script to run in its org.goci.wrapper label: add LABEL org.goci.wrapper=/usr/local/bin/wrap.sh (an executable in the image) to the wrapper's Containerfile, then build and push it again.";
    }
    if (text.includes("has no layers")) return "A wrapper image must add at least one layer: the one with its script.";
    if (failed.code === "DENIED") {
      return "This registry refuses that image: its operator decides which registries it reaches (UPSTREAM_ALLOW) and which wrappers it takes (WRAPPER_POLICY).";
    }
    if (["MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"].includes(failed.code)) {
      return "Check the image's name and tag: the registry it names does not have it (or needs a login this registry lacks).";
    }
    if (failed.code === "UNAUTHORIZED") return "The registry the image is on asked for a login this registry does not have.";
    if (failed.code === "NAME_INVALID") return "This registry cannot read that name; see the hint under the field.";
    return "";
  }

  function showFailure(failed) {
    byId("inspect-status").textContent = "";
    byId("inspect-error-text").textContent = failed.message;
    const hint = hintFor(failed);
    byId("inspect-error-hint").textContent = hint;
    show(byId("inspect-error-hint"), Boolean(hint));
    show(byId("inspect-result"), false);
    show(byId("inspect-error"), true);
  }

  /** Before a token exists: read the base with each wrapper through its wrap path, so what
   * would stop the token's image shows before anyone creates it. */
  async function preflight(checks) {
    resetAnswer();
    const mine = inspection;
    byId("inspect-status").textContent = "Reading the base and the wrappers…";
    try {
      for (const check of checks) {
        await getJson(`/v2/${check.name}/manifests/latest`, MANIFEST_ACCEPT, `With ${check.role}, the registry refused the image`);
        if (mine !== inspection) return;
      }
      byId("inspect-status").textContent =
        "The base and the wrappers compose. Create the token to see what the image will run.";
    } catch (error) {
      if (!(error instanceof RegistryFailure)) throw error;
      if (mine === inspection) showFailure(error);
    }
  }

  /** name and tag of `host/name:tag`, for /v2/<name>/manifests/<tag> on this origin. */
  function nameAndTag(reference) {
    const withoutHost = reference.slice(reference.indexOf("/") + 1);
    const colon = withoutHost.lastIndexOf(":");
    return { name: withoutHost.slice(0, colon), tag: withoutHost.slice(colon + 1) };
  }

  /** The repository part of an annotation's `name:tag` or `name@digest`. */
  function repositoryOf(text) {
    const name = text.split("@")[0];
    const colon = name.lastIndexOf(":");
    return colon > name.lastIndexOf("/") ? name.slice(0, colon) : name;
  }

  function isIndex(manifest, response) {
    const type = manifest.mediaType || (response.headers.get("Content-Type") || "").split(";")[0];
    return type === OCI_INDEX || type === DOCKER_LIST || Array.isArray(manifest.manifests);
  }

  function platformText(platform) {
    if (!platform) return "unknown";
    return [platform.os, platform.architecture, platform.variant].filter(Boolean).join("/");
  }

  async function inspect() {
    const reference = state.reference;
    if (!reference) return;
    resetAnswer();
    const mine = inspection;
    const status = byId("inspect-status");
    status.textContent = "Reading the manifest…";
    const { name, tag } = nameAndTag(reference);
    try {
      const top = await getJson(`/v2/${name}/manifests/${tag}`, MANIFEST_ACCEPT, "The registry refused the image");
      if (mine !== inspection) return;
      let entries = null;
      if (isIndex(top.body, top.response)) {
        entries = (top.body.manifests || []).filter((entry) => platformText(entry.platform) !== "unknown/unknown");
        if (entries.length === 0) throw new RegistryFailure("The index lists no runnable platform");
      }
      const view = {
        name,
        digest: top.response.headers.get("Docker-Content-Digest") || "",
        entries,
        envOverrides: tokenEnvNames(reference),
      };
      view.signature = await signatureOf(view);
      view.provenance = await provenanceOf(view);
      await showPlatform(view, entries ? preferredEntry(entries) : null, top.body, mine);
    } catch (error) {
      if (!(error instanceof RegistryFailure)) throw error;
      if (mine === inspection) showFailure(error);
    }
  }

  /** The names a token made here sets in the environment; null when not known. */
  function tokenEnvNames(reference) {
    const current = state.plan;
    if (!state.token || state.token.reference !== reference || !current || current.kind !== "token") return null;
    return new Set(Object.keys(current.body.env || {}));
  }

  /** Whether the registry signed the image (cosign's `sha256-<hex>.sig` tag), when it signs. */
  async function signatureOf(view) {
    if (pageFact("signing") !== "on" || !DIGEST.test(view.digest)) return { signing: false };
    const tag = `sha256-${view.digest.slice("sha256:".length)}.sig`;
    try {
      await getJson(`/v2/${view.name}/manifests/${tag}`, MANIFEST_ACCEPT, "The signature could not be read");
      return { signing: true, signed: true, tag };
    } catch (error) {
      if (!(error instanceof RegistryFailure)) throw error;
      return { signing: true, signed: false, problem: error.message };
    }
  }

  /** The registry's provenance of the image (cosign's `sha256-<hex>.att` tag, a DSSE
   * envelope of an in-toto statement), its signature checked with the registry's key in
   * this browser; null when the registry does not sign. */
  async function provenanceOf(view) {
    if (pageFact("signing") !== "on" || !DIGEST.test(view.digest)) return null;
    const tag = `sha256-${view.digest.slice("sha256:".length)}.att`;
    try {
      const manifest = (await getJson(`/v2/${view.name}/manifests/${tag}`, MANIFEST_ACCEPT, "The provenance could not be read")).body;
      const layer = (manifest.layers || [])[0];
      if (!layer || !DIGEST.test(layer.digest || "")) throw new RegistryFailure("The provenance names no envelope");
      const envelope = (await getJson(`/v2/${view.name}/blobs/${layer.digest}`, "application/json, */*", "The provenance envelope could not be read")).body;
      const payload = fromBase64(String(envelope.payload || ""));
      const statement = JSON.parse(new TextDecoder().decode(payload));
      const verified = await verifyEnvelope(envelope, payload);
      return { tag, statement, verified };
    } catch (error) {
      if (!(error instanceof RegistryFailure) && !(error instanceof SyntaxError)) throw error;
      return { problem: error.message };
    }
  }

  function fromBase64(text) {
    return Uint8Array.from(atob(text), (character) => character.charCodeAt(0));
  }

  /** DSSE's pre-authentication encoding: what the envelope's signature covers. */
  function pae(type, payload) {
    const encoder = new TextEncoder();
    const typeBytes = encoder.encode(type);
    const head = encoder.encode(`DSSEv1 ${typeBytes.length} ${type} ${payload.length} `);
    const all = new Uint8Array(head.length + payload.length);
    all.set(head);
    all.set(payload, head.length);
    return all;
  }

  /** An ASN.1 DER ECDSA signature as WebCrypto wants it: r and s, 32 bytes each. */
  function rawSignature(der) {
    if (der[0] !== 0x30) throw new SyntaxError("the signature is not DER");
    let offset = der[1] & 0x80 ? 2 + (der[1] & 0x7f) : 2;
    const parts = [];
    for (let i = 0; i < 2; i += 1) {
      if (der[offset] !== 0x02) throw new SyntaxError("the signature is not DER");
      const length = der[offset + 1];
      let value = der.slice(offset + 2, offset + 2 + length);
      while (value.length > 32 && value[0] === 0) value = value.slice(1);
      if (value.length > 32) throw new SyntaxError("the signature is not P-256");
      const padded = new Uint8Array(32);
      padded.set(value, 32 - value.length);
      parts.push(padded);
      offset += 2 + length;
    }
    const raw = new Uint8Array(64);
    raw.set(parts[0]);
    raw.set(parts[1], 32);
    return raw;
  }

  /** Does one of the envelope's signatures verify with the registry's public key? */
  async function verifyEnvelope(envelope, payload) {
    if (!window.crypto || !window.crypto.subtle) return false;
    const pem = await (await registry("/v1alpha/signing-key", {}, "The signing key could not be read")).text();
    const der = fromBase64(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""));
    const key = await window.crypto.subtle.importKey("spki", der, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
    const signed = pae(String(envelope.payloadType || ""), payload);
    for (const entry of Array.isArray(envelope.signatures) ? envelope.signatures : []) {
      try {
        const raw = rawSignature(fromBase64(String(entry.sig || "")));
        if (await window.crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, raw, signed)) return true;
      } catch {
        // A malformed signature verifies nothing; another may.
      }
    }
    return false;
  }

  function preferredEntry(entries) {
    const wanted = byId("platform").value.trim();
    return entries.find((entry) => platformText(entry.platform).startsWith(wanted || "linux/amd64")) || entries[0];
  }

  /** Read and show one image: the manifest itself, or an index entry's. */
  async function showPlatform(view, entry, manifestIfSingle, mine) {
    const status = byId("inspect-status");
    let manifest = manifestIfSingle;
    let digest = view.digest;
    if (entry) {
      status.textContent = `Reading the ${platformText(entry.platform)} manifest…`;
      manifest = (await getJson(`/v2/${view.name}/manifests/${entry.digest}`, MANIFEST_ACCEPT, "The registry refused the platform's manifest")).body;
      digest = entry.digest;
    }
    if (!manifest.config || !manifest.config.digest) throw new RegistryFailure("The manifest names no config");
    status.textContent = "Reading the config…";
    let config = null;
    if (manifest.config.size <= CONFIG_MAX_BYTES) {
      config = (await getJson(`/v2/${view.name}/blobs/${manifest.config.digest}`, "application/json, */*", "The registry refused the config")).body;
    }
    status.textContent = "Reading where everything comes from…";
    const origins = await readOrigins(manifest);
    if (mine !== inspection) return;
    render(view, entry, digest, manifest, config, origins);
    const layers = manifest.layers || [];
    status.textContent = `Inspected: ${layers.length} layer${layers.length === 1 ? "" : "s"}.`;
  }

  /** The base and wrappers the annotations name, with their manifests and (when the
   * registry holds them) configs: where layers and settings come from. */
  async function readOrigins(manifest) {
    const notes = manifest.annotations || {};
    const sources = [];
    if (notes[ANNOTATION.baseName] && notes[ANNOTATION.baseDigest]) {
      sources.push({ role: "base", label: "base", name: notes[ANNOTATION.baseName], digest: notes[ANNOTATION.baseDigest] });
    }
    const names = (notes[ANNOTATION.wrapperNames] || "").split(",").filter(Boolean);
    const digests = (notes[ANNOTATION.wrapperDigests] || "").split(",").filter(Boolean);
    names.forEach((wrapperName, index) => {
      if (!digests[index]) return;
      const label = names.length > 1 ? `wrapper ${index + 1}` : "wrapper";
      sources.push({ role: "wrapper", number: index + 1, label, name: wrapperName, digest: digests[index] });
    });
    const origins = { byDigest: new Map(), problems: [], wrapperCount: names.length, base: null, wrappers: [] };
    const results = await Promise.allSettled(
      sources.map(async (source) => {
        const repository = repositoryOf(source.name);
        const read = await getJson(`/v2/${repository}/manifests/${source.digest}`, MANIFEST_ACCEPT, `The ${source.label}'s manifest could not be read`);
        const configDigest = read.body.config && read.body.config.digest;
        const config = DIGEST.test(configDigest || "") ? await heldConfig(repository, configDigest) : null;
        return { manifest: read.body, config };
      }),
    );
    results.forEach((result, index) => {
      const source = sources[index];
      if (result.status === "rejected") {
        origins.problems.push(result.reason.message);
        return;
      }
      const config = result.value.config && typeof result.value.config === "object" ? result.value.config : null;
      if (source.role === "base") origins.base = { ...source, config };
      else origins.wrappers.push({ ...source, config });
      for (const layer of result.value.manifest.layers || []) {
        if (!origins.byDigest.has(layer.digest)) {
          origins.byDigest.set(layer.digest, { label: source.label, name: source.name });
        }
      }
    });
    if (sources.length === 0) origins.problems.push("The manifest does not say what it was composed of.");
    return origins;
  }

  function formatBytes(size) {
    if (typeof size !== "number" || !Number.isFinite(size)) return "?";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = size;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
  }

  /** A word as a POSIX shell would need it written. */
  function shellWord(word) {
    return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
  }

  function textOrUnset(value, unset) {
    return typeof value === "string" && value ? value : unset;
  }

  // -- where each setting comes from ----------------------------------------------------------

  /** What the composition's own history entry says was overridden (entrypoint, cmd, env…). */
  function overridden(config) {
    const history = Array.isArray(config.history) ? config.history : [];
    const entry = history.find((item) => item && typeof item.created_by === "string" && item.created_by.startsWith("ociwrap: overrides "));
    return new Set(entry ? entry.created_by.slice("ociwrap: overrides ".length).split(", ") : []);
  }

  /** Each entrypoint and command word with where it comes from. */
  function runSources(entrypoint, cmd, changed, wrapperCount) {
    const script = (number) => (wrapperCount > 1 ? `wrapper ${number}'s script` : "wrapper's script");
    return [
      ...entrypoint.map((word, index) => {
        let source = "base entrypoint";
        if (changed.has("entrypoint")) source = "entrypoint override";
        else if (index < wrapperCount) source = script(index + 1);
        return { part: "entrypoint", word, source };
      }),
      ...cmd.map((word) => ({ part: "cmd", word, source: changed.has("cmd") ? "command override" : "base command" })),
    ];
  }

  function envOf(config) {
    const inner = config && config.config;
    const env = inner && Array.isArray(inner.Env) ? inner.Env : [];
    return env.filter((item) => typeof item === "string");
  }

  function envName(entry) {
    const equals = entry.indexOf("=");
    return equals >= 0 ? entry.slice(0, equals) : entry;
  }

  /** Where one variable of the composed environment comes from: the override that set it,
   * the last wrapper that set it to this value, or the base (which keeps its PATH). */
  function envSource(entry, origins, changed, envOverrides) {
    const name = envName(entry);
    if (envOverrides && envOverrides.has(name)) return "override";
    const baseEnv = origins.base && origins.base.config ? envOf(origins.base.config) : null;
    const basePath = name === "PATH" && baseEnv && baseEnv.some((item) => envName(item) === "PATH");
    if (!basePath) {
      for (const wrapper of [...origins.wrappers].reverse()) {
        if (wrapper.config && envOf(wrapper.config).includes(entry)) return wrapper.label;
      }
    }
    if (baseEnv && baseEnv.includes(entry)) return "base";
    if (changed.has("env")) return "override";
    return "";
  }

  function render(view, entry, digest, manifest, config, origins) {
    const notes = manifest.annotations || {};
    byId("inspect-digest").textContent = digest || "(not given)";
    byId("inspect-base").textContent = textOrUnset(notes[ANNOTATION.baseName], "(not given)");
    byId("inspect-wrappers").textContent = textOrUnset(
      (notes[ANNOTATION.wrapperNames] || "").split(",").filter(Boolean).join(", "),
      "(not given)",
    );
    renderSignature(view.signature);
    renderProvenance(view.provenance);
    renderPlatforms(view, entry);

    const inner = (config && config.config) || {};
    const changed = config ? overridden(config) : new Set();
    const entrypoint = Array.isArray(inner.Entrypoint) ? inner.Entrypoint : [];
    const cmd = Array.isArray(inner.Cmd) ? inner.Cmd : [];
    const run = byId("inspect-run");
    if (!config) {
      run.replaceChildren(el("li", { text: `The config is ${formatBytes(manifest.config.size)}, too large to show here.` }));
    } else {
      const items = runSources(entrypoint, cmd, changed, origins.wrapperCount).map((item) =>
        el(
          "li",
          { className: item.part, "data-source": item.source },
          el("code", { text: item.word }),
          el("span", { className: "part", text: item.source }),
        ),
      );
      run.replaceChildren(...(items.length ? items : [el("li", { text: "Nothing: no entrypoint and no command." })]));
    }
    byId("inspect-command").textContent = [...entrypoint, ...cmd].map(shellWord).join(" ");
    byId("inspect-workdir").textContent = textOrUnset(inner.WorkingDir, "(not set: /)");
    byId("inspect-user").textContent = textOrUnset(inner.User, "(not set: root)");

    const env = Array.isArray(inner.Env) ? inner.Env.map(String) : [];
    byId("inspect-env").tBodies[0].replaceChildren(
      ...env.map((line) => {
        const key = envName(line);
        const value = line.length > key.length ? line.slice(key.length + 1) : "";
        const source = envSource(line, origins, changed, view.envOverrides);
        return el(
          "tr",
          {},
          el("td", {}, el("code", { text: key })),
          el("td", {}, el("code", { text: value })),
          el("td", { className: `from ${source.split(" ")[0]}`, text: source || "not known" }),
        );
      }),
    );

    const layers = manifest.layers || [];
    let total = 0;
    byId("inspect-layers").tBodies[0].replaceChildren(
      ...layers.map((layer, index) => {
        const origin = origins.byDigest.get(layer.digest);
        total += typeof layer.size === "number" ? layer.size : 0;
        const from = el("td", { className: origin ? `from ${origin.label.split(" ")[0]}` : "from" }, origin ? origin.label : "unknown");
        if (origin) from.setAttribute("title", origin.name);
        return el(
          "tr",
          {},
          el("td", { className: "number", text: String(index + 1) }),
          from,
          el("td", { className: "number", title: `${layer.size} bytes`, text: formatBytes(layer.size) }),
          el("td", {}, el("code", { className: "digest", title: layer.digest, text: layer.digest })),
        );
      }),
    );
    byId("layers-total").textContent = formatBytes(total);
    const layersNote = byId("layers-note");
    layersNote.textContent = origins.problems.join(" ");
    show(layersNote, origins.problems.length > 0);
    show(byId("inspect-error"), false);
    show(byId("inspect-result"), true);
  }

  function renderSignature(signature) {
    const box = byId("inspect-signature");
    if (!signature || !signature.signing) {
      box.replaceChildren("Not signed: this registry does not sign what it composes.");
    } else if (signature.signed) {
      box.replaceChildren(
        el("span", { className: "signed", text: "Signed by this registry" }),
        " (cosign, tag ",
        el("code", { text: signature.tag }),
        "): verify it with ",
        el("a", { href: "/v1alpha/signing-key", text: "the public key" }),
        ".",
      );
    } else {
      box.replaceChildren(`Not signed: ${signature.problem}`);
    }
  }

  function renderProvenance(provenance) {
    const block = byId("provenance-block");
    show(block, Boolean(provenance));
    if (!provenance) return;
    const summary = byId("provenance-summary");
    const rows = byId("provenance-inputs").tBodies[0];
    if (provenance.problem) {
      summary.replaceChildren(`No provenance: ${provenance.problem}`);
      rows.replaceChildren();
      return;
    }
    const predicate = provenance.statement.predicate || {};
    const run = predicate.runDetails || {};
    const builder = run.builder || {};
    const version = builder.version && builder.version.ociwrap ? ` ${builder.version.ociwrap}` : "";
    const finished = run.metadata && run.metadata.finishedOn ? ` on ${run.metadata.finishedOn}` : "";
    summary.replaceChildren(
      el("span", { className: provenance.verified ? "signed" : "unsigned", text: provenance.verified ? "Signature verified" : "Signature NOT verified" }),
      ` with this registry's key: SLSA provenance (${provenance.statement.predicateType || "?"}, tag `,
      el("code", { text: provenance.tag }),
      `), made by ${builder.id || "?"} (ociwrap${version})${finished}.`,
    );
    const dependencies = ((predicate.buildDefinition || {}).resolvedDependencies || []).filter((item) => item && typeof item === "object");
    rows.replaceChildren(
      ...dependencies.map((item) => {
        const notes = item.annotations && typeof item.annotations === "object" ? item.annotations : {};
        const policy = notes.wrapperPolicy && typeof notes.wrapperPolicy === "object" ? notes.wrapperPolicy : null;
        const admitted = policy
          ? Object.entries(policy).map(([key, value]) => `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`).join(", ")
          : "no policy";
        const digest = item.digest && typeof item.digest.sha256 === "string" ? `sha256:${item.digest.sha256}` : "";
        return el(
          "tr",
          {},
          el("td", { text: String(item.name || "") }),
          el("td", {}, el("code", { text: String(item.uri || "").replace(/^docker:\/\//, "") })),
          el("td", {}, el("code", { className: "digest", title: digest, text: digest })),
          el("td", { text: admitted }),
        );
      }),
    );
  }

  function renderPlatforms(view, entry) {
    const platformBlock = byId("platform-block");
    show(platformBlock, Boolean(view.entries));
    if (!view.entries) return;
    byId("inspect-platforms").replaceChildren(
      ...view.entries.map((item) => el("li", { text: platformText(item.platform) })),
    );
    const select = byId("platform-choice");
    select.replaceChildren(
      ...view.entries.map((item, index) => {
        const option = el("option", { value: String(index), text: platformText(item.platform) });
        option.selected = item === entry;
        return option;
      }),
    );
    select.onchange = () => {
      const chosen = view.entries[Number(select.value)];
      inspection += 1;
      const mine = inspection;
      showPlatform(view, chosen, null, mine).catch((error) => {
        if (!(error instanceof RegistryFailure)) throw error;
        showFailure(error);
      });
    };
  }

  // -- copying ----------------------------------------------------------------------------

  async function copy(button) {
    const source = byId(button.getAttribute("data-copy"));
    const text = source.textContent;
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
      announce("Copied.");
    } catch {
      // No clipboard access (an insecure origin, a denied permission): select it instead.
      const range = document.createRange();
      range.selectNodeContents(source);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      button.textContent = "Selected";
      announce("Selected: press Ctrl+C (⌘C) to copy.");
    }
    setTimeout(() => {
      button.textContent = "Copy";
    }, 2000);
  }

  // -- wiring -----------------------------------------------------------------------------

  function start() {
    show(byId("key-item"), pageFact("signing") === "on");
    fillLifetimes();
    renderWrappers();
    startTabs();
    const form = byId("wrap-form");
    form.addEventListener("input", (event) => {
      const index = event.target.getAttribute("data-index");
      if (event.target.classList.contains("wrapper-input") && index !== null) {
        state.wrappers[Number(index)] = event.target.value;
      }
      update();
    });
    form.addEventListener("change", (event) => {
      if (event.target.id === "token-ttl") update();
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      update();
      if (state.plan && state.plan.kind === "token" && !state.token) createToken();
      else if (state.reference) answer({ kind: "reference", key: state.reference });
    });
    byId("wrapper-list").addEventListener("click", (event) => {
      const button = event.target.closest(".remove-wrapper");
      if (!button) return;
      const index = Number(button.getAttribute("data-index"));
      state.wrappers.splice(index, 1);
      renderWrappers(Math.max(index - 1, 0));
      update();
    });
    byId("add-wrapper").addEventListener("click", () => {
      if (state.wrappers.length >= MAX_WRAPPERS) return;
      state.wrappers.push("");
      renderWrappers(state.wrappers.length - 1);
      update();
    });
    byId("inspect").addEventListener("click", () => answer({ kind: "reference", key: state.reference }));
    document.addEventListener("click", (event) => {
      const button = event.target.closest("button.copy");
      if (button) copy(button);
    });
    // The expiry is relative ("in 6 days"): keep it true while the page stays open.
    setInterval(showExpiry, 60000);
    update();
  }

  start();
})();
