// Playback of the selected segment: an <audio> element fed with the clip's WAV bytes
// and a mini waveform of the segment's chunk, the segment's span highlighted.
//
// The kernel sends {kind: "clip", id, start, end, window_start, window_end, label}
// with two binary buffers: the WAV file and one peak value (0-255) per waveform bin.
// A view asks for the last clip when it renders (messages sent before it existed are lost).

function h(tag, attrs = {}) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, String(value));
  }
  return node;
}

function bytes(view) {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function render({ model, el }) {
  const label = h("div", { class: "lr-play-label" });
  const error = h("div", { class: "lr-play-error" });
  const canvas = h("canvas", { class: "lr-wave", width: 720, height: 64 });
  const audio = h("audio", { class: "lr-audio", controls: "", preload: "auto" });
  const root = h("div", { class: "lr-playback" });
  root.append(label, canvas, audio, error);
  el.append(root);
  let url = null;
  let clip = null;
  let peaks = new Uint8Array(0);

  function draw() {
    const ctx = canvas.getContext("2d");
    const { width, height } = canvas;
    ctx.clearRect(0, 0, width, height);
    if (!clip) return;
    const span = clip.window_end - clip.window_start || 1;
    const x = (t) => ((t - clip.window_start) / span) * width;
    const palette = model.get("palette") || {};
    ctx.globalAlpha = 0.14;
    ctx.fillStyle = palette["--lr-accent"];
    ctx.fillRect(x(clip.start), 0, Math.max(x(clip.end) - x(clip.start), 1), height);
    ctx.globalAlpha = 1;
    const bar = width / Math.max(peaks.length, 1);
    for (let i = 0; i < peaks.length; i++) {
      const t = clip.window_start + ((i + 0.5) / peaks.length) * span;
      const inside = t >= clip.start && t <= clip.end;
      ctx.fillStyle = inside ? palette["--lr-accent"] : palette["--lr-idle"];
      const half = Math.max((peaks[i] / 255) * (height / 2 - 2), 0.5);
      ctx.fillRect(i * bar, height / 2 - half, Math.max(bar - 0.5, 0.5), half * 2);
    }
    if (!audio.paused || audio.currentTime > 0) {
      ctx.fillStyle = palette["--lr-position"];
      ctx.fillRect(x(clip.start + audio.currentTime), 0, 1.5, height);
    }
  }

  function show(msg, buffers) {
    if (url) URL.revokeObjectURL(url);
    clip = msg;
    url = URL.createObjectURL(new Blob([bytes(buffers[0])], { type: "audio/wav" }));
    peaks = bytes(buffers[1]).slice();
    root.dataset.segment = msg.id;
    root.dataset.wavBytes = String(buffers[0].byteLength);
    root.dataset.peaks = String(peaks.length);
    audio.src = url;
    draw();
    audio.play().catch(() => {}); // the browser may refuse autoplay; the controls stay usable
  }

  const onCustom = (msg, buffers) => {
    if (msg.kind === "clip") show(msg, buffers);
  };
  const onLabel = () => (label.textContent = model.get("label"));
  const onError = () => {
    error.textContent = model.get("error");
    error.hidden = !model.get("error");
  };
  const onPalette = () => {
    for (const [name, color] of Object.entries(model.get("palette") || {})) root.style.setProperty(name, color);
    draw();
  };
  const listeners = [
    ["msg:custom", onCustom],
    ["change:label", onLabel],
    ["change:error", onError],
    ["change:palette", onPalette],
  ];
  for (const [name, listener] of listeners) model.on(name, listener);
  audio.addEventListener("timeupdate", draw);
  audio.addEventListener("ended", draw);
  onLabel();
  onError();
  onPalette();
  model.send({ kind: "request" });

  return () => {
    for (const [name, listener] of listeners) model.off(name, listener);
    if (url) URL.revokeObjectURL(url);
  };
}

export default { render };
