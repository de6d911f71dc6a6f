// Live review grid: status bar, filters, speakers, a virtualized segment grid and its edit controls.
//
// Plain ES module for anywidget; no bundler, no network. Rows travel as custom messages:
//   {kind: "snapshot", view, fields, rows}   every row, answered to a view's snapshot_request
//                                            (a long session first sends a partial one: the rows seen first)
//   {kind: "append" | "patch", rows}         new and changed rows (at most four a second); a patch may carry
//                                            `changes` {id: {cause, fields}}: rows the pipeline changed
//   {kind: "remove", ids}                    rows replaced by a split or a merge
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
// [key, label, tooltip]
const FILTERS = [
  ["low", "low confidence", "a confidence below 0.60, or marked uncertain"],
  ["nospeaker", "no speaker", "rows without a speaker"],
  ["lowspeaker", "low speaker confidence", "speaker confidence below 0.60"],
  ["ic", "IC", "in character"],
  ["ooc", "OOC", "out of character"],
  ["mixed", "MIXED", "both in and out of character"],
  ["attention", "needs attention", "the classifier was unsure"],
  ["edited", "edited", "rows an operator corrected"],
  ["changed", "changed for you", "rows the global pass or a rerun changed after you had seen them"],
];
const LABEL_KEYS = { i: "IC", o: "OOC", m: "MIXED" };
const KEYS = [
  ["↑ ↓", "previous / next row"],
  ["Space", "play or pause the row"],
  ["i  o  m", "set IC, OOC or MIXED"],
  ["?", "mark or clear uncertain"],
  ["Enter", "edit the row's text"],
  ["→ ←", "open or close the row's details"],
  ["Esc", "cancel an edit, close the details"],
];
const BATCH_FIELDS = [
  ["speaker_id", "speaker"],
  ["ic_ooc", "IC/OOC"],
  ["character_tag", "character"],
  ["confidence_flag", "uncertain"],
];
// Row column shown for each correction field.
const COLUMN_OF = { speaker_id: "speaker", character_tag: "character", confidence_flag: "flag" };
const FIELD_WORDS = {
  speaker: "speaker",
  ic_ooc: "IC/OOC label",
  character: "character",
  text: "text",
  flag: "uncertain mark",
  start: "start",
  end: "end",
};
const CONFIDENCE_HELP =
  "confidence from 0 to 1 of the transcription (asr), the speaker (spk) and the IC/OOC label (ic); below 0.60 in red";

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

/** `m:ss.s`, or `h:mm:ss.s` from an hour on (as the kernel's notices write times). */
function clock(seconds) {
  const tenths = Math.round(Math.max(0, seconds || 0) * 10);
  const hours = Math.floor(tenths / 36000);
  const minutes = Math.floor((tenths % 36000) / 600);
  const rest = ((tenths % 600) / 10).toFixed(1).padStart(4, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
}

/** Seconds from `1:02:03.4`, `2:03.4` or `123.4`; NaN when it is neither. */
function parseClock(text) {
  const parts = String(text).trim().split(":");
  if (parts.length > 3 || parts.some((p) => p === "" || isNaN(Number(p)))) return NaN;
  return parts.reduce((total, part) => total * 60 + Number(part), 0);
}

function confidence(value) {
  return value === null || value === undefined ? "–" : value.toFixed(2).replace(/^0/, "");
}

function valueWords(column, value) {
  if (column === "flag") return value ? "uncertain" : "not uncertain";
  if (value === null || value === undefined || value === "") return "none";
  if (column === "start" || column === "end") return clock(value);
  return String(value);
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
    filters: Object.fromEntries([...FILTERS.map(([key]) => [key, false]), ["search", ""]]),
    selected: new Set(model.get("selection")),
    current: null, // the row the keys act on
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
    expanded: null, // the row whose details are open
    detailKey: null,
    detailHeight: 0,
    splitWord: null,
    seen: new Set(), // rows the reader has had on screen
    onScreen: true,
    relabelled: new Map(), // id -> {cause, fields}: changed by the pipeline after the reader saw them
  };
  const canEdit = () => model.get("can_edit");
  const editable = (row) => canEdit() && state.completed.has(row.chunk);
  const speakerMap = () => model.get("speaker_map") || {};
  const shownSpeaker = (speaker) => (speaker ? speakerMap()[speaker] || speaker : "");

  // -- layout ----------------------------------------------------------------------------------
  const status = h("div", { class: "lr-status" });
  const healthBanner = h("div", { class: "lr-health", role: "alert" });
  const notice = h("div", { class: "lr-notice", hidden: true });
  const relabelBanner = h("div", { class: "lr-relabel-banner", hidden: true });
  const search = h("input", {
    class: "lr-search",
    type: "search",
    placeholder: "search text, speaker, character",
    oninput: () => {
      state.filters.search = search.value.trim().toLowerCase();
      refilter();
    },
  });
  const filterBoxes = new Map();
  const filterLabels = FILTERS.map(([key, label, tip]) => {
    const box = h("input", {
      type: "checkbox",
      "data-filter": key,
      onchange: () => {
        state.filters[key] = box.checked;
        refilter();
      },
    });
    filterBoxes.set(key, box);
    return h("label", { class: "lr-filter", title: tip }, [box, document.createTextNode(label)]);
  });
  const rangeChip = h("button", {
    class: "lr-range",
    hidden: true,
    title: "clear the time range brushed on the timeline",
    onclick: () => model.send({ kind: "clear_range" }),
  });
  const count = h("span", { class: "lr-count" });
  const speakersButton = h("button", {
    class: "lr-speakers-toggle",
    text: "Speakers…",
    title: "the speakers found, their talk time, and which player each one is",
    onclick: () => {
      speakerPanel.hidden = !speakerPanel.hidden;
      renderSpeakers();
    },
  });
  /** Suggested players of the speakers not yet mapped (the kernel's suggest_speaker_map), by speaker. */
  const suggestionsBySpeaker = () => {
    const map = speakerMap();
    const found = new Map();
    for (const suggestion of model.get("speaker_suggestions") || []) {
      if (!map[suggestion.speaker]) found.set(suggestion.speaker, suggestion);
    }
    return found;
  };
  const help = h("span", { class: "lr-help", tabindex: "0", title: KEYS.map(([k, v]) => `${k}: ${v}`).join("\n") }, [
    document.createTextNode("⌨ keys"),
    h(
      "span",
      { class: "lr-help-pop", role: "tooltip" },
      KEYS.map(([key, what]) => h("span", { class: "lr-help-row" }, [h("kbd", { text: key }), document.createTextNode(what)])),
    ),
  ]);
  const filters = h("div", { class: "lr-filters" }, [
    ...filterLabels,
    search,
    rangeChip,
    count,
    speakersButton,
    help,
  ]);

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
    text: "Undo my last change",
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
  const speakerPanel = h("div", { class: "lr-speakers", hidden: true });

  const HEADINGS = [
    ["", ""],
    ["time", "start–end; the column widens for sessions of an hour or more"],
    ["speaker", "the speaker, or the player a speaker found is mapped to"],
    ["IC/OOC", "in or out of character (keys i, o, m)"],
    ["character", "the character speaking"],
    ["text", "hover for the whole text; → or ▸ opens the row"],
    ["asr · spk · ic", CONFIDENCE_HELP],
    ["status", "the row's status; ? marks it uncertain"],
  ];
  const header = h(
    "div",
    { class: "lr-header" },
    HEADINGS.map(([label, tip], i) => h("div", { class: `lr-cell lr-col-${i}`, text: label, title: tip || null })),
  );
  const headerWrap = h("div", { class: "lr-header-wrap" }, [header]);
  const spacer = h("div", { class: "lr-spacer" });
  const detail = h("div", { class: "lr-detail", hidden: true });
  spacer.append(detail);
  const viewport = h("div", { class: "lr-viewport", tabindex: "0" }, [spacer]);
  const emptyText = h("span", { class: "lr-empty-text" });
  const clearFilters = h("button", {
    class: "lr-clear-filters",
    text: "Clear filters",
    onclick: () => {
      for (const [key, box] of filterBoxes) {
        box.checked = false;
        state.filters[key] = false;
      }
      search.value = "";
      state.filters.search = "";
      if (model.get("time_range").length) model.send({ kind: "clear_range" });
      refilter();
    },
  });
  const empty = h("div", { class: "lr-empty" }, [emptyText, clearFilters]);
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
    h("span", {}, [
      h("span", { class: "lr-swatch", style: "background: var(--lr-selected)" }),
      document.createTextNode("selected rows"),
    ]),
    h("span", { text: "drag on the timeline to select a time range" }),
    h("b", { class: "lr-legend-confidence", text: "asr · spk · ic" }),
    h("span", { class: "lr-legend-confidence-text", text: CONFIDENCE_HELP }),
  ]);
  const root = h(
    "div",
    {
      class: "lr-review",
      "data-lm-suppress-shortcuts": "true",
      "data-view": viewId,
      "data-session": model.get("session_id"),
    },
    [
      status,
      healthBanner,
      notice,
      relabelBanner,
      filters,
      toolbar,
      confirmPanel,
      speakerPanel,
      charList,
      speakerList,
      headerWrap,
      viewport,
      empty,
      legend,
    ],
  );
  el.append(root);
  const slots = [];
  const observer =
    typeof IntersectionObserver === "function"
      ? new IntersectionObserver((entries) => {
          state.onScreen = entries.some((entry) => entry.isIntersecting);
          if (state.onScreen) schedule();
        })
      : null;
  if (observer) observer.observe(viewport);

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

  function remove(ids) {
    const gone = new Set(ids);
    state.rows = state.rows.filter((row) => !gone.has(row.id));
    for (const id of gone) {
      state.byId.delete(id);
      state.relabelled.delete(id);
    }
    if (gone.has(state.expanded)) state.expanded = null;
    if (gone.has(state.current)) state.current = null;
    if (state.editing && gone.has(state.editing.id)) state.editing = null;
    if ([...state.selected].some((id) => gone.has(id))) setSelection([...state.selected].filter((id) => !gone.has(id)));
    state.needsFilter = true;
    schedule();
  }

  /** Mark the changed rows the reader had already seen, and tell how many. */
  function markChanged(changes) {
    const fresh = [];
    for (const [id, change] of Object.entries(changes || {})) {
      if (!state.seen.has(id) || !state.byId.has(id)) continue;
      state.relabelled.set(id, change);
      fresh.push(change);
      const row = state.byId.get(id);
      row._v += 1;
    }
    if (fresh.length) showRelabel();
  }

  function showRelabel() {
    const marked = [...state.relabelled.values()];
    relabelBanner.hidden = marked.length === 0;
    root.dataset.relabelled = String(marked.length);
    if (!marked.length) return;
    const causes = [...new Set(marked.map((change) => change.cause))].join(" and ");
    const lead = causes.charAt(0).toUpperCase() + causes.slice(1);
    const fields = [...new Set(marked.flatMap((change) => change.fields.map(([column]) => FIELD_WORDS[column])))];
    relabelBanner.replaceChildren(
      h("span", {
        class: "lr-relabel-text",
        text:
          `${lead} changed the ${fields.join(", ")} of ${marked.length} row${marked.length === 1 ? "" : "s"} ` +
          "you had already seen; they are marked ◆ until you select them.",
      }),
      h("button", {
        class: "lr-relabel-show",
        text: "Show them",
        onclick: () => {
          filterBoxes.get("changed").checked = true;
          state.filters.changed = true;
          refilter();
        },
      }),
      h("button", {
        class: "lr-relabel-clear",
        text: "Mark all as seen",
        onclick: () => {
          for (const id of state.relabelled.keys()) if (state.byId.has(id)) state.byId.get(id)._v += 1;
          state.relabelled.clear();
          showRelabel();
          refilter();
        },
      }),
    );
  }

  function lookedAt(id) {
    if (!state.relabelled.delete(id)) return;
    const row = state.byId.get(id);
    if (row) row._v += 1;
    showRelabel();
  }

  function matches(row, range) {
    const f = state.filters;
    if (f.low) {
      const low = [row.asr, row.spk, row.icc].some((c) => c !== null && c !== undefined && c < LOW_CONFIDENCE);
      if (!low && !row.flag) return false;
    }
    if (f.nospeaker && row.speaker) return false;
    if (f.lowspeaker && !(row.spk !== null && row.spk !== undefined && row.spk < LOW_CONFIDENCE)) return false;
    if (f.ic || f.ooc || f.mixed) {
      const label = row.ic_ooc;
      if (!((f.ic && label === "IC") || (f.ooc && label === "OOC") || (f.mixed && label === "MIXED"))) return false;
    }
    if (f.attention && row.status !== "needs attention") return false;
    if (f.edited && !(row.edited && row.edited.length)) return false;
    if (f.changed && !state.relabelled.has(row.id)) return false;
    if (range.length === 2 && !(row.end > range[0] && row.start < range[1])) return false;
    if (f.search) {
      const hay = `${row.text} ${row.speaker || ""} ${shownSpeaker(row.speaker)} ${row.character || ""}`.toLowerCase();
      if (!hay.includes(f.search)) return false;
    }
    return true;
  }

  function filtering() {
    return Object.entries(state.filters).some(([, on]) => on) || model.get("time_range").length === 2;
  }

  function refilter() {
    state.needsFilter = true;
    schedule();
  }

  // -- rendering -------------------------------------------------------------------------------
  function schedule() {
    if (!state.frame) state.frame = requestAnimationFrame(paint);
  }

  /** Where row `index` of the visible rows is drawn: the open row's details push the rows below it down. */
  function rowTop(index, expandedIndex) {
    return index * ROW_HEIGHT + (expandedIndex >= 0 && index > expandedIndex ? state.detailHeight : 0);
  }

  function sizeColumns() {
    const longest = clock(Math.max(model.get("duration") || 0, ...state.rows.slice(-1).map((r) => r.end)));
    const chars = 2 * longest.length + 1;
    root.style.setProperty("--lr-time-w", `calc(${chars}ch + 16px)`);
    root.dataset.timeChars = String(chars);
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
      sizeColumns();
    }
    const total = state.visible.length;
    let expandedIndex = state.expanded ? state.visible.findIndex((r) => r.id === state.expanded) : -1;
    if (expandedIndex < 0) state.expanded = null;
    renderDetail(expandedIndex >= 0 ? state.visible[expandedIndex] : null, expandedIndex);
    const extra = expandedIndex >= 0 ? state.detailHeight : 0;
    spacer.style.height = `${total * ROW_HEIGHT + extra}px`;
    // Following the newest rows: scroll to them (after an open editor closes, if one is open).
    if (state.appended && state.follow && !state.editing) viewport.scrollTop = viewport.scrollHeight;
    if (!state.editing || !state.follow) state.appended = false;
    const top = viewport.scrollTop;
    const height = viewport.clientHeight || model.get("height");
    const first = Math.max(0, Math.floor((top - extra) / ROW_HEIGHT) - OVERSCAN);
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
      const y = rowTop(index, expandedIndex);
      slot.style.transform = `translateY(${y}px)`;
      fill(slot, state.visible[index]);
      if (state.onScreen && y >= top && y + ROW_HEIGHT <= top + height) state.seen.add(state.visible[index].id);
    });
    headerWrap.scrollLeft = viewport.scrollLeft;
    root.dataset.total = String(state.rows.length);
    root.dataset.visible = String(total);
    root.dataset.loaded = state.partial ? "partial" : state.loaded ? "true" : "false";
    root.dataset.current = state.current || "";
    root.dataset.expanded = state.expanded || "";
    if (!state.loaded) emptyText.textContent = "Loading…";
    else if (!state.rows.length) emptyText.textContent = "Waiting for the first segments…";
    else emptyText.textContent = total ? "" : "No segments match the filters and search.";
    empty.hidden = Boolean(state.loaded && total);
    clearFilters.hidden = !(state.loaded && state.rows.length && !total && filtering());
    count.textContent = state.partial
      ? `loading ${state.total.toLocaleString()} segments…`
      : `${total.toLocaleString()} of ${state.rows.length.toLocaleString()} segments`;
    updateStatus();
  }

  function fill(slot, row) {
    const selected = state.selected.has(row.id);
    const canChange = editable(row);
    const relabel = state.relabelled.get(row.id);
    const key = `${row._v}|${canChange}|${row._pending ? 1 : 0}|${state.expanded === row.id}|${state.current === row.id}|${JSON.stringify(speakerMap())}`;
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
      state.current === row.id ? "lr-current" : "",
      canChange ? "lr-editable" : "",
      row._pending ? "lr-pending" : "",
      row.flag ? "lr-flagged" : "",
      relabel ? "lr-relabelled" : "",
      state.expanded === row.id ? "lr-expanded" : "",
    ]
      .filter(Boolean)
      .join(" ");
    const speaker = row.speaker ? shownSpeaker(row.speaker) : "";
    const mapped = row.speaker && speakerMap()[row.speaker];
    const cells = [
      h("div", { class: "lr-cell lr-col-0" }, [
        h("button", {
          class: "lr-expand",
          "data-action": "expand",
          title: state.expanded === row.id ? "close the details (←)" : "open the details: whole text, times, split, merge (→)",
          text: state.expanded === row.id ? "▾" : "▸",
        }),
        h("input", { type: "checkbox", class: "lr-select", checked: selected, title: "select" }),
      ]),
      h("div", {
        class: `lr-cell lr-col-1 lr-time${edited.has("start") || edited.has("end") ? " lr-edited" : ""}`,
        text: `${clock(row.start)}–${clock(row.end)}`,
        title: `${clock(row.start)} to ${clock(row.end)} (${(row.end - row.start).toFixed(1)} s) · chunk ${row.chunk} · ${row.id}`,
      }),
      cell("speaker", "speaker_id", speaker, edited, canChange, "lr-col-2", mapped ? `${row.speaker}, mapped to ${mapped}` : row.speaker),
      icOocCell(row, edited, canChange),
      cell("character", "character_tag", row.character || "", edited, canChange, "lr-col-4", row.character),
      cell("text", "text", row.text, edited, canChange, "lr-col-5", row.text),
      h("div", { class: "lr-cell lr-col-6 lr-conf", title: CONFIDENCE_HELP }, [
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
              title: row.flag ? "marked uncertain: click (or ?) to clear" : "mark uncertain (key ?)",
              text: "?",
              "data-action": "flag",
            })
          : row.flag
            ? h("span", { class: "lr-flag-mark", title: "marked uncertain", text: "?" })
            : null,
        relabel ? h("span", { class: "lr-relabel-mark", title: relabelWords(relabel), text: "◆" }) : null,
      ]),
    ];
    slot.replaceChildren(...cells);
  }

  function relabelWords(change) {
    const parts = change.fields.map(
      ([column, old, now]) => `${FIELD_WORDS[column]} ${valueWords(column, old)} → ${valueWords(column, now)}`,
    );
    return `changed by ${change.cause} after you saw it: ${parts.join("; ")} (select the row to clear the mark)`;
  }

  function cell(name, field, text, edited, canChange, col, full) {
    const blank = !text;
    return h("div", {
      class: `lr-cell ${col} lr-${name}${edited.has(field) ? " lr-edited" : ""}${canChange ? " lr-can-edit" : ""}${blank ? " lr-blank" : ""}`,
      "data-field": field,
      text: blank ? (canChange ? `+ ${name}` : "—") : text,
      title: canChange
        ? `${full ? `${full}\n` : ""}${name === "text" ? "double-click (or Enter) to edit" : "click to edit"}`
        : full || null,
    });
  }

  function icOocCell(row, edited, canChange) {
    const label = row.ic_ooc || "—";
    const cls = `lr-cell lr-col-3 lr-icooc${edited.has("ic_ooc") ? " lr-edited" : ""}`;
    const tag = canChange
      ? h("button", {
          class: `lr-label lr-toggle lr-edit-control lr-label-${label}`,
          "data-action": "toggle",
          title: "click: IC ↔ OOC; keys i, o, m set IC, OOC, MIXED",
          text: label,
        })
      : h("span", { class: `lr-label lr-label-${label}`, text: label });
    return h("div", { class: cls, "data-field": "ic_ooc" }, [tag]);
  }

  function confSpan(value, what) {
    const low = value !== null && value !== undefined && value < LOW_CONFIDENCE;
    return h("span", { class: low ? "lr-low" : "", title: `${what} confidence`, text: confidence(value) });
  }

  // -- the open row's details --------------------------------------------------------------------
  /** The rows before and after `row` in time order (all rows, not only those shown). */
  function neighbours(row) {
    const index = state.rows.indexOf(row);
    return [state.rows[index - 1] || null, state.rows[index + 1] || null];
  }

  function renderDetail(row, index) {
    if (!row) {
      detail.hidden = true;
      state.detailKey = null;
      state.detailHeight = 0;
      return;
    }
    const [before, after] = neighbours(row);
    const key = `${row.id}|${row._v}|${editable(row)}|${state.splitWord}|${before && before._v}|${after && after._v}|${JSON.stringify(speakerMap())}`;
    detail.style.transform = `translateY(${(index + 1) * ROW_HEIGHT}px)`;
    detail.dataset.id = row.id;
    if (state.detailKey !== key) {
      state.detailKey = key;
      detail.replaceChildren(...detailParts(row, before, after));
      detail.hidden = false;
    }
    const height = detail.offsetHeight;
    if (height !== state.detailHeight) {
      state.detailHeight = height;
      schedule();
    }
  }

  function detailParts(row, before, after) {
    const canChange = editable(row);
    const words = String(row.text || "").split(/\s+/).filter(Boolean);
    const relabel = state.relabelled.get(row.id);
    const parts = [
      h("div", {
        class: "lr-detail-meta",
        text:
          `${clock(row.start)}–${clock(row.end)} (${(row.end - row.start).toFixed(2)} s) · chunk ${row.chunk} · ` +
          `${row.id} · ${row.status || "transcribed"} · confidence asr ${confidence(row.asr)}, spk ${confidence(row.spk)}, ` +
          `ic ${confidence(row.icc)}${row.edited && row.edited.length ? ` · corrected: ${row.edited.join(", ")}` : ""}`,
      }),
      h(
        "p",
        { class: "lr-detail-text", title: canChange ? "click a word to split the row before it" : null },
        words.flatMap((word, i) => [
          i ? document.createTextNode(" ") : null,
          h("span", {
            class: `lr-word${canChange && i > 0 ? " lr-word-split" : ""}${state.splitWord === i ? " lr-split-at" : ""}`,
            "data-word": String(i),
            text: word,
          }),
        ]),
      ),
    ];
    if (relabel) parts.push(h("div", { class: "lr-detail-relabel", text: relabelWords(relabel) }));
    if (!canChange) return parts;
    const send = (kind, extra) => model.send({ kind, request: nextRequest(), ...extra });
    const splitButton =
      state.splitWord !== null && state.splitWord > 0 && state.splitWord < words.length
        ? h("button", {
            class: "lr-split lr-edit-control",
            text: `Split before “${words[state.splitWord]}”`,
            onclick: () => {
              send("split", { id: row.id, word: state.splitWord });
              state.splitWord = null;
            },
          })
        : h("span", { class: "lr-hint", text: words.length > 1 ? "click a word to split the row before it" : "" });
    const mergeable = (other) =>
      other && editable(other) && other.speaker && other.speaker === row.speaker;
    const mergeButton = (other, first, second, text) =>
      h("button", {
        class: `lr-merge lr-merge-${text.split(" ").pop()} lr-edit-control`,
        text: `Merge with ${text}`,
        disabled: !mergeable(other),
        title: mergeable(other)
          ? `join with ${clock(other.start)} “${String(other.text).slice(0, 40)}” into one row`
          : "only two neighbouring rows of one speaker merge",
        onclick: () => send("merge", { first, second }),
      });
    const startInput = h("input", { class: "lr-start-input lr-edit-control", type: "text", value: clock(row.start), size: 10 });
    const endInput = h("input", { class: "lr-end-input lr-edit-control", type: "text", value: clock(row.end), size: 10 });
    const setTimes = () => {
      const start = parseClock(startInput.value);
      const end = parseClock(endInput.value);
      if (isNaN(start) || isNaN(end)) {
        startInput.setCustomValidity("write a time as 1:02.5 or 62.5");
        startInput.reportValidity();
        return;
      }
      const change = {};
      if (Math.abs(start - row.start) > 0.0005) change.start = Math.round(start * 1000) / 1000;
      if (Math.abs(end - row.end) > 0.0005) change.end = Math.round(end * 1000) / 1000;
      if (Object.keys(change).length) send("boundary", { id: row.id, ...change, reason: reason.value.trim() || null });
    };
    for (const input of [startInput, endInput])
      input.addEventListener("keydown", (event) => {
        event.stopPropagation();
        if (event.key === "Enter") setTimes();
      });
    const labels = ["IC", "OOC", "MIXED"].map((label) =>
      h("button", {
        class: `lr-label lr-label-${label} lr-set-label lr-edit-control${row.ic_ooc === label ? " lr-on" : ""}`,
        "data-label": label,
        text: label,
        onclick: () => sendEdit(row, "ic_ooc", label),
      }),
    );
    parts.push(
      h("div", { class: "lr-detail-row" }, [splitButton]),
      h("div", { class: "lr-detail-row" }, [
        h("span", { class: "lr-detail-label", text: "IC/OOC" }),
        ...labels,
        h("span", { class: "lr-detail-label", text: "times" }),
        startInput,
        document.createTextNode("–"),
        endInput,
        h("button", { class: "lr-set-times lr-edit-control", text: "Set times", onclick: setTimes }),
        h("span", { class: "lr-hint", text: "or drag the edges on the waveform" }),
      ]),
      h("div", { class: "lr-detail-row" }, [
        mergeButton(before, before && before.id, row.id, "previous"),
        mergeButton(after, row.id, after && after.id, "next"),
      ]),
    );
    return parts;
  }

  detail.addEventListener("click", (event) => {
    const word = event.target.closest(".lr-word-split");
    if (!word) return;
    state.splitWord = Number(word.dataset.word);
    state.detailKey = null;
    schedule();
  });

  function setExpanded(id) {
    state.expanded = id;
    state.splitWord = null;
    state.detailKey = null;
    schedule();
  }

  // -- status, notices, speakers -------------------------------------------------------------------
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
    applyButton.textContent = state.selected.size > 1 ? "Apply to selected…" : "Apply to selected";
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

  function renderSpeakers() {
    const players = model.get("players") || [];
    const suggestions = suggestionsBySpeaker();
    const suggested = [...suggestions.values()].filter((s) => s.player).length;
    speakersButton.textContent = suggested ? `Speakers… (${suggested} suggested)` : "Speakers…";
    if (speakerPanel.hidden) return;
    const map = speakerMap();
    const found = (model.get("speaker_stats") || []).filter((stat) => !players.includes(stat.speaker));
    const rows = found.map((stat) => {
      const seconds = Math.round(stat.seconds);
      const talk = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")} talk · ${stat.rows} rows`;
      const mapping = map[stat.speaker];
      const choices = canEdit()
        ? [
            ...players.map((player) =>
              h("button", {
                class: `lr-map-to lr-edit-control${mapping === player ? " lr-on" : ""}`,
                "data-player": player,
                text: player,
                title: `${stat.speaker} is ${player}`,
                onclick: () => model.send({ kind: "map_speaker", speaker: stat.speaker, player }),
              }),
            ),
            newNameControl(stat.speaker),
          ]
        : [h("span", { text: mapping ? `is ${mapping}` : "not mapped" })];
      return h("div", { class: "lr-speaker-row", "data-speaker": stat.speaker }, [
        h("button", {
          class: "lr-speaker-play",
          text: "▶",
          title: `play ${stat.speaker}'s longest row`,
          onclick: () => model.send({ kind: "play", id: stat.sample }),
        }),
        h("b", { class: "lr-speaker-name", text: stat.speaker }),
        h("span", { class: "lr-speaker-talk", text: talk }),
        h("span", { class: "lr-speaker-mapped", text: mapping ? `→ ${mapping}` : "→ not mapped" }),
        ...choices,
        ...(mapping || !suggestions.has(stat.speaker) ? [] : [suggestionControl(suggestions.get(stat.speaker))]),
      ]);
    });
    speakerPanel.replaceChildren(
      h("div", {
        class: "lr-speakers-title",
        text: found.length
          ? "Speakers found: play a sample, then say which player each one is (kept in speaker_map.json)"
          : "Every speaker is a player of the party.",
      }),
      ...rows,
    );
  }

  /** "Suggested: Sam (Duncan) — confirm": one click maps the speaker as the player buttons do. */
  function suggestionControl(suggestion) {
    const who = suggestion.player
      ? `${suggestion.player} (${suggestion.character || suggestion.role})`
      : `the ${suggestion.role} (name unknown without a party)`;
    const percent = `${Math.round(100 * suggestion.confidence)}%`;
    const parts = [
      h("span", { class: "lr-suggestion-text", text: `Suggested: ${who}` }),
      h("span", { class: "lr-suggestion-confidence", text: percent, title: "how sure the suggestion is" }),
    ];
    if (suggestion.player && canEdit()) {
      parts.push(
        h("button", {
          class: "lr-suggestion-confirm lr-edit-control",
          "data-player": suggestion.player,
          text: "confirm",
          title: `${suggestion.speaker} is ${suggestion.player}: keep it in speaker_map.json`,
          onclick: () => model.send({ kind: "map_speaker", speaker: suggestion.speaker, player: suggestion.player }),
        }),
      );
    }
    parts.push(h("span", { class: "lr-suggestion-evidence", text: suggestion.evidence }));
    return h(
      "span",
      { class: "lr-suggestion", "data-speaker": suggestion.speaker, "data-player": suggestion.player, title: suggestion.evidence },
      parts,
    );
  }

  function newNameControl(speaker) {
    const input = h("input", {
      class: "lr-map-name lr-edit-control",
      type: "text",
      placeholder: "or a new name",
      list: speakerList.id,
      size: 12,
    });
    const send = () => {
      const name = input.value.trim();
      if (name) model.send({ kind: "map_speaker", speaker, player: name });
    };
    input.addEventListener("keydown", (event) => {
      event.stopPropagation();
      if (event.key === "Enter") send();
    });
    return h("span", {}, [input, h("button", { class: "lr-map-new lr-edit-control", text: "Map", onclick: send })]);
  }

  // -- selection, keys and playback -----------------------------------------------------------
  function setSelection(ids) {
    state.selected = new Set(ids);
    state.sentSelections = [...state.sentSelections.slice(-20), JSON.stringify([...state.selected])];
    model.send({ kind: "select", ids: [...state.selected] });
    schedule();
  }

  function setCurrent(row) {
    state.current = row.id;
    state.anchor = row.id;
    lookedAt(row.id);
    if (state.expanded && state.expanded !== row.id) setExpanded(row.id);
  }

  /** Scroll so row `index` of the visible rows is in view. */
  function reveal(index) {
    const expandedIndex = state.expanded ? state.visible.findIndex((r) => r.id === state.expanded) : -1;
    const y = rowTop(index, expandedIndex);
    const bottom = y + ROW_HEIGHT + (index === expandedIndex ? state.detailHeight : 0);
    if (y < viewport.scrollTop) viewport.scrollTop = y;
    else if (bottom > viewport.scrollTop + viewport.clientHeight) viewport.scrollTop = bottom - viewport.clientHeight;
    state.follow = false;
  }

  function currentRow() {
    return state.byId.get(state.current) || state.byId.get([...state.selected][0]) || null;
  }

  function onKey(event) {
    const target = event.target;
    if (target.closest("textarea, select, input:not([type=checkbox])")) return; // editors handle their own keys
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const row = currentRow();
    const key = event.key;
    let handled = true;
    if (key === "ArrowDown" || key === "ArrowUp") {
      const index = row ? state.visible.indexOf(row) : -1;
      const next = Math.min(Math.max(index + (key === "ArrowDown" ? 1 : -1), 0), state.visible.length - 1);
      const chosen = state.visible[index < 0 ? 0 : next];
      if (chosen) {
        setCurrent(chosen);
        setSelection([chosen.id]);
        reveal(state.visible.indexOf(chosen));
      }
    } else if (!row) {
      handled = key === " "; // nothing to act on; keep the page from scrolling
    } else if (key === " ") {
      model.send({ kind: "toggle_play", id: row.id });
    } else if (LABEL_KEYS[key.toLowerCase()] && key.length === 1) {
      if (editable(row)) sendEdit(row, "ic_ooc", LABEL_KEYS[key.toLowerCase()]);
    } else if (key === "?") {
      if (editable(row)) sendEdit(row, "confidence_flag", !row.flag);
    } else if (key === "Enter") {
      if (editable(row)) editTextOf(row);
    } else if (key === "ArrowRight") {
      setExpanded(row.id);
    } else if (key === "ArrowLeft") {
      setExpanded(null);
    } else if (key === "Escape") {
      if (state.expanded) setExpanded(null);
      else setSelection([]);
    } else handled = false;
    if (handled) {
      event.preventDefault();
      event.stopPropagation();
    }
  }

  function editTextOf(row) {
    const index = state.visible.indexOf(row);
    if (index < 0) return;
    reveal(index);
    if (state.frame) cancelAnimationFrame(state.frame);
    paint(); // the row's cell must be drawn to hold the editor
    const target = spacer.querySelector(`.lr-row[data-id="${CSS.escape(row.id)}"] [data-field='text']`);
    if (target) startEditing(row, "text", target);
  }

  function onRowClick(event, slot) {
    const row = slot._row;
    if (!row) return;
    const action = event.target.closest("[data-action]");
    if (action && action.dataset.action === "expand") {
      setCurrent(row);
      setExpanded(state.expanded === row.id ? null : row.id);
      return;
    }
    if (action && canEdit()) {
      setCurrent(row);
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
        setCurrent(row);
        setSelection([...ids]);
      }
      return;
    }
    const target = event.target.closest("[data-field]");
    if (target && editable(row) && ["speaker_id", "character_tag"].includes(target.dataset.field)) {
      setCurrent(row);
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
      setCurrent(row);
      setSelection([...ids]);
      return;
    }
    setCurrent(row);
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
    row[COLUMN_OF[field] || field] = value; // shown at once; the result message brings the stored value
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

  /** The speaker dropdown: the party's players, then the speakers found not yet mapped, then those mapped. */
  function speakerSelect(current) {
    const known = model.get("speakers");
    const map = speakerMap();
    const players = [...new Set([...(model.get("players") || []), ...Object.values(map)])];
    const unmapped = known.filter((s) => !players.includes(s) && !(s in map));
    const mapped = known.filter((s) => s in map && !players.includes(s));
    const group = (label, names, text = (s) => s) =>
      names.length ? h("optgroup", { label }, names.map((s) => h("option", { value: s, text: text(s) }))) : null;
    const select = h("select", { class: "lr-editor lr-edit-control lr-speaker-select" }, [
      h("option", { value: "", text: "—", disabled: true }),
      group("Players", players),
      group("Speakers found, not mapped", unmapped),
      group("Speakers found, mapped", mapped, (s) => `${s} → ${map[s]}`),
      h("option", { value: NEW_SPEAKER, text: "New speaker…" }),
    ]);
    select.value = [...players, ...unmapped, ...mapped].includes(current) ? current : "";
    return select;
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
      viewport.focus({ preventScroll: true }); // the keys go on working
    };
    const keys = (control, read, isNew) => (event) => {
      event.stopPropagation();
      if (event.key === "Enter") finish(control, true, read(), isNew);
      else if (event.key === "Escape") finish(control, false, null);
    };
    let control;
    if (field === "speaker_id") {
      const select = speakerSelect(row.speaker);
      control = select;
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
        text: `Apply to ${message.ids.length} rows`,
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
      if (!state.loaded) return;
      upsert(msg.rows, msg.kind === "append");
      markChanged(msg.changes);
    } else if (msg.kind === "remove") {
      if (state.loaded) remove(msg.ids);
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
    const names = [...new Set([...(model.get("players") || []), ...model.get("speakers")])];
    speakerList.replaceChildren(...names.map((s) => h("option", { value: s })));
  };
  const onSpeakers = () => {
    onLists();
    renderSpeakers();
    schedule();
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
    ["change:speakers", onSpeakers],
    ["change:players", onSpeakers],
    ["change:speaker_map", onSpeakers],
    ["change:speaker_stats", onSpeakers],
    ["change:speaker_suggestions", onSpeakers],
    ["change:time_range", onRange],
    ["change:notice", showNotice],
    ...["status", "position", "duration", "can_edit", "metrics", "health"].map((name) => [`change:${name}`, onStatus]),
    ["change:height", onHeight],
    ["change:palette", onPalette],
  ];
  for (const [name, listener] of listeners) model.on(name, listener);
  viewport.addEventListener("scroll", () => {
    state.follow = viewport.scrollTop + viewport.clientHeight >= viewport.scrollHeight - ROW_HEIGHT;
    headerWrap.scrollLeft = viewport.scrollLeft;
    schedule();
  });
  root.addEventListener("keydown", onKey);

  onHeight();
  onPalette();
  onLists();
  renderSpeakers();
  updateBatchValue();
  showNotice();
  paint();
  model.send({ kind: "snapshot_request", view: viewId });

  return () => {
    if (state.frame) cancelAnimationFrame(state.frame);
    if (observer) observer.disconnect();
    for (const [name, listener] of listeners) model.off(name, listener);
  };
}

export default { render };
