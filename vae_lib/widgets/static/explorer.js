// The browser explorers of vae_lib.widgets.explorers: a trained MLP VAE run in the page.
//
// One implementation for both places: vae_lib/widgets/explorers.py inlines this file, as
// it is, in a cell's text/html output (Jupyter, JupyterLab, VS Code, Colab), and the same
// output is what the built book shows, with no kernel and no network. The Python side
// wraps it as  (function () { <this file>; vlMountExplorer(root, spec); })();  where spec
// is JSON.parse of the output's application/json script block: weights as base64 float16 or
// float32 (shape, checksum), settings and a few precomputed points. Nothing is eval'ed.
//
// root.vlExplorer exposes the state for tests and teachers:
//   .state     what is shown: z, x, mu, logvar, eps, kl, decoded images (arrays of floats)
//   .timings   milliseconds per update, measured with performance.now()
//   .setLatent([z1, z2]) / .setDrawing(pixels) / .setValues({mu1, ...}) / .decode([z1, z2])
"use strict";

// --- weights ----------------------------------------------------------------------------

function vlFnv1a(bytes) {  // FNV-1a 32-bit of the raw bytes (the Python side writes the same)
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) { h ^= bytes[i]; h = Math.imul(h, 0x01000193) >>> 0; }
  return h >>> 0;
}

function vlHalfToFloat(h) {  // IEEE 754 binary16 -> number
  const s = (h & 0x8000) ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x03ff;
  if (e === 0) return s * f * Math.pow(2, -24);               // subnormal: f / 2^10 * 2^-14
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * Math.pow(2, e - 15);           // (1 + f/2^10) * 2^(e-15)
}

function vlTensor(t) {  // {shape, dtype, data (base64, little-endian), fnv1a32} -> Float32Array
  const bin = atob(t.data), bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  if (vlFnv1a(bytes) !== t.fnv1a32) throw new Error("vae_lib explorer: weights " + t.name + " are corrupt (checksum mismatch)");
  const n = t.shape.reduce((a, b) => a * b, 1), view = new DataView(bytes.buffer), out = new Float32Array(n);
  if (t.dtype === "float16") { for (let i = 0; i < n; i++) out[i] = vlHalfToFloat(view.getUint16(2 * i, true)); }
  else if (t.dtype === "float32") { for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true); }
  else if (t.dtype === "uint8") { for (let i = 0; i < n; i++) out[i] = bytes[i] / 255; }
  else throw new Error("vae_lib explorer: unknown dtype " + t.dtype);
  if (bytes.length !== n * {float16: 2, float32: 4, uint8: 1}[t.dtype]) throw new Error("vae_lib explorer: " + t.name + " has the wrong size");
  return out;
}

function vlMlp(layers) {  // [{weight [out, in], bias [out]}] with ReLU between: x [in] -> [out]
  const L = layers.map(l => ({W: vlTensor(l.weight), b: vlTensor(l.bias), n_out: l.weight.shape[0], n_in: l.weight.shape[1]}));
  const bufs = L.map(l => new Float32Array(l.n_out));
  return function forward(x) {
    let h = x;
    for (let k = 0; k < L.length; k++) {
      const {W, b, n_out, n_in} = L[k], y = bufs[k], relu = k < L.length - 1;
      for (let o = 0; o < n_out; o++) {            // y = W h + b, then ReLU except after the last
        let s = b[o]; const row = o * n_in;
        for (let i = 0; i < n_in; i++) s += W[row + i] * h[i];
        y[o] = relu && s < 0 ? 0 : s;
      }
      h = y;
    }
    return h;
  };
}

function vlModel(m) {  // the exported model: decode(z) -> E[x|z] in [0, 1], encode(x) -> {mu, logvar}
  const dec = vlMlp(m.decoder), D = m.latent_dim, P = m.input_shape.reduce((a, b) => a * b, 1);
  const enc = m.encoder ? vlMlp(m.encoder) : null;
  const model = {D: D, P: P, shape: m.input_shape};
  model.decode = function (z) {
    const out = dec(Float32Array.from(z)), p = new Float32Array(P);
    for (let i = 0; i < P; i++) {
      p[i] = m.likelihood === "bernoulli" ? 1 / (1 + Math.exp(-out[i]))   // Bernoulli mean σ(logit)
                                          : Math.min(1, Math.max(0, out[i]));  // Gaussian mean, clipped
    }
    return p;
  };
  if (enc) model.encode = function (x) {
    const h = enc(Float32Array.from(x));                                    // [2D]: (μ, log σ²)
    return {mu: Array.from(h.slice(0, D)), logvar: Array.from(h.slice(D, 2 * D))};
  };
  return model;
}

// --- small helpers ----------------------------------------------------------------------

function vlRng(seed) {  // mulberry32 uniform(0, 1), and standard normals by Box-Muller
  let a = seed >>> 0;
  const u = () => { a = (a + 0x6D2B79F5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296; };
  return {normal: () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u())};
}

function vlKl(mu, logvar) {  // KL(N(μ, diag σ²) || N(0, I)) = ½ Σ (μ² + σ² − 1 − log σ²), nats
  let s = 0;
  for (let d = 0; d < mu.length; d++) s += mu[d] * mu[d] + Math.exp(logvar[d]) - 1 - logvar[d];
  return 0.5 * s;
}

function vlEl(tag, attrs, parent, text) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function vlImage(parent, shape, scale, title) {  // a canvas that shows one decoded image
  const [C, H, W] = shape, wrap = vlEl("figure", {class: "vl-img"}, parent);
  const cv = vlEl("canvas", {width: W, height: H, style: "width:" + W * scale + "px;height:" + H * scale + "px"}, wrap);
  if (title) vlEl("figcaption", {}, wrap, title);
  const ctx = cv.getContext("2d"), img = ctx.createImageData(W, H);
  return function show(p) {  // p: [C*H*W] in [0, 1], dark ink on white
    for (let i = 0; i < H * W; i++) {
      for (let c = 0; c < 3; c++) img.data[4 * i + c] = Math.round(255 * (1 - p[(C === 3 ? c : 0) * H * W + i]));
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  };
}

function vlPlane(parent, spec, px) {  // a 2-D latent plane: a static background and an overlay
  const wrap = vlEl("div", {class: "vl-plane", style: "width:" + px + "px;height:" + px + "px"}, parent);
  const bg = vlEl("canvas", {width: px, height: px}, wrap), fg = vlEl("canvas", {width: px, height: px}, wrap);
  const [x0, x1, y0, y1] = spec.extent;
  const plane = {
    fg: fg, ctx: fg.getContext("2d"), bgctx: bg.getContext("2d"), px: px,
    toPx: (z) => [(z[0] - x0) / (x1 - x0) * px, (y1 - z[1]) / (y1 - y0) * px],
    toZ: (ev) => { const r = fg.getBoundingClientRect();
      return [x0 + (ev.clientX - r.left) / r.width * (x1 - x0), y1 - (ev.clientY - r.top) / r.height * (y1 - y0)]; },
  };
  const g = plane.bgctx;
  g.fillStyle = "#fff"; g.fillRect(0, 0, px, px);
  g.strokeStyle = "#ccc"; g.lineWidth = 1;
  const o = plane.toPx([0, 0]);
  g.beginPath(); g.moveTo(0, o[1]); g.lineTo(px, o[1]); g.moveTo(o[0], 0); g.lineTo(o[0], px); g.stroke();
  if (spec.prior_contours) {  // N(0, I): circles at 1, 2, 3 σ
    g.strokeStyle = "#999"; g.setLineDash([4, 4]);
    for (const r of [1, 2, 3]) { g.beginPath(); g.arc(o[0], o[1], r / (x1 - x0) * px, 0, 2 * Math.PI); g.stroke(); }
    g.setLineDash([]);
  }
  if (spec.points) {  // encoded training means, coloured by class
    const pts = vlTensor(spec.points), lab = spec.labels || [];
    for (let i = 0; i < pts.length / 2; i++) {
      const q = plane.toPx([pts[2 * i], pts[2 * i + 1]]);
      g.fillStyle = spec.colors ? spec.colors[lab[i] % spec.colors.length] : "#888";
      g.globalAlpha = 0.5; g.fillRect(q[0] - 1.5, q[1] - 1.5, 3, 3);
    }
    g.globalAlpha = 1;
  }
  g.fillStyle = "#444"; g.font = "11px sans-serif";
  g.fillText("z\u2081 \u2208 [" + x0.toFixed(1) + ", " + x1.toFixed(1) + "]", 4, px - 6);
  g.fillText("z\u2082 \u2208 [" + y0.toFixed(1) + ", " + y1.toFixed(1) + "]", 4, 14);
  plane.clear = () => plane.ctx.clearRect(0, 0, px, px);
  plane.dot = (z, color, r) => { const q = plane.toPx(z); const c = plane.ctx; c.fillStyle = color;
    c.beginPath(); c.arc(q[0], q[1], r || 4, 0, 2 * Math.PI); c.fill(); };
  plane.ellipse = (mu, sd, k, color) => { const q = plane.toPx(mu), c = plane.ctx; c.strokeStyle = color; c.lineWidth = 2;
    c.beginPath(); c.ellipse(q[0], q[1], Math.max(0.5, k * sd[0] / (x1 - x0) * px), Math.max(0.5, k * sd[1] / (y1 - y0) * px), 0, 0, 2 * Math.PI); c.stroke(); };
  return plane;
}

function vlTimed(api, fn) {  // run one update and record its duration (ms) in api.timings
  return function () {
    const t0 = performance.now(), out = fn.apply(null, arguments);
    api.timings.push(performance.now() - t0);
    if (api.timings.length > 500) api.timings.shift();
    return out;
  };
}

function vlFmt(v) { return v.map(a => a.toFixed(2)).join(", "); }

// --- the three explorers ----------------------------------------------------------------

function vlLatentExplorer(root, spec, api) {
  const model = vlModel(spec.model), body = vlEl("div", {class: "vl-row"}, root);
  const plane = vlPlane(body, spec, spec.plane_px);
  const side = vlEl("div", {class: "vl-col"}, body);
  const show = vlImage(side, model.shape, spec.image_scale, "decoded E[x|z]");
  const info = vlEl("div", {class: "vl-info"}, side);
  const strip = vlEl("div", {class: "vl-strip"}, root);
  const shows = [];
  for (let t = 0; t < spec.steps; t++) shows.push(vlImage(strip, model.shape, 2, ""));
  api.state = {z: null, decoded: null, path: [], interpolation: []};
  function draw() {
    plane.clear();
    const path = api.state.path;
    if (path.length === 2) { const a = plane.toPx(path[0]), b = plane.toPx(path[1]), c = plane.ctx;
      c.strokeStyle = "#333"; c.lineWidth = 2; c.beginPath(); c.moveTo(a[0], a[1]); c.lineTo(b[0], b[1]); c.stroke(); }
    path.forEach(p => plane.dot(p, "#333", 4));
    if (api.state.z) plane.dot(api.state.z, "#d62728", 5);
  }
  api.setLatent = vlTimed(api, function (z) {
    const p = model.decode(z);                                     // E[x|z], [C*H*W]
    api.state.z = [z[0], z[1]]; api.state.decoded = Array.from(p);
    show(p); draw();
    info.textContent = "z = (" + vlFmt(z) + ")";
    return api.state.decoded;
  });
  api.addPathPoint = function (z) {  // first click A, second B: the interpolation A -> B
    const path = api.state.path.length >= 2 ? [] : api.state.path;
    path.push([z[0], z[1]]); api.state.path = path; api.state.interpolation = [];
    if (path.length === 2) {
      for (let t = 0; t < spec.steps; t++) {
        const a = t / (spec.steps - 1), zt = [0, 1].map(d => (1 - a) * path[0][d] + a * path[1][d]);  // z_t = (1−t) z_A + t z_B
        const p = model.decode(zt); shows[t](p); api.state.interpolation.push({z: zt, decoded: Array.from(p)});
      }
    }
    draw();
  };
  api.decode = (z) => Array.from(model.decode(z));
  plane.fg.addEventListener("pointermove", ev => api.setLatent(plane.toZ(ev)));
  plane.fg.addEventListener("click", ev => api.addPathPoint(plane.toZ(ev)));
  vlEl("p", {class: "vl-hint"}, root, "Move over the plane to decode any z; click two points for the path between them.");
  api.setLatent(spec.start);
}

function vlDrawExplorer(root, spec, api) {
  const model = vlModel(spec.model), [C, H, W] = model.shape, P = model.P, D = model.D;
  const body = vlEl("div", {class: "vl-row"}, root), left = vlEl("div", {class: "vl-col"}, body);
  const pad = vlEl("canvas", {width: W, height: H, class: "vl-pad",
    style: "width:" + W * spec.pad_scale + "px;height:" + H * spec.pad_scale + "px"}, left);
  const buttons = vlEl("div", {}, left);
  const clear = vlEl("button", {type: "button"}, buttons, "Clear");
  const resample = vlEl("button", {type: "button"}, buttons, "New \u03b5");
  const examples = spec.examples ? vlTensor(spec.examples) : null;
  const plane = vlPlane(body, spec, spec.plane_px);
  const right = vlEl("div", {class: "vl-col"}, body);
  const showMean = vlImage(right, model.shape, 3, "decoded \u03bc");
  const info = vlEl("div", {class: "vl-info"}, right);
  const strip = vlEl("div", {class: "vl-strip"}, root), shows = [];
  for (let s = 0; s < spec.n_samples; s++) shows.push(vlImage(strip, model.shape, 2, "z" + (s + 1)));
  const rng = vlRng(spec.seed), x = new Float32Array(P);
  const pctx = pad.getContext("2d"), pimg = pctx.createImageData(W, H);
  let eps = [];
  const draw_eps = () => { eps = []; for (let s = 0; s < spec.n_samples; s++) { const e = []; for (let d = 0; d < D; d++) e.push(rng.normal()); eps.push(e); } };
  draw_eps();
  api.state = {};
  function showPad() {
    for (let i = 0; i < H * W; i++) { const v = Math.round(255 * (1 - x[i]));
      pimg.data[4 * i] = pimg.data[4 * i + 1] = pimg.data[4 * i + 2] = v; pimg.data[4 * i + 3] = 255; }
    pctx.putImageData(pimg, 0, 0);
  }
  const update = vlTimed(api, function () {
    const {mu, logvar} = model.encode(x);                           // q(z|x) = N(μ, diag σ²)
    const sd = logvar.map(v => Math.exp(0.5 * v));                  // σ = exp(½ log σ²)
    const z = eps.map(e => e.map((ed, d) => mu[d] + sd[d] * ed));   // z_s = μ + σ ⊙ ε_s, [S, D]
    const kl = vlKl(mu, logvar);
    const pm = model.decode(mu); showMean(pm);
    const decoded = z.map((zs, s) => { const p = model.decode(zs); shows[s](p); return Array.from(p); });
    plane.clear(); plane.ellipse(mu, sd, 1, "#d62728"); plane.ellipse(mu, sd, 2, "rgba(214,39,40,0.5)");
    z.forEach(zs => plane.dot(zs, "#1f77b4", 3)); plane.dot(mu, "#d62728", 4);
    showPad();
    info.textContent = "\u03bc = (" + vlFmt(mu) + "), \u03c3 = (" + vlFmt(sd) + "), KL(q\u2016p) = " + kl.toFixed(2) + " nats";
    api.state = {x: Array.from(x), mu: mu, logvar: logvar, eps: eps.map(e => e.slice()), z: z, kl: kl,
                 decoded_mean: Array.from(pm), decoded: decoded};
    return api.state;
  });
  api.setDrawing = function (pixels) { for (let i = 0; i < P; i++) x[i] = Math.min(1, Math.max(0, pixels[i])); return update(); };
  api.resample = function () { draw_eps(); return update(); };
  api.decode = (z) => Array.from(model.decode(z));
  let down = false;
  function paint(ev) {  // a soft 3x3 brush, as MNIST strokes are anti-aliased
    const r = pad.getBoundingClientRect(), cx = Math.floor((ev.clientX - r.left) / r.width * W), cy = Math.floor((ev.clientY - r.top) / r.height * H);
    for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
      const u = cx + dx, v = cy + dy; if (u < 0 || v < 0 || u >= W || v >= H) continue;
      const w = dx === 0 && dy === 0 ? 1 : (dx === 0 || dy === 0 ? 0.5 : 0.25);
      for (let c = 0; c < C; c++) { const i = c * H * W + v * W + u; x[i] = Math.min(1, x[i] + w); }
    }
    update();
  }
  pad.addEventListener("pointerdown", ev => { down = true; pad.setPointerCapture && pad.setPointerCapture(ev.pointerId); paint(ev); });
  pad.addEventListener("pointermove", ev => { if (down) paint(ev); });
  pad.addEventListener("pointerup", () => { down = false; });
  pad.addEventListener("pointerleave", () => { down = false; });
  clear.addEventListener("click", () => api.setDrawing(new Float32Array(P)));
  resample.addEventListener("click", () => api.resample());
  if (examples) {
    const n = examples.length / P;
    for (let k = 0; k < n; k++) {
      const b = vlEl("button", {type: "button"}, buttons, spec.example_names ? spec.example_names[k] : "example " + (k + 1));
      b.addEventListener("click", () => api.setDrawing(examples.subarray(k * P, (k + 1) * P)));
    }
  }
  vlEl("p", {class: "vl-hint"}, root, "Draw on the left pad (or start from an example): the encoder runs in the page; "
    + "the ellipses are q(z|x) at 1 and 2 \u03c3 over the prior's circles, the dots z = \u03bc + \u03c3\u03b5 decoded below.");
  if (examples) api.setDrawing(examples.subarray(0, P)); else update();
}

function vlReparamExplorer(root, spec, api) {
  const model = spec.model ? vlModel(spec.model) : null, D = 2, S = spec.n_samples;
  const controls = vlEl("div", {class: "vl-controls"}, root), inputs = {};
  for (const c of spec.controls) {
    const lab = vlEl("label", {}, controls, c.label + " ");
    inputs[c.name] = vlEl("input", {type: "range", min: c.min, max: c.max, step: c.step, value: c.value, "data-name": c.name}, lab);
    inputs[c.name].value = c.value;
  }
  const resample = vlEl("button", {type: "button"}, controls, "New \u03b5");
  const body = vlEl("div", {class: "vl-row"}, root);
  const epsPlane = vlPlane(body, {extent: spec.extent, prior_contours: true}, spec.eps_px);
  const plane = vlPlane(body, spec, spec.plane_px);
  const heat = document.createElement("canvas"), G = spec.grid; heat.width = heat.height = G;
  const hctx = heat.getContext("2d"), himg = hctx.createImageData(G, G);
  const right = vlEl("div", {class: "vl-col"}, body);
  const info = vlEl("div", {class: "vl-info"}, right);
  const showMean = model ? vlImage(right, model.shape, 3, "decoded \u03bc") : null;
  const strip = vlEl("div", {class: "vl-strip"}, root), shows = [];
  if (model) for (let s = 0; s < Math.min(S, spec.n_decoded); s++) shows.push(vlImage(strip, model.shape, 2, "z" + (s + 1)));
  const rng = vlRng(spec.seed);
  let eps = [];
  const draw_eps = () => { eps = []; for (let s = 0; s < S; s++) eps.push([rng.normal(), rng.normal()]); };  // ε ~ N(0, I)
  draw_eps();
  const [x0, x1, y0, y1] = spec.extent;
  const update = vlTimed(api, function () {
    const v = {}; for (const k in inputs) v[k] = parseFloat(inputs[k].value);
    const mu = [v.mu1, v.mu2], sd = [v.sigma1, v.sigma2], logvar = sd.map(s => 2 * Math.log(s));
    const z = eps.map(e => [mu[0] + sd[0] * e[0], mu[1] + sd[1] * e[1]]);   // z = μ + σ ⊙ ε, [S, 2]
    const kl = vlKl(mu, logvar);
    let peak = 0; const dens = new Float32Array(G * G);              // q(z) on a G x G grid
    for (let r = 0; r < G; r++) for (let c = 0; c < G; c++) {
      const z1 = x0 + (c + 0.5) / G * (x1 - x0), z2 = y1 - (r + 0.5) / G * (y1 - y0);
      const a = (z1 - mu[0]) / sd[0], b = (z2 - mu[1]) / sd[1];
      const q = Math.exp(-0.5 * (a * a + b * b)) / (2 * Math.PI * sd[0] * sd[1]);  // N(z; μ, diag σ²)
      dens[r * G + c] = q; if (q > peak) peak = q;
    }
    for (let i = 0; i < G * G; i++) { const t = dens[i] / peak;
      himg.data[4 * i] = 214; himg.data[4 * i + 1] = 39; himg.data[4 * i + 2] = 40; himg.data[4 * i + 3] = Math.round(160 * t); }
    hctx.putImageData(himg, 0, 0);
    plane.clear(); plane.ctx.imageSmoothingEnabled = true; plane.ctx.drawImage(heat, 0, 0, plane.px, plane.px);
    plane.ellipse(mu, sd, 1, "#d62728");
    epsPlane.clear();
    eps.forEach(e => epsPlane.dot(e, "#555", 3));
    z.forEach(zs => plane.dot(zs, "#1f77b4", 3)); plane.dot(mu, "#d62728", 4);
    let decoded = [], decoded_mean = null;
    if (model) { const pm = model.decode(mu); showMean(pm); decoded_mean = Array.from(pm);
      decoded = shows.map((show, s) => { const p = model.decode(z[s]); show(p); return Array.from(p); }); }
    info.textContent = "\u03bc = (" + vlFmt(mu) + "), \u03c3 = (" + vlFmt(sd) + "), KL(q\u2016p) = " + kl.toFixed(3) + " nats";
    api.state = {mu: mu, sigma: sd, logvar: logvar, eps: eps.map(e => e.slice()), z: z, kl: kl, decoded_mean: decoded_mean, decoded: decoded};
    return api.state;
  });
  for (const k in inputs) inputs[k].addEventListener("input", () => update());
  resample.addEventListener("click", () => { draw_eps(); update(); });
  api.setValues = function (values) { for (const k in values) inputs[k].value = values[k]; return update(); };
  api.decode = (z) => model ? Array.from(model.decode(z)) : null;
  vlEl("p", {class: "vl-hint"}, root, "Left: the fixed draws \u03b5 ~ N(0, I). Right: q(z) = N(\u03bc, diag \u03c3\u00b2) and z = \u03bc + \u03c3 \u2299 \u03b5 for the same \u03b5; "
    + "move a slider and every z moves with it.");
  update();
}

function vlMountExplorer(root, spec) {
  if (root.vlExplorer) return root.vlExplorer;  // a re-run of the same output: mount once
  const api = {spec: spec, timings: [], state: {}};
  root.vlExplorer = api;
  try {
    if (spec.title) vlEl("div", {class: "vl-title"}, root, spec.title);
    ({latent: vlLatentExplorer, draw: vlDrawExplorer, reparam: vlReparamExplorer})[spec.kind](root, spec, api);
    root.setAttribute("data-ready", "true");
  } catch (err) {
    vlEl("pre", {class: "vl-error"}, root, String(err));
    root.setAttribute("data-ready", "error");
    throw err;
  }
  return api;
}
