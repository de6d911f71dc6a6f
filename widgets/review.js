// Live review grid: status bar, filters, a virtualized segment grid and its edit controls.
//
// Plain ES module for anywidget; no bundler, no network. Rows travel as custom messages:
//   {kind: "snapshot", view, fields, rows}   every row, answered to a view's snapshot_request
//                                            (a long session first sends a partial one: the rows seen first)
//   {kind: "append" | "patch", rows}         new and changed rows (at most four a second)
//   {kind: "result", request, ok, rows, ...} the outcome of an edit, batch or undo
// Only the rows in view are in the DOM, so 20,000 segments render as fast as 20.
// Segment text is always set with textContent / value, never parsed as HTML.

const ROW_HEIGHT = 30;
const OVERSCAN = 6;
const LOW_CONFIDENCE = 0.6;
const NEW_SPEAKER = "\u0000new"; // the dropdown entry that asks for a new speaker's name
const STATUS_LABELS = {
  transcribed: "Transcribed",
  diarized: "Diarized",
  classified: "Classified",
  "needs attention": "Needs Attention",
  edited: "Edited",
};
const FILTERS = [
  ["low", "low confidence"],
  ["unknown", "unknown speaker"],
  ["ic", "IC"],
  ["ooc", "OOC"],
  ["attention", "needs attention"],
  ["edited", "edited"],
];
const BATCH_FIELDS = [
  ["speaker_id", "speaker"],
  ["ic_ooc", "IC/OOC"],
  ["character_tag", "character"],
  ["confidence_flag", "uncertain"],
];

let views = 0;

/** The timeline's labels in the legend: the CSS variable of each colour, and what it means. */
const LEGEND = [
  ["--lr-ic", "in character"],
  ["--lr-ooc", "out of character"],
  ["--lr-mixed", "mixed"],
  ["--lr-unlabelled", "not classified yet"],
];

/** Set the palette's colours (`{"--lr-ic": "#2e7d32", ...}`) as CSS variables of `node`. */
function applyPalette(node, palette) {
  for (const [name, color] of Object.entries(palette || {})) node.style.setProperty(name, color);
}

/** Create an element; `text` sets textContent, `on*` adds listeners, other keys are attributes. */
function h(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function clock(seconds) {
  const s = Math.max(0, seconds || 0);
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = (s % 60).toFixed(1).padStart(4, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
}

function confidence(value) {
  return value === null || value === undefined ? "–" : value.toFixed(2).replace(/^0/, "");
}

function render({ model, el }) {
  const viewId = `v${++views}-${Math.random().toString(36).slice(2, 8)}`;
  const state = {
    fields: null,
    rows: [],
    byId: new Map(),
    loaded: false,
    partial: false,
    total: 0,
    visible: [],
    needsSort: false,
    needsFilter: true,
    filters: { low: false, unknown: false, ic: false, ooc: false, attention: false, edited: false, search: "" },
    selected: new Set(model.get("selection")),
    anchor: null,
    sentSelections: [], // selections sent to the kernel whose echo has not come back yet
    completed: new Set(model.get("completed_chunks")),
    editing: null,
    pending: new Map(),
    follow: true,
    appended: false,
    frame: 0,
    requests: 0,
    dismissed: 0,
  };
  const canEdit = () => model.get("can_edit");
  const editable = (row) => canEdit() && state.completed.has(row.chunk);

  // -- layout ----------------------------------------------------------------------------------
  const status = h("div", { class: "lr-status" });
  const healthBanner = h("div", { class: "lr-health", role: "alert" });
  const notice = h("div", { class: "lr-notice", hidden: true });
  const search = h("input", {
    class: "lr-search",
    type: "search",
    placeholder: "search text, speaker, character",
    oninput: () => {
      state.filters.search = search.value.trim().toLowerCase();
      refilter();
    },
  });
  const filterBoxes = FILTERS.map(([key, label]) => {
    const box = h("input", {
      type: "checkbox",
      "data-filter": key,
      onchange: () => {
        state.filters[key] = box.checked;
        refilter();
      },
    });
    return h("label", { class: "lr-filter" }, [box, document.createTextNode(label)]);
  });
  const rangeChip = h("button", {
    class: "lr-range",
    hidden: true,
    title: "clear the time range brushed on the timeline",
    onclick: () => model.send({ kind: "clear_range" }),
  });
  const count = h("span", { class: "lr-count" });
  const filters = h("div", { class: "lr-filters" }, [...filterBoxes, search, rangeChip, count]);

  const charList = h("datalist", { id: `lr-chars-${viewId}` });
  const speakerList = h("datalist", { id: `lr-speakers-${viewId}` });
  const toolbar = h("div", { class: "lr-toolbar", hidden: true });
  const reason = h("input", {
    class: "lr-reason lr-edit-control",
    type: "text",
    placeholder: "reason (optional, kept with each edit)",
  });
  const selectedCount = h("span", { class: "lr-selected-count" });
  const batchField = h(
    "select",
    { class: "lr-batch-field lr-edit-control", onchange: () => updateBatchValue() },
    BATCH_FIELDS.map(([value, label]) => h("option", { value, text: label })),
  );
  const batchValue = h("span", { class: "lr-batch-value" });
  const applyButton = h("button", {
    class: "lr-apply lr-edit-control",
    text: "Apply to selected…",
    onclick: () => sendBatch(false),
  });
  const undoButton = h("button", {
    class: "lr-undo lr-edit-control",
    text: "Undo last batch",
    onclick: () => model.send({ kind: "undo", request: nextRequest() }),
  });
  // Reruns work on the selected rows, else on the time range brushed on the timeline.
  const rerunButtons = [
    ["reclassify", "Reclassify selected"],
    ["rediarize", "Re-diarize selected"],
  ].map(([rerun, text]) =>
    h("button", {
      class: `lr-rerun lr-rerun-${rerun} lr-edit-control`,
      text,
      title: `${rerun} the selected rows (or the brushed time range); only they change`,
      onclick: () => model.send({ kind: "rerun", rerun, request: nextRequest() }),
    }),
  );
  // Viewers get no edit controls at all: the toolbar is only filled for editors.
  function syncToolbar() {
    if (!canEdit()) toolbar.replaceChildren();
    else if (!toolbar.firstChild)
      toolbar.append(reason, selectedCount, batchField, batchValue, applyButton, undoButton, ...rerunButtons);
    toolbar.hidden = !canEdit();
  }
  const confirmPanel = h("div", { class: "lr-confirm", hidden: true });

  const header = h(
    "div",
    { class: "lr-header" },
    ["", "time", "speaker", "IC/OOC", "character", "text", "asr · spk · ic", "status"].map((label, i) =>
      h("div", { class: `lr-cell lr-col-${i}`, text: label }),
    ),
  );
  const spacer = h("div", { class: "lr-spacer" });
  const viewport = h("div", { class: "lr-viewport", tabindex: "0" }, [spacer]);
  const empty = h("div", { class: "lr-empty", text: "Waiting for the first segments…" });
  // The timeline's key: its colours are the palette's, read through the CSS variables.
  const legend = h("div", { class: "lr-legend" }, [
    h("b", { text: "Timeline" }),
    ...LEGEND.map(([variable, text]) =>
      h("span", {}, [h("span", { class: "lr-swatch", style: `background: var(${variable})` }), document.createTextNode(text)]),
    ),
    h("span", {}, [
      h("span", { class: "lr-swatch lr-swatch-position", style: "background: var(--lr-position)" }),
      document.createTextNode("processing position"),
    ]),
    h("span", { text: "drag on the timeline to select a time range" }),
  ]);
  const root = h(
    "div",
    {
      class: "lr-review",
      "data-lm-suppress-shortcuts": "true",
      "data-view": viewId,
      "data-session": model.get("session_id"),
    },
    [status, healthBanner, notice, filters, toolbar, confirmPanel, charList, speakerList, header, viewport, empty, legend],
  );
  el.append(root);
  const slots = [];

  // -- data ------------------------------------------------------------------------------------
  function toRow(values) {
    const row = { _v: 0 };
    state.fields.forEach((name, i) => (row[name] = values[i]));
    return row;
  }

  function load(msg) {
    const refresh = state.loaded && !state.partial; // a later snapshot: keep the reader's place
    state.fields = msg.fields;
    state.rows = msg.rows.map(toRow);
    state.byId = new Map(state.rows.map((row) => [row.id, row]));
    state.partial = Boolean(msg.partial);
    state.total = msg.total ?? state.rows.length;
    state.loaded = true;
    state.needsFilter = true;
    state.needsSort = false;
    // A session still in progress opens at its newest rows and follows them; a finished one opens at the top.
    if (!refresh) state.follow = model.get("status") !== "complete";
    state.appended = state.follow;
    schedule();
  }

  function upsert(list, appended) {
    const fields = state.fields;
    for (const values of list) {
      const id = values[0];
      const row = state.byId.get(id);
      if (row) {
        fields.forEach((name, i) => (row[name] = values[i]));
        row._v += 1;
        delete row._pending;
      } else {
        const fresh = toRow(values);
        const last = state.rows[state.rows.length - 1];
        if (last && (fresh.start < last.start || (fresh.start === last.start && fresh.id < last.id)))
          state.needsSort = true;
        state.rows.push(fresh);
        state.byId.set(id, fresh);
      }
    }
    state.appended = state.appended || appended;
    state.needsFilter = true;
    schedule();
  }

  function matches(row, range) {
    const f = state.filters;
    if (f.low) {
      const low = [row.asr, row.spk, row.icc].some((c) => c !== null && c !== undefined && c < LOW_CONFIDENCE);
      if (!low && !row.flag) return false;
    }
    if (f.unknown && row.speaker && row.spk !== 0) return false;
    if ((f.ic || f.ooc) && !((f.ic && row.ic_ooc === "IC") || (f.ooc && row.ic_ooc === "OOC"))) return false;
    if (f.attention && row.status !== "needs attention") return false;
    if (f.edited && !(row.edited && row.edited.length)) return false;
    if (range.length === 2 && !(row.end > range[0] && row.start < range[1])) return false;
    if (f.search) {
      const hay = `${row.text} ${row.speaker || ""} ${row.character || ""}`.toLowerCase();
      if (!hay.includes(f.search)) return false;
    }
    return true;
  }

  function refilter() {
    state.needsFilter = true;
    schedule();
  }

  // -- rendering -------------------------------------------------------------------------------
  function schedule() {
    if (!state.frame) state.frame = requestAnimationFrame(paint);
  }

  function paint() {
    state.frame = 0;
    if (state.needsSort) {
      state.rows.sort((a, b) => a.start - b.start || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      state.needsSort = false;
    }
    if (state.needsFilter) {
      const range = model.get("time_range");
      state.visible = state.rows.filter((row) => matches(row, range));
      state.needsFilter = false;
    }
    const total = state.visible.length;
    spacer.style.height = `${total * ROW_HEIGHT}px`;
    // Following the newest rows: scroll to them (after an open editor closes, if one is open).
    if (state.appended && state.follow && !state.editing) viewport.scrollTop = viewport.scrollHeight;
    if (!state.editing || !state.follow) state.appended = false;
    const top = viewport.scrollTop;
    const height = viewport.clientHeight || model.get("height");
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(total, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
    if (state.editing && !state.visible.slice(first, last).some((r) => r.id === state.editing.id)) stopEditing();
    while (slots.length < last - first) {
      const slot = h("div", { class: "lr-row" });
      slot.addEventListener("click", (event) => onRowClick(event, slot));
      slot.addEventListener("dblclick", (event) => onRowDoubleClick(event, slot));
      spacer.append(slot);
      slots.push(slot);
    }
    slots.forEach((slot, i) => {
      const index = first + i;
      if (index >= last) {
        slot.hidden = true;
        slot._row = null;
        slot.removeAttribute("data-id");
        return;
      }
      slot.hidden = false;
      slot.style.transform = `translateY(${index * ROW_HEIGHT}px)`;
      fill(slot, state.visible[index]);
    });
    root.dataset.total = String(state.rows.length);
    root.dataset.visible = String(total);
    root.dataset.loaded = state.partial ? "partial" : state.loaded ? "true" : "false";
    empty.hidden = state.rows.length > 0;
    empty.textContent = state.loaded ? "Waiting for the first segments…" : "Loading…";
    count.textContent = state.partial
      ? `loading ${state.total.toLocaleString()} segments…`
      : `${total.toLocaleString()} of ${state.rows.length.toLocaleString()} segments`;
    updateStatus();
  }

  function fill(slot, row) {
    const selected = state.selected.has(row.id);
    const canChange = editable(row);
    const key = `${row._v}|${canChange}|${row._pending ? 1 : 0}`;
    slot.classList.toggle("lr-selected", selected);
    const box = slot.querySelector(".lr-select");
    if (box) box.checked = selected;
    if (slot._row === row && slot._key === key) return;
    if (state.editing && slot._row === row && state.editing.id === row.id) return; // keep the open editor
    slot._row = row;
    slot._key = key;
    slot.dataset.id = row.id;
    slot.dataset.chunk = String(row.chunk);
    const edited = new Set(row.edited || []);
    const badge = edited.size ? "edited" : row.status || "transcribed";
    slot.className = [
      "lr-row",
      selected ? "lr-selected" : "",
      canChange ? "lr-editable" : "",
      row._pending ? "lr-pending" : "",
      row.flag ? "lr-flagged" : "",
    ]
      .filter(Boolean)
      .join(" ");
    const cells = [
      h("div", { class: "lr-cell lr-col-0" }, [
        h("input", { type: "checkbox", class: "lr-select", checked: selected, title: "select" }),
      ]),
      h("div", {
        class: "lr-cell lr-col-1 lr-time",
        text: `${clock(row.start)}–${clock(row.end)}`,
        title: `chunk ${row.chunk}`,
      }),
      cell("speaker", "speaker_id", row.speaker || "—", edited, canChange, "lr-col-2"),
      icOocCell(row, edited, canChange),
      cell("character", "character_tag", row.character || "", edited, canChange, "lr-col-4"),
      cell("text", "text", row.text, edited, canChange, "lr-col-5"),
      h("div", { class: "lr-cell lr-col-6 lr-conf" }, [
        confSpan(row.asr, "speech recognition"),
        confSpan(row.spk, "speaker"),
        confSpan(row.icc, "IC/OOC"),
      ]),
      h("div", { class: "lr-cell lr-col-7" }, [
        h("span", {
          class: "lr-badge",
          "data-status": badge,
          text: STATUS_LABELS[badge] || badge,
        }),
        canChange
          ? h("button", {
              class: `lr-flag lr-edit-control${row.flag ? " lr-on" : ""}`,
              title: row.flag ? "marked uncertain: click to clear" : "mark uncertain",
              text: "?",
              "data-action": "flag",
            })
          : row.flag
            ? h("span", { class: "lr-flag-mark", title: "marked uncertain", text: "?" })
            : null,
      ]),
    ];
    slot.replaceChildren(...cells);
  }

  function cell(name, field, text, edited, canChange, col) {
    return h("div", {
      class: `lr-cell ${col} lr-${name}${edited.has(field) ? " lr-edited" : ""}${canChange ? " lr-can-edit" : ""}`,
      "data-field": field,
      text,
      title: canChange ? (name === "text" ? "double-click to edit" : "click to edit") : null,
    });
  }

  function icOocCell(row, edited, canChange) {
    const label = row.ic_ooc || "—";
    const cls = `lr-cell lr-col-3 lr-icooc${edited.has("ic_ooc") ? " lr-edited" : ""}`;
    const tag = canChange
      ? h("button", {
          class: `lr-label lr-toggle lr-edit-control lr-label-${label}`,
          "data-action": "toggle",
          title: "toggle IC/OOC",
          text: label,
        })
      : h("span", { class: `lr-label lr-label-${label}`, text: label });
    return h("div", { class: cls, "data-field": "ic_ooc" }, [tag]);
  }

  function confSpan(value, what) {
    const low = value !== null && value !== undefined && value < LOW_CONFIDENCE;
    return h("span", { class: low ? "lr-low" : "", title: `${what} confidence`, text: confidence(value) });
  }

  function updateStatus() {
    const runStatus = model.get("status");
    const duration = model.get("duration");
    const position = Math.min(model.get("position"), duration || Infinity);
    const percent = duration ? Math.round((100 * position) / duration) : 0;
    const who = `${model.get("user")} (${model.get("role")}${canEdit() ? "" : ", read-only"})`;
    status.dataset.status = runStatus;
    status.replaceChildren(
      h("span", { class: `lr-dot lr-dot-${runStatus}` }),
      h("b", { text: runStatus }),
      document.createTextNode(
        ` · processed ${clock(position)} of ${clock(duration)} (${percent}%) · ` +
          `${(state.partial ? state.total : state.rows.length).toLocaleString()} segments` +
          `${state.partial ? " (loading)" : ""} · ` +
          `${state.completed.size} chunks final · ${who}`,
      ),
      h("span", { class: "lr-metrics", text: model.get("metrics") ? ` · ${model.get("metrics")}` : "" }),
    );
    const problems = model.get("health");
    healthBanner.hidden = problems.length === 0;
    healthBanner.replaceChildren(...problems.map((text) => h("div", { text: `Degraded: ${text}` })));
    const range = model.get("time_range");
    rangeChip.hidden = range.length !== 2;
    if (range.length === 2) rangeChip.textContent = `range ${clock(range[0])}–${clock(range[1])} ✕`;
    syncToolbar();
    selectedCount.textContent = `${state.selected.size} selected`;
    applyButton.disabled = state.selected.size === 0;
  }

  function showNotice() {
    const value = model.get("notice") || {};
    if (!value.text || value.id === state.dismissed) {
      notice.hidden = true;
      return;
    }
    notice.hidden = false;
    notice.dataset.level = value.level;
    notice.replaceChildren(
      h("span", { class: "lr-notice-text", text: value.text }),
      h("button", {
        class: "lr-dismiss",
        text: "✕",
        title: "dismiss",
        onclick: () => {
          state.dismissed = value.id;
          notice.hidden = true;
        },
      }),
    );
  }

  // -- selection and playback -----------------------------------------------------------------
  function setSelection(ids) {
    state.selected = new Set(ids);
    state.sentSelections = [...state.sentSelections.slice(-20), JSON.stringify([...state.selected])];
    model.send({ kind: "select", ids: [...state.selected] });
    schedule();
  }

  function onRowClick(event, slot) {
    const row = slot._row;
    if (!row) return;
    const action = event.target.closest("[data-action]");
    if (action && canEdit()) {
      if (action.dataset.action === "toggle") {
        const next = row.ic_ooc === "IC" ? "OOC" : "IC";
        sendEdit(row, "ic_ooc", next);
      } else if (action.dataset.action === "flag") {
        sendEdit(row, "confidence_flag", !row.flag);
      }
      return;
    }
    if (event.target.closest("input, select, textarea, button")) {
      if (event.target.classList.contains("lr-select")) {
        const ids = new Set(state.selected);
        if (event.target.checked) ids.add(row.id);
        else ids.delete(row.id);
        state.anchor = row.id;
        setSelection([...ids]);
      }
      return;
    }
    const target = event.target.closest("[data-field]");
    if (target && editable(row) && ["speaker_id", "character_tag"].includes(target.dataset.field)) {
      startEditing(row, target.dataset.field, target);
      return;
    }
    if (event.shiftKey && state.anchor) {
      const ids = state.visible.map((r) => r.id);
      const [a, b] = [ids.indexOf(state.anchor), ids.indexOf(row.id)].sort((x, y) => x - y);
      if (a >= 0) setSelection([...state.selected, ...ids.slice(a, b + 1)]);
      return;
    }
    if (event.ctrlKey || event.metaKey) {
      const ids = new Set(state.selected);
      if (ids.has(row.id)) ids.delete(row.id);
      else ids.add(row.id);
      state.anchor = row.id;
      setSelection([...ids]);
      return;
    }
    state.anchor = row.id;
    setSelection([row.id]);
    model.send({ kind: "play", id: row.id });
  }

  function onRowDoubleClick(event, slot) {
    const row = slot._row;
    const target = event.target.closest("[data-field='text']");
    if (row && target && editable(row)) startEditing(row, "text", target);
  }

  // -- editing ---------------------------------------------------------------------------------
  function nextRequest() {
    return `${viewId}-${++state.requests}`;
  }

  function sendEdit(row, field, value, newSpeaker = false) {
    const request = nextRequest();
    state.pending.set(request, { ids: [row.id] });
    const column = { speaker_id: "speaker", character_tag: "character", confidence_flag: "flag" }[field] || field;
    row[column] = value; // shown at once; the result message brings the stored value
    row.edited = [...new Set([...(row.edited || []), field])];
    row._pending = true;
    row._v += 1;
    state.needsFilter = true;
    schedule();
    model.send({
      kind: "edit",
      request,
      id: row.id,
      field,
      value,
      reason: reason.value.trim() || null,
      new_speaker: newSpeaker,
    });
  }

  function startEditing(row, field, target) {
    stopEditing();
    const initial = field === "speaker_id" ? row.speaker : field === "text" ? row.text : row.character || "";
    // Each control finishes the edit only while it is the open editor.
    const finish = (control, commit, value, isNew = false) => {
      if (!state.editing || state.editing.control !== control) return;
      state.editing = null;
      if (commit && value !== null && value !== initial) sendEdit(row, field, value, isNew);
      slotFor(row)._key = null;
      schedule();
    };
    const keys = (control, read, isNew) => (event) => {
      event.stopPropagation();
      if (event.key === "Enter") finish(control, true, read(), isNew);
      else if (event.key === "Escape") finish(control, false, null);
    };
    let control;
    if (field === "speaker_id") {
      const known = model.get("speakers");
      control = h("select", { class: "lr-editor lr-edit-control lr-speaker-select" }, [
        ...known.map((s) => h("option", { value: s, text: s })),
        h("option", { value: NEW_SPEAKER, text: "New speaker…" }),
      ]);
      control.value = known.includes(row.speaker) ? row.speaker : "";
      const select = control;
      select.addEventListener("keydown", keys(select, () => select.value || null, false));
      select.addEventListener("blur", () => finish(select, false, null));
      select.addEventListener("change", () => {
        if (select.value !== NEW_SPEAKER) {
          finish(select, true, select.value || null);
          return;
        }
        const input = h("input", {
          class: "lr-editor lr-edit-control lr-new-speaker",
          type: "text",
          placeholder: "new speaker name",
        });
        const read = () => input.value.trim() || null;
        input.addEventListener("keydown", keys(input, read, true));
        input.addEventListener("blur", () => finish(input, false, null));
        state.editing.control = input;
        target.replaceChildren(input);
        input.focus();
      });
    } else {
      const input = h("input", {
        class: `lr-editor lr-edit-control lr-${field === "text" ? "text" : "character"}-input`,
        type: "text",
        list: field === "character_tag" ? charList.id : null,
      });
      input.value = initial; // a property, never markup
      const read = () => (field === "text" ? input.value : input.value.trim());
      input.addEventListener("keydown", keys(input, read, false));
      input.addEventListener("blur", () => finish(input, true, read()));
      control = input;
    }
    state.editing = { id: row.id, field, control }; // no auto-scroll while it is open
    target.replaceChildren(control);
    target.classList.add("lr-editing");
    control.focus();
    if (control.select) control.select();
  }

  function stopEditing() {
    if (!state.editing) return;
    const row = state.byId.get(state.editing.id);
    state.editing = null;
    if (row) {
      const slot = slotFor(row);
      if (slot) slot._key = null;
    }
  }

  function slotFor(row) {
    return slots.find((slot) => slot._row === row) || { _key: null };
  }

  function updateBatchValue() {
    const field = batchField.value;
    let control;
    if (field === "ic_ooc") {
      control = h("select", { class: "lr-batch-input lr-edit-control" }, [
        h("option", { value: "IC", text: "IC" }),
        h("option", { value: "OOC", text: "OOC" }),
        h("option", { value: "MIXED", text: "MIXED" }),
      ]);
    } else if (field === "confidence_flag") {
      control = h("select", { class: "lr-batch-input lr-edit-control" }, [
        h("option", { value: "true", text: "uncertain" }),
        h("option", { value: "false", text: "not uncertain" }),
      ]);
    } else {
      control = h("input", {
        class: "lr-batch-input lr-edit-control",
        type: "text",
        placeholder: field === "speaker_id" ? "speaker (new names allowed)" : "character",
        list: field === "speaker_id" ? speakerList.id : charList.id,
      });
    }
    batchValue.replaceChildren(control);
  }

  function sendBatch(confirmed, previous = null) {
    const control = batchValue.firstChild;
    const field = previous ? previous.field : batchField.value;
    let value = previous ? previous.value : control.value;
    if (!previous && field === "confidence_flag") value = value === "true";
    if (!previous && typeof value === "string") value = value.trim();
    if (value === "" || state.selected.size === 0) return;
    const ids = previous ? previous.ids : [...state.selected];
    const newSpeaker = field === "speaker_id" && !model.get("speakers").includes(value);
    const request = nextRequest();
    const message = {
      kind: "batch",
      request,
      ids,
      field,
      value,
      confirm: confirmed,
      reason: reason.value.trim() || null,
      new_speaker: newSpeaker,
    };
    state.pending.set(request, message);
    model.send(message);
  }

  function showConfirm(message, text) {
    confirmPanel.hidden = false;
    confirmPanel.replaceChildren(
      h("span", { class: "lr-confirm-text", text }),
      h("button", {
        class: "lr-confirm-apply lr-edit-control",
        text: `Apply to ${message.ids.length} segments`,
        onclick: () => {
          confirmPanel.hidden = true;
          sendBatch(true, message);
        },
      }),
      h("button", {
        class: "lr-confirm-cancel",
        text: "Cancel",
        onclick: () => {
          confirmPanel.hidden = true;
        },
      }),
    );
  }

  // -- messages and traits ----------------------------------------------------------------------
  function onMessage(msg) {
    if (msg.kind === "snapshot") {
      if (msg.view && msg.view !== viewId && state.loaded) return;
      load(msg);
    } else if (msg.kind === "append" || msg.kind === "patch") {
      if (state.loaded) upsert(msg.rows, msg.kind === "append");
    } else if (msg.kind === "result") {
      if (state.loaded && msg.rows && msg.rows.length) upsert(msg.rows, false);
      const mine = state.pending.get(msg.request);
      if (!mine) return;
      state.pending.delete(msg.request);
      if (msg.needs_confirm) showConfirm(mine, msg.message);
    }
  }

  const onCustom = (msg) => onMessage(msg);
  const onSelection = () => {
    // The kernel echoes our own selections; an older echo must not undo a newer click.
    const echo = state.sentSelections.indexOf(JSON.stringify(model.get("selection")));
    if (echo >= 0) {
      state.sentSelections.splice(0, echo + 1);
      return;
    }
    state.selected = new Set(model.get("selection")); // from the timeline brush
    schedule();
  };
  const onCompleted = () => {
    state.completed = new Set(model.get("completed_chunks"));
    schedule();
  };
  const onLists = () => {
    charList.replaceChildren(...model.get("characters").map((c) => h("option", { value: c })));
    speakerList.replaceChildren(...model.get("speakers").map((s) => h("option", { value: s })));
  };
  const onRange = () => refilter();
  const onStatus = () => schedule();
  const onHeight = () => (viewport.style.height = `${model.get("height")}px`);
  const onPalette = () => applyPalette(root, model.get("palette"));
  // One table serves both subscribing here and unsubscribing when the view goes away.
  const listeners = [
    ["msg:custom", onCustom],
    ["change:selection", onSelection],
    ["change:completed_chunks", onCompleted],
    ["change:characters", onLists],
    ["change:speakers", onLists],
    ["change:time_range", onRange],
    ["change:notice", showNotice],
    ...["status", "position", "duration", "can_edit", "metrics", "health"].map((name) => [`change:${name}`, onStatus]),
    ["change:height", onHeight],
    ["change:palette", onPalette],
  ];
  for (const [name, listener] of listeners) model.on(name, listener);
  viewport.addEventListener("scroll", () => {
    state.follow = viewport.scrollTop + viewport.clientHeight >= viewport.scrollHeight - ROW_HEIGHT;
    schedule();
  });

  onHeight();
  onPalette();
  onLists();
  updateBatchValue();
  showNotice();
  paint();
  model.send({ kind: "snapshot_request", view: viewId });

  return () => {
    if (state.frame) cancelAnimationFrame(state.frame);
    for (const [name, listener] of listeners) model.off(name, listener);
  };
}

export default { render };
