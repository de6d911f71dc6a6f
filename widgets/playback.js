// Playback of the selected segment: an <audio> element fed with the clip's WAV bytes
// and a mini waveform of the segment's chunk, the segment's span highlighted.
//
// The kernel sends {kind: "clip", id, start, end, window_start, window_end, label, segment_start,
// segment_end, editable, autoplay} with two binary buffers: the WAV file and one peak value (0-255)
// per waveform bin, and {kind: "toggle"} to play or pause (the grid's space key).
// A view asks for the last clip when it renders (messages sent before it existed are lost).
// A click on the waveform seeks; an editor drags the segment's edges to move its start or end,
// which is sent back as {kind: "boundary", id, start | end}.

const GRIP_PIXELS = 6; // how near an edge a press grabs it, in CSS pixels

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
  const hint = h("div", { class: "lr-play-hint" });
  const audio = h("audio", { class: "lr-audio", controls: "", preload: "auto" });
  const root = h("div", { class: "lr-playback", "data-lm-suppress-shortcuts": "true" });
  root.append(label, canvas, audio, hint, error);
  el.append(root);
  let url = null;
  let clip = null;
  let peaks = new Uint8Array(0);
  let drag = null; // {edge: "start" | "end", time}

  const editable = () => Boolean(clip && clip.editable && model.get("can_edit"));
  const span = () => clip.window_end - clip.window_start || 1;
  const toX = (t) => ((t - clip.window_start) / span()) * canvas.width;
  /** The recording time under a pointer event. */
  const timeAt = (event) => {
    const box = canvas.getBoundingClientRect();
    const share = Math.min(Math.max((event.clientX - box.left) / (box.width || 1), 0), 1);
    return clip.window_start + share * span();
  };
  const edges = () => ({
    start: drag && drag.edge === "start" ? drag.time : clip.segment_start ?? clip.start,
    end: drag && drag.edge === "end" ? drag.time : clip.segment_end ?? clip.end,
  });

  function draw() {
    const ctx = canvas.getContext("2d");
    const { width, height } = canvas;
    ctx.clearRect(0, 0, width, height);
    if (!clip) return;
    const palette = model.get("palette") || {};
    const { start, end } = edges();
    ctx.globalAlpha = 0.14;
    ctx.fillStyle = palette["--lr-accent"];
    ctx.fillRect(toX(start), 0, Math.max(toX(end) - toX(start), 1), height);
    ctx.globalAlpha = 1;
    const bar = width / Math.max(peaks.length, 1);
    for (let i = 0; i < peaks.length; i++) {
      const t = clip.window_start + ((i + 0.5) / peaks.length) * span();
      const inside = t >= start && t <= end;
      ctx.fillStyle = inside ? palette["--lr-accent"] : palette["--lr-idle"];
      const half = Math.max((peaks[i] / 255) * (height / 2 - 2), 0.5);
      ctx.fillRect(i * bar, height / 2 - half, Math.max(bar - 0.5, 0.5), half * 2);
    }
    if (editable()) {
      ctx.fillStyle = palette["--lr-accent"];
      for (const t of [start, end]) ctx.fillRect(toX(t) - 1.5, 0, 3, height);
    }
    if (!audio.paused || audio.currentTime > 0) {
      ctx.fillStyle = palette["--lr-position"];
      ctx.fillRect(toX(clip.start + audio.currentTime), 0, 1.5, height);
    }
  }

  function show(msg, buffers) {
    if (url) URL.revokeObjectURL(url);
    clip = msg;
    drag = null;
    url = URL.createObjectURL(new Blob([bytes(buffers[0])], { type: "audio/wav" }));
    peaks = bytes(buffers[1]).slice();
    root.dataset.segment = msg.id;
    root.dataset.wavBytes = String(buffers[0].byteLength);
    root.dataset.peaks = String(peaks.length);
    root.dataset.start = String(msg.start);
    root.dataset.end = String(msg.end);
    root.dataset.windowStart = String(msg.window_start);
    root.dataset.windowEnd = String(msg.window_end);
    root.dataset.editable = String(editable());
    hint.textContent = editable()
      ? "click the waveform to play from there; drag the blue edges to move the start or the end"
      : "click the waveform to play from there";
    audio.src = url;
    draw();
    if (msg.autoplay !== false) audio.play().catch(() => {}); // the browser may refuse autoplay
  }

  /** Seek the clip to recording time `t` (clamped to the clip) and play. */
  function seek(t) {
    const offset = Math.min(Math.max(t - clip.start, 0), Math.max(clip.end - clip.start - 0.01, 0));
    audio.currentTime = offset;
    root.dataset.seeked = offset.toFixed(3);
    audio.play().catch(() => {});
    draw();
  }

  /** The edge ("start" or "end") within reach of a pointer event, or null. */
  function edgeAt(event) {
    if (!clip || !editable()) return null;
    const box = canvas.getBoundingClientRect();
    const x = ((event.clientX - box.left) / (box.width || 1)) * canvas.width;
    const scale = (box.width || 1) / canvas.width;
    const { start, end } = edges();
    const [toStart, toEnd] = [start, end].map((t) => Math.abs(toX(t) - x) * scale);
    if (Math.min(toStart, toEnd) > GRIP_PIXELS) return null;
    return toStart <= toEnd ? "start" : "end";
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (!clip) return;
    const edge = edgeAt(event);
    if (edge) {
      drag = { edge, time: timeAt(event), moved: false };
      canvas.setPointerCapture(event.pointerId);
      event.preventDefault();
      return;
    }
    seek(timeAt(event));
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drag) {
      canvas.style.cursor = edgeAt(event) ? "ew-resize" : "pointer";
      return;
    }
    drag.time = timeAt(event);
    drag.moved = true;
    draw();
  });
  canvas.addEventListener("pointerup", (event) => {
    if (!drag) return;
    canvas.releasePointerCapture(event.pointerId);
    const done = drag;
    drag.time = timeAt(event);
    draw();
    if (done.moved) {
      const time = Math.round(done.time * 1000) / 1000;
      root.dataset.dragged = `${done.edge}:${time}`;
      model.send({ kind: "boundary", id: clip.id, [done.edge]: time, request: `drag-${Date.now()}` });
    } else drag = null;
  });

  const onCustom = (msg, buffers) => {
    if (msg.kind === "clip") show(msg, buffers);
    else if (msg.kind === "toggle" && clip) {
      if (audio.paused) audio.play().catch(() => {});
      else audio.pause();
    }
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
    ["change:can_edit", draw],
  ];
  for (const [name, listener] of listeners) model.on(name, listener);
  const onPlaying = () => {
    root.dataset.playing = String(!audio.paused);
    draw();
  };
  for (const name of ["timeupdate", "ended", "play", "pause"]) audio.addEventListener(name, onPlaying);
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
