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

  // -- the form ---------------------------------------------------------------------------

  const state = {
    wrappers: [""],
    token: null, // {key, reference, expiresAt} of the token made for the current request
    reference: null,
    plan: null,
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
        { className: "wrapper-row" },
        el("label", { for: id, text: `Wrapper ${number}` }),
        el("div", { className: "wrapper-line" }, input, remove),
        el("p", { id: `${id}-error`, className: "field-error", hidden: "" }),
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
    return { kind: "token", reasons: [...new Set(reasons)], body, key: JSON.stringify(body) };
  }

  function update() {
    const request = readForm();
    state.plan = request.status === "ready" ? plan(request) : null;
    if (state.token && (!state.plan || state.plan.kind !== "token" || state.plan.key !== state.token.key)) {
      state.token = null;
    }
    let reference = null;
    const note = byId("plan-note");
    const tokenButton = byId("create-token");
    const tokenNote = byId("token-note");
    show(byId("token-error"), false);
    if (request.status === "invalid") {
      note.textContent = "Fix the fields marked above.";
    } else if (!state.plan) {
      note.textContent = "Fill in a base image and a wrapper.";
    } else if (state.plan.kind === "path") {
      reference = state.plan.reference;
      note.textContent = "One wrapper and nothing else: a wrap path, nothing to create.";
    } else {
      note.textContent = `This needs a container token (${state.plan.reasons.join(", ")}): a short name the registry keeps for the request.`;
      reference = state.token ? state.token.reference : null;
    }
    const needsToken = Boolean(state.plan && state.plan.kind === "token" && !state.token);
    show(tokenButton, needsToken);
    tokenButton.disabled = false;
    show(tokenNote, Boolean(state.token));
    if (state.token) tokenNote.textContent = `Token created; it expires at ${state.token.expiresAt}.`;
    setReference(reference);
  }

  function setReference(reference) {
    const changed = reference !== state.reference;
    state.reference = reference;
    show(byId("reference-row"), Boolean(reference));
    show(byId("snippets"), Boolean(reference));
    byId("inspect").disabled = !reference;
    if (!reference) return;
    byId("reference").textContent = reference;
    const snippets = snippetsFor(reference);
    for (const [id, text] of Object.entries(snippets)) byId(id).textContent = text;
    if (changed) resetInspect();
  }

  function snippetsFor(reference) {
    const plainHttp = window.location.protocol === "http:" && reference.startsWith(`${window.location.host}/`);
    return {
      "snippet-docker": `docker run --rm ${reference}`,
      "snippet-podman": `podman run --rm ${plainHttp ? "--tls-verify=false " : ""}${reference}`,
      "snippet-woodpecker": [
        "steps:",
        "  test:",
        `    image: ${reference}`,
        "    commands:",
        "      - ./run-tests",
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
    };
  }

  // -- talking to the registry -----------------------------------------------------------

  class RegistryFailure extends Error {}

  /** The registry's own words for a failed answer: its JSON errors, else the status. */
  async function failure(response, what) {
    let detail = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`;
    try {
      const body = await response.json();
      if (body && Array.isArray(body.errors) && body.errors.length) {
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
    return new RegistryFailure(`${what}: ${detail}`);
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

  // -- inspect ----------------------------------------------------------------------------

  let inspection = 0; // the newest inspection; older ones drop their results

  function resetInspect() {
    inspection += 1;
    show(byId("inspect-result"), false);
    show(byId("inspect-error"), false);
    byId("inspect-status").textContent = "";
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
    resetInspect();
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
      };
      await showPlatform(view, entries ? preferredEntry(entries) : null, top.body, mine);
    } catch (error) {
      if (!(error instanceof RegistryFailure)) throw error;
      if (mine !== inspection) return;
      status.textContent = "";
      const box = byId("inspect-error");
      box.textContent = error.message;
      show(box, true);
    }
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
    status.textContent = "Reading where the layers come from…";
    const origins = await layerOrigins(manifest);
    if (mine !== inspection) return;
    render(view, entry, digest, manifest, config, origins);
    const layers = manifest.layers || [];
    status.textContent = `Inspected: ${layers.length} layer${layers.length === 1 ? "" : "s"}.`;
  }

  /** digest → "base" / "wrapper" (/ "wrapper N"), from the manifests the annotations name. */
  async function layerOrigins(manifest) {
    const notes = manifest.annotations || {};
    const sources = [];
    if (notes[ANNOTATION.baseName] && notes[ANNOTATION.baseDigest]) {
      sources.push({ label: "base", name: notes[ANNOTATION.baseName], digest: notes[ANNOTATION.baseDigest] });
    }
    const names = (notes[ANNOTATION.wrapperNames] || "").split(",").filter(Boolean);
    const digests = (notes[ANNOTATION.wrapperDigests] || "").split(",").filter(Boolean);
    names.forEach((wrapperName, index) => {
      if (!digests[index]) return;
      const label = names.length > 1 ? `wrapper ${index + 1}` : "wrapper";
      sources.push({ label, name: wrapperName, digest: digests[index] });
    });
    const origins = { byDigest: new Map(), problems: [] };
    const results = await Promise.allSettled(
      sources.map((source) =>
        getJson(`/v2/${repositoryOf(source.name)}/manifests/${source.digest}`, MANIFEST_ACCEPT, `The ${source.label}'s manifest could not be read`),
      ),
    );
    results.forEach((result, index) => {
      const source = sources[index];
      if (result.status === "rejected") {
        origins.problems.push(result.reason.message);
        return;
      }
      for (const layer of result.value.body.layers || []) {
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

  function render(view, entry, digest, manifest, config, origins) {
    const notes = manifest.annotations || {};
    byId("inspect-digest").textContent = digest || "(not given)";
    byId("inspect-base").textContent = textOrUnset(notes[ANNOTATION.baseName], "(not given)");
    byId("inspect-wrappers").textContent = textOrUnset(
      (notes[ANNOTATION.wrapperNames] || "").split(",").filter(Boolean).join(", "),
      "(not given)",
    );

    const platformBlock = byId("platform-block");
    show(platformBlock, Boolean(view.entries));
    if (view.entries) {
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
          const box = byId("inspect-error");
          box.textContent = error.message;
          show(box, true);
        });
      };
    }

    const inner = (config && config.config) || {};
    const entrypoint = Array.isArray(inner.Entrypoint) ? inner.Entrypoint : [];
    const cmd = Array.isArray(inner.Cmd) ? inner.Cmd : [];
    const run = byId("inspect-run");
    if (!config) {
      run.replaceChildren(el("li", { text: `The config is ${formatBytes(manifest.config.size)}, too large to show here.` }));
    } else {
      const items = [
        ...entrypoint.map((word) => ["entrypoint", word]),
        ...cmd.map((word) => ["cmd", word]),
      ].map(([part, word]) =>
        el("li", { className: part }, el("code", { text: word }), el("span", { className: "part", text: part === "cmd" ? "command" : "entrypoint" })),
      );
      run.replaceChildren(...(items.length ? items : [el("li", { text: "Nothing: no entrypoint and no command." })]));
    }
    byId("inspect-command").textContent = [...entrypoint, ...cmd].map(shellWord).join(" ");
    byId("inspect-workdir").textContent = textOrUnset(inner.WorkingDir, "(not set: /)");
    byId("inspect-user").textContent = textOrUnset(inner.User, "(not set: root)");

    const env = Array.isArray(inner.Env) ? inner.Env : [];
    byId("inspect-env").tBodies[0].replaceChildren(
      ...env.map((line) => {
        const equals = String(line).indexOf("=");
        const key = equals >= 0 ? line.slice(0, equals) : line;
        const value = equals >= 0 ? line.slice(equals + 1) : "";
        return el("tr", {}, el("td", {}, el("code", { text: key })), el("td", {}, el("code", { text: value })));
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
    renderWrappers();
    const form = byId("wrap-form");
    form.addEventListener("input", (event) => {
      const index = event.target.getAttribute("data-index");
      if (event.target.classList.contains("wrapper-input") && index !== null) {
        state.wrappers[Number(index)] = event.target.value;
      }
      update();
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      update();
      if (state.plan && state.plan.kind === "token" && !state.token) createToken();
      else if (state.reference) inspect();
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
    byId("inspect").addEventListener("click", () => inspect());
    document.addEventListener("click", (event) => {
      const button = event.target.closest("button.copy");
      if (button) copy(button);
    });
    update();
  }

  start();
})();
