// The ganforge page: samples, an interpolation strip, finding an uploaded image, and the model's provenance.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "ganforge-token";
  const latest = { samples: 0, interp: 0 };
  let frames = [];
  let isPoints = false; // a 2-D (toy) model: its samples are points, shown as one scatter plot
  let scatterUrl = null;
  let limits = {};

  // A token comes once as /?token=T; keep it for this tab only and drop it from the address bar.
  const query = new URLSearchParams(location.search);
  if (query.has("token")) {
    sessionStorage.setItem(TOKEN_KEY, query.get("token"));
    query.delete("token");
    const rest = query.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
  }

  function status(text, isError = false) {
    const el = $("status");
    el.textContent = text;
    el.classList.toggle("error", isError);
  }

  async function request(path, body) {
    const headers = {};
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = "Bearer " + token;
    const init = { headers };
    if (body !== undefined) {
      init.method = "POST";
      init.body = body;
      headers["Content-Type"] = "application/json";
    }
    const res = await fetch(path, init);
    if (res.status === 401) {
      $("token-form").hidden = false;
      throw new Error("this server needs a token");
    }
    if (!res.ok) {
      const data = await res.json().catch(() => null);
      throw new Error((data && data.message) || `HTTP ${res.status}`);
    }
    return res;
  }

  async function api(path, body) {
    return (await request(path, body)).json();
  }

  function seedOf(id) {
    const text = $(id).value.trim();
    if (!/^\d{1,19}$/.test(text)) throw new Error(`a seed is a whole number from 0 to 2^63-1; got "${text}"`);
    return text;
  }

  // Seeds go into the JSON as typed: JavaScript numbers lose digits above 2^53.
  function jsonBody(fields, seeds) {
    const parts = Object.entries(fields)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => JSON.stringify(k) + ":" + JSON.stringify(v));
    for (const [k, text] of Object.entries(seeds)) parts.push(JSON.stringify(k) + ":" + text);
    return "{" + parts.join(",") + "}";
  }

  function options() {
    const picked = $("class").value;
    return { truncation: Number($("truncation").value), class: picked === "" ? null : Number(picked), format: "json" };
  }

  function randomSeed() {
    const words = new Uint32Array(1);
    crypto.getRandomValues(words);
    return String(words[0]);
  }

  function pngImage(b64, label) {
    const img = new Image();
    img.src = "data:image/png;base64," + b64;
    img.alt = label;
    img.title = label;
    return img;
  }

  async function showScatter(seed) {
    const id = latest.samples;
    const fields = { n: Number($("count").value), ...options(), format: "scatter" };
    const blob = await (await request("/v1/generate", jsonBody(fields, { seed }))).blob();
    if (id !== latest.samples) return;
    if (scatterUrl) URL.revokeObjectURL(scatterUrl);
    scatterUrl = URL.createObjectURL(blob);
    const img = $("scatter");
    img.src = scatterUrl;
    img.hidden = false;
    $("grid").dataset.seed = seed;
  }

  async function showSamples() {
    const id = ++latest.samples;
    const seed = seedOf("seed");
    if (isPoints) return showScatter(seed);
    const data = await api("/v1/generate", jsonBody({ n: Number($("count").value), ...options() }, { seed }));
    if (id !== latest.samples) return; // a newer request has been sent
    const grid = $("grid");
    grid.style.gridTemplateColumns = `repeat(${Math.ceil(Math.sqrt(data.images.length))}, minmax(0, 96px))`;
    grid.replaceChildren(...data.images.map((b64, i) => pngImage(b64, `seed ${seed}, image ${i}`)));
    grid.dataset.seed = seed;
  }

  function setFrame(i) {
    if (!frames.length) return;
    i = Math.max(0, Math.min(frames.length - 1, i));
    $("slider").value = String(i);
    $("frame").src = frames[i];
    $("frame-index").value = String(i + 1);
    $("strip").querySelectorAll("img").forEach((img, k) => img.classList.toggle("current", k === i));
  }

  async function showInterpolation() {
    if (isPoints) return; // a path of 2-D points has no frames to show
    const id = ++latest.interp;
    const seeds = { seed_a: seedOf("seed-a"), seed_b: seedOf("seed-b") };
    const data = await api("/v1/interpolate", jsonBody({ steps: Number($("steps").value), ...options() }, seeds));
    if (id !== latest.interp) return;
    frames = data.images.map((b64) => "data:image/png;base64," + b64);
    const strip = $("strip");
    strip.replaceChildren(
      ...data.images.map((b64, i) => {
        const img = pngImage(b64, `frame ${i}`);
        img.addEventListener("click", () => setFrame(i));
        return img;
      }),
    );
    const slider = $("slider");
    const fraction = Number(slider.value) / Math.max(1, Number(slider.max));
    slider.max = String(frames.length - 1);
    $("frame-count").value = String(frames.length);
    setFrame(Math.round(fraction * (frames.length - 1)));
  }

  function readAsDataUrl(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(new Error(`cannot read ${file.name}`));
      reader.readAsDataURL(file);
    });
  }

  function facts(rows) {
    return rows.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = k;
      dd.textContent = String(v);
      return [dt, dd];
    });
  }

  // Find this image: upload it, get back the closest latent, its class and the image G makes from it.
  async function findImage() {
    const file = $("find-file").files[0];
    if (!file) throw new Error("choose an image file first");
    if (file.size > limits.max_image_bytes) {
      throw new Error(`${file.name} is ${file.size} bytes; this server takes images up to ${limits.max_image_bytes}`);
    }
    const picked = $("class").value;
    const fields = { image: await readAsDataUrl(file), steps: Number($("find-steps").value) };
    if (picked !== "") fields.class = Number(picked);
    status("searching the latent space…");
    const data = await api("/v1/project", JSON.stringify(fields));
    $("find-input").src = "data:image/png;base64," + data.input;
    $("find-output").src = "data:image/png;base64," + data.image;
    const rows = [
      ["file", file.name],
      ...(data.class === null ? [] : [["class", data.class]]),
      ["pixel MSE", data.pixel_mse.toFixed(4)],
      ...(data.feature_cosine === null ? [] : [[`${data.extractor} feature cosine`, data.feature_cosine.toFixed(3)]]),
      ["latent", "[" + data.latent.map((v) => v.toFixed(3)).join(", ") + "]"],
    ];
    $("find-facts").replaceChildren(...facts(rows));
    $("find-result").hidden = false;
  }

  function showModel(model) {
    const cfg = model.config;
    const kind = model.is_conditional ? `${cfg.num_classes} classes` : "unconditional";
    isPoints = Boolean(model.is_points);
    $("summary").textContent =
      `${cfg.arch} · ${cfg.image_size}×${cfg.image_size} · ${cfg.channels} channel(s) · ${kind} · ` +
      `sha256 ${model.sha256.slice(0, 12)}…`;
    const rows = [
      ["generator sha256", model.sha256],
      ["architecture", `${cfg.arch}, width ${cfg.width}, z_dim ${cfg.z_dim}`],
      ["image", `${cfg.image_size}×${cfg.image_size}, ${cfg.channels} channel(s)`],
      ["classes", model.is_conditional ? model.classes.join(", ") : "none (unconditional)"],
      ...Object.entries(model.provenance || {}).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
      ["served by", `ganforge ${model.ganforge_version}`],
    ];
    $("provenance").replaceChildren(...facts(rows));
    if (model.is_conditional) {
      const picker = $("class");
      picker.replaceChildren(new Option("all (cycle)", ""), ...model.classes.map((c) => new Option(String(c), String(c))));
      document.querySelector(".class-picker").hidden = false;
    }
    if (isPoints) {
      // Points: a scatter plot needs many of them; offer counts up to the server's limit.
      const counts = [64, 256, 1024, 4096].filter((c) => c <= model.limits.max_n);
      if (!counts.includes(model.limits.max_n)) counts.push(model.limits.max_n);
      $("count").replaceChildren(...counts.map((c) => new Option(String(c), String(c))));
      $("count").value = String(counts[counts.length - 1]);
      $("interp-section").hidden = true;
      $("grid").hidden = true;
    }
    if (model.model_card) {
      // The run's MODEL_CARD.md, shown as text (never parsed as HTML).
      $("model-card").textContent = model.model_card;
      $("card-section").hidden = false;
    }
    $("count").querySelectorAll("option").forEach((o) => (o.disabled = Number(o.value) > model.limits.max_n));
    $("steps").max = String(model.limits.max_steps);
    limits = model.limits;
    if (model.can_project) {
      $("find-steps").max = String(model.limits.max_project_steps);
      $("find-section").hidden = false;
    }
  }

  // Run an action, reporting failures on the status line instead of throwing them away.
  function run(action) {
    return action().then(
      () => status(""),
      (err) => status(err.message, true),
    );
  }

  async function start() {
    showModel(await api("/v1/model"));
    await Promise.all([showSamples(), showInterpolation()]);
  }

  $("sample-form").addEventListener("submit", (e) => {
    e.preventDefault();
    run(showSamples);
  });
  $("new-samples").addEventListener("click", () => {
    $("seed").value = randomSeed();
    run(showSamples);
  });
  $("truncation").addEventListener("input", () => {
    $("truncation-value").value = Number($("truncation").value).toFixed(2);
  });
  $("truncation").addEventListener("change", () => run(() => Promise.all([showSamples(), showInterpolation()])));
  $("count").addEventListener("change", () => run(showSamples));
  $("class").addEventListener("change", () => run(() => Promise.all([showSamples(), showInterpolation()])));
  $("interp-form").addEventListener("submit", (e) => {
    e.preventDefault();
    run(showInterpolation);
  });
  $("new-pair").addEventListener("click", () => {
    $("seed-a").value = randomSeed();
    $("seed-b").value = randomSeed();
    run(showInterpolation);
  });
  $("find-form").addEventListener("submit", (e) => {
    e.preventDefault();
    run(findImage);
  });
  $("slider").addEventListener("input", () => setFrame(Number($("slider").value)));
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value);
    $("token-form").hidden = true;
    run(start);
  });

  run(start);
})();
