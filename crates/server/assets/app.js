// wagate dashboard: small behaviours shared by every page. Actions call the REST API with the
// session cookie and the page's CSRF token.
"use strict";

const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

// Calls the REST API; answers the parsed JSON, or throws an Error whose message is the API's.
async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const text = await response.text();
  const json = text ? JSON.parse(text) : {};
  if (!response.ok) {
    const error = new Error(describeError(json, response.status));
    error.body = json;
    throw error;
  }
  return json;
}

// The API's error message, with Meta's own words when Meta refused.
function describeError(json, status) {
  const error = json && json.error;
  if (!error) return `The server answered ${status}.`;
  const meta = error.details && error.details.meta;
  const metaText = meta && (meta.message || meta.title);
  return metaText && !String(error.message).includes(metaText)
    ? `${error.message} (Meta: ${metaText})`
    : error.message;
}

function toast(message, kind) {
  const box = document.getElementById("toasts");
  if (!box) return;
  const item = document.createElement("div");
  item.className = "toast" + (kind === "error" ? " error" : "");
  item.setAttribute("role", "status");
  item.textContent = message;
  box.appendChild(item);
  setTimeout(() => item.remove(), 4000);
}

async function busy(button, work) {
  button.setAttribute("aria-busy", "true");
  button.disabled = true;
  try {
    return await work();
  } finally {
    button.removeAttribute("aria-busy");
    button.disabled = false;
  }
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast("Copied");
  } catch {
    toast("Select the text and copy it", "error");
  }
}

document.addEventListener("click", (event) => {
  const target = event.target.closest("button, a");
  if (!target) return;
  if (target.dataset.open) document.getElementById(target.dataset.open)?.showModal();
  if (target.dataset.close) document.getElementById(target.dataset.close)?.close();
  if (target.dataset.copy) copy(target.dataset.copy);
  if (target.dataset.copyFrom) copy(document.getElementById(target.dataset.copyFrom)?.textContent || "");
  if (target.dataset.testConnection) testConnection(target);
  if (target.dataset.disconnect) disconnect(target);
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.confirm && !confirm(form.dataset.confirm)) event.preventDefault();
  if (form.id === "connect-form") {
    event.preventDefault();
    connect(form);
  }
});

async function connect(form) {
  const error = document.getElementById("connect-error");
  const result = document.getElementById("connect-result");
  const submit = document.getElementById("connect-submit");
  error.hidden = true;
  const data = Object.fromEntries(new FormData(form));
  if (!data.waba_id) delete data.waba_id;
  await busy(submit, async () => {
    try {
      const connection = await api("POST", "/api/v1/connections", data);
      form.querySelectorAll("input").forEach((input) => (input.value = ""));
      document.getElementById("connect-webhook-url").textContent = connection.webhook_url;
      document.getElementById("connect-verify-token").textContent = connection.verify_token || "";
      result.hidden = false;
      submit.hidden = true;
      document.getElementById("connect-fields").hidden = true;
      result.scrollIntoView({ block: "nearest" });
      toast(`Connected ${connection.display_phone_number}`);
      form.closest("dialog").addEventListener("close", () => location.reload(), { once: true });
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
    }
  });
}

async function testConnection(button) {
  await busy(button, async () => {
    try {
      const outcome = await api("POST", `/api/v1/connections/${button.dataset.testConnection}/test`);
      if (outcome.ok === false) {
        toast((outcome.error && outcome.error.message) || "Meta refused the credentials", "error");
      } else {
        toast("The connection works");
      }
    } catch (failure) {
      toast(failure.message, "error");
    }
  });
}

async function disconnect(button) {
  if (!confirm(`Disconnect ${button.dataset.number}? Its credentials are deleted; messages stay.`)) return;
  await busy(button, async () => {
    try {
      await api("DELETE", `/api/v1/connections/${button.dataset.disconnect}`);
      toast("Disconnected");
      location.reload();
    } catch (failure) {
      toast(failure.message, "error");
    }
  });
}

window.wagate = { api, toast, busy };

// ---- Times: shown in the reader's own time zone, with a divider for each day in the chat.
function formatTimes(root) {
  const today = new Date().toDateString();
  root.querySelectorAll("time[datetime]").forEach((el) => {
    const at = new Date(el.getAttribute("datetime"));
    if (isNaN(at)) return;
    const time = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    el.textContent =
      el.dataset.format === "short" && at.toDateString() !== today
        ? at.toLocaleDateString([], { day: "numeric", month: "short" })
        : time;
    el.title = at.toLocaleString();
  });
  const list = root.querySelector("#messages");
  if (!list) return;
  list.querySelectorAll(".day").forEach((d) => d.remove());
  let last = "";
  list.querySelectorAll(".message").forEach((item) => {
    const day = new Date(item.dataset.at).toDateString();
    if (day !== last) {
      const divider = document.createElement("li");
      divider.className = "day";
      divider.textContent = day === today ? "Today" : new Date(item.dataset.at).toLocaleDateString([], { weekday: "short", day: "numeric", month: "short", year: "numeric" });
      item.before(divider);
      last = day;
    }
  });
}

// ---- The window's time left, in the chat header.
function showWindowLeft() {
  const el = document.querySelector("[data-window-closes]");
  if (!el) return;
  const left = new Date(el.dataset.windowCloses) - new Date();
  if (left <= 0) {
    el.textContent = "Window closed: only templates can be sent";
    el.className = "window closed";
    return;
  }
  const hours = Math.floor(left / 3600000);
  const minutes = Math.floor((left % 3600000) / 60000);
  el.textContent = `Window open: ${hours} h ${minutes} min left`;
}

function scrollToEnd(force) {
  const list = document.getElementById("messages");
  if (!list) return;
  const nearEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 120;
  if (force || nearEnd) list.scrollTop = list.scrollHeight;
}

// ---- Marks the open conversation read (Meta gets a read receipt) while it has unread messages.
async function markOpenRead() {
  const head = document.querySelector(".chat-head");
  if (!head || Number(head.dataset.unread || 0) === 0 || document.hidden) return;
  head.dataset.unread = "0";
  try {
    await api("POST", `/api/v1/conversations/${head.dataset.conversationId}/read`);
    scheduleRefresh();
  } catch (failure) {
    // Tried again on the next refresh, which renders the count again.
    head.dataset.unread = "1";
    console.warn("marking read failed", failure);
  }
}

// ---- Live updates: every event of this tenant refreshes the parts of the page it can change.
let refreshTimer = null;
function scheduleRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, 120);
}

async function refresh() {
  let html;
  try {
    const response = await fetch(location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    html = await response.text();
  } catch {
    return;
  }
  const next = new DOMParser().parseFromString(html, "text/html");
  const wasAtEnd = (() => {
    const list = document.getElementById("messages");
    return !list || list.scrollHeight - list.scrollTop - list.clientHeight < 120;
  })();
  for (const id of ["conversation-list", "bell-count"]) {
    const current = document.getElementById(id);
    const fresh = next.getElementById(id);
    if (current && fresh) current.replaceWith(fresh);
  }
  mergeMessages(document.getElementById("messages"), next.getElementById("messages"));
  const head = document.querySelector(".chat-head");
  const freshHead = next.querySelector(".chat-head");
  if (head && freshHead) head.replaceWith(freshHead);
  const composer = document.getElementById("composer");
  const freshComposer = next.getElementById("composer");
  if (composer && freshComposer && composer.dataset.window !== freshComposer.dataset.window) {
    composer.replaceWith(freshComposer);
    if (window.htmx) window.htmx.process(freshComposer);
  }
  formatTimes(document);
  showWindowLeft();
  if (wasAtEnd) scrollToEnd(true);
  markOpenRead();
}

// Updates the shown messages from a fresh page without dropping older ones loaded meanwhile:
// a message already shown is replaced (its ticks or reactions changed), a new one is appended.
function mergeMessages(current, fresh) {
  if (!current || !fresh) return;
  if (current.dataset.conversationId !== fresh.dataset.conversationId) {
    current.replaceWith(fresh);
    return;
  }
  const shown = new Map();
  current.querySelectorAll("li.message").forEach((li) => shown.set(li.dataset.messageId, li));
  fresh.querySelectorAll("li.message").forEach((li) => {
    const old = shown.get(li.dataset.messageId);
    // Replaced only when it changed, so a photo is not reloaded or a playing voice note cut off.
    if (old && old.dataset.version !== li.dataset.version) old.replaceWith(li);
    else if (!old) current.appendChild(li);
  });
}

function pulseBell() {
  const bell = document.getElementById("bell");
  if (!bell) return;
  bell.classList.remove("pulse");
  void bell.offsetWidth;
  bell.classList.add("pulse");
}

function connectEvents(attempt = 0) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/v1/events`);
  socket.addEventListener("open", () => {
    // Whatever happened between rendering the page (or losing the socket) and now was not
    // streamed to this page: catch up once.
    scheduleRefresh();
    attempt = 0;
  });
  socket.addEventListener("message", (event) => {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    if (data.type === "message.created" && data.data && data.data.direction === "inbound") pulseBell();
    scheduleRefresh();
  });
  socket.addEventListener("close", () => {
    // The server restarted or the network blinked: try again, less often the longer it lasts.
    const wait = Math.min(10000, 500 * 2 ** Math.min(attempt, 5));
    setTimeout(() => connectEvents(attempt + 1), wait);
  });
}

// ---- The composer: Enter sends, Shift+Enter starts a new line.
document.addEventListener("keydown", (event) => {
  const box = event.target;
  if (box.matches && box.matches("#composer textarea") && event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    box.form.requestSubmit();
  }
});

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (form.id !== "composer") return;
  event.preventDefault();
  const box = form.querySelector("textarea");
  const body = box.value.trim();
  if (!body) return;
  const button = form.querySelector("button[type=submit]");
  await busy(button, async () => {
    try {
      await api("POST", "/api/v1/messages", {
        connection_id: form.dataset.connectionId,
        to: form.dataset.to,
        type: "text",
        text: { body },
      });
      box.value = "";
      scheduleRefresh();
    } catch (failure) {
      toast(failure.message, "error");
    }
  });
  box.focus();
});

// "Load older" keeps the reader's place: the list grows above what they were looking at.
let heightBeforeSwap = 0;
document.addEventListener("htmx:beforeSwap", () => {
  heightBeforeSwap = document.getElementById("messages")?.scrollHeight || 0;
});
document.addEventListener("htmx:afterSwap", (event) => {
  formatTimes(document);
  const path = event.detail.requestConfig?.path || "";
  const list = document.getElementById("messages");
  if (list && heightBeforeSwap && path.startsWith("/app/inbox/older")) {
    list.scrollTop += list.scrollHeight - heightBeforeSwap;
  }
  heightBeforeSwap = 0;
});

document.addEventListener("DOMContentLoaded", () => {
  formatTimes(document);
  showWindowLeft();
  setInterval(showWindowLeft, 30000);
  scrollToEnd(true);
  markOpenRead();
  if (document.querySelector("header.topbar")) connectEvents();
  document.addEventListener("visibilitychange", markOpenRead);
});

// ---- The bell's menu: htmx loads it on click; this shows, hides and acts on it.
document.addEventListener("click", async (event) => {
  const menu = document.getElementById("bell-menu");
  const bell = document.getElementById("bell");
  if (!menu || !bell) return;
  if (event.target.closest("#bell")) {
    const opening = menu.hidden;
    menu.hidden = !opening;
    bell.setAttribute("aria-expanded", String(opening));
    return;
  }
  const markAll = event.target.closest("[data-mark-all-read]");
  if (markAll) {
    await busy(markAll, async () => {
      try {
        await api("POST", "/api/v1/conversations/read-all");
        menu.hidden = true;
        bell.setAttribute("aria-expanded", "false");
        toast("All conversations marked as read");
        scheduleRefresh();
      } catch (failure) {
        toast(failure.message, "error");
      }
    });
    return;
  }
  if (!event.target.closest("#bell-menu")) {
    menu.hidden = true;
    bell.setAttribute("aria-expanded", "false");
  }
});

document.addEventListener("keydown", (event) => {
  const menu = document.getElementById("bell-menu");
  if (event.key === "Escape" && menu && !menu.hidden) {
    menu.hidden = true;
    document.getElementById("bell")?.setAttribute("aria-expanded", "false");
  }
});

// ---- The chat header: take a conversation over from the assistant, or hand it back.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-assistant]");
  if (!button) return;
  const action = button.dataset.assistant === "resume" ? "resume" : "pause";
  await busy(button, async () => {
    try {
      await api("POST", `/api/v1/conversations/${button.dataset.conversationId}/assistant/${action}`, {});
      toast(action === "resume" ? "The assistant answers again" : "You are handling this conversation");
      scheduleRefresh();
    } catch (failure) {
      toast(failure.message, "error");
    }
  });
});

// ---- Webhook log: a parked webhook is put back in line.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-retry-entry]");
  if (!button) return;
  await busy(button, async () => {
    try {
      await api("POST", `/api/v1/inbox/${button.dataset.retryEntry}/retry`);
      toast("Put back in line");
      location.reload();
    } catch (failure) {
      toast(failure.message, "error");
    }
  });
});

// ---- While someone types an answer, the customer sees "typing…" (Meta shows it for up to 25 s,
// so it is asked for again at most every 20 s).
let typingSentAt = 0;
document.addEventListener("input", async (event) => {
  const box = event.target;
  if (!box.matches || !box.matches("#composer textarea") || !box.value.trim()) return;
  const head = document.querySelector(".chat-head");
  if (!head || Date.now() - typingSentAt < 20000) return;
  typingSentAt = Date.now();
  try {
    await api("POST", `/api/v1/conversations/${head.dataset.conversationId}/typing`);
  } catch (failure) {
    console.warn("typing indicator failed", failure);
  }
});

// ---- Attachments: the file is checked and uploaded (POST /api/v1/media), then sent by its id,
// with the text box's words as its caption where the kind takes one.
document.addEventListener("click", (event) => {
  if (event.target.closest("#attach")) document.getElementById("attach-input")?.click();
});

document.addEventListener("change", async (event) => {
  const input = event.target;
  if (input.id !== "attach-input" || !input.files || !input.files.length) return;
  const form = document.getElementById("composer");
  const file = input.files[0];
  const button = document.getElementById("attach");
  const box = form.querySelector("textarea");
  await busy(button, async () => {
    try {
      const upload = new FormData();
      upload.append("connection_id", form.dataset.connectionId);
      upload.append("file", file, file.name);
      const response = await fetch("/api/v1/media", {
        method: "POST",
        headers: { "X-CSRF-Token": csrfToken() },
        body: upload,
        credentials: "same-origin",
      });
      const text = await response.text();
      const media = text ? JSON.parse(text) : {};
      if (!response.ok) throw new Error(describeError(media, response.status));
      const object = { id: media.id };
      const caption = box.value.trim();
      if (caption && ["image", "video", "document"].includes(media.kind)) object.caption = caption;
      if (media.kind === "document" && media.filename) object.filename = media.filename;
      await api("POST", "/api/v1/messages", {
        connection_id: form.dataset.connectionId,
        to: form.dataset.to,
        type: media.kind,
        [media.kind]: object,
      });
      if (object.caption) box.value = "";
      toast(`Sent ${file.name}`);
      scheduleRefresh();
    } catch (failure) {
      toast(failure.message, "error");
    } finally {
      input.value = "";
    }
  });
});

// ---- A file a customer sent that could not be fetched is tried again.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-retry-media]");
  if (!button) return;
  await busy(button, async () => {
    try {
      await api("POST", `/api/v1/media/${button.dataset.retryMedia}/retry`);
      toast("Fetching it again");
      scheduleRefresh();
    } catch (failure) {
      toast(failure.message, "error");
    }
  });
});

// ---- The template picker: the form's values become the template's components (the preview
// endpoint builds them and says whether they fit), then it is sent like any message.
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (form.id !== "template-form") return;
  event.preventDefault();
  const composer = document.getElementById("composer");
  const error = document.getElementById("template-error");
  const button = document.getElementById("template-send");
  error.hidden = true;
  const values = new URLSearchParams();
  new FormData(form).forEach((value, key) => {
    if (key !== "template" && String(value).trim()) values.append(key, String(value).trim());
  });
  await busy(button, async () => {
    try {
      const preview = await api("GET", `/api/v1/templates/${form.dataset.templateId}/preview?${values}`);
      if (!preview.sendable) {
        throw new Error((preview.problems && preview.problems.message) || "Fill in every value first.");
      }
      await api("POST", "/api/v1/messages", {
        connection_id: composer.dataset.connectionId,
        to: composer.dataset.to,
        type: "template",
        template: preview.send,
      });
      document.getElementById("template-dialog")?.close();
      toast(`Sent ${preview.template.name}`);
      scheduleRefresh();
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
    }
  });
});

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-sync-templates]");
  if (!button) return;
  await busy(button, async () => {
    try {
      await api("POST", "/api/v1/templates/sync", { connection_id: button.dataset.syncTemplates });
      toast("Templates synced from Meta");
      if (window.htmx) {
        window.htmx.ajax("GET", `/app/inbox/templates?connection=${encodeURIComponent(button.dataset.syncTemplates)}`, "#template-picker");
      }
    } catch (failure) {
      toast(failure.message, "error");
    }
  });
});

// ---- The assistant's settings: the form becomes the API's settings document and is saved with
// PUT; the API's reason for each field that is wrong is shown under that field.
document.addEventListener("click", (event) => {
  if (event.target.closest("#add-faq")) {
    const template = document.getElementById("faq-row-template");
    const rows = document.getElementById("faq-rows");
    if (!template || !rows) return;
    rows.appendChild(template.content.cloneNode(true));
    rows.lastElementChild?.querySelector("[data-faq=question]")?.focus();
  }
  const remove = event.target.closest("[data-remove-faq]");
  if (remove) remove.closest(".faq-row")?.remove();
});

document.addEventListener("change", (event) => {
  const input = event.target;
  const form = input.closest && input.closest("#assistant-form");
  if (!form) return;
  if (input.name === "hours_limited") document.getElementById("assistant-hours").hidden = !input.checked;
  if (input.name === "remove_provider") {
    for (const name of ["provider_base_url", "provider_model", "provider_api_key"]) {
      form.elements[name].disabled = input.checked;
    }
  }
});

// "a, b ,, c" -> ["a", "b", "c"]
const commaList = (text) => text.split(",").map((part) => part.trim()).filter(Boolean);

// A whole number as a number; anything else as typed, for the API to say what it must be.
function wholeNumber(text) {
  const trimmed = text.trim();
  return trimmed !== "" && Number.isInteger(Number(trimmed)) ? Number(trimmed) : trimmed;
}

// Answers the settings document, and the FAQ rows in the order they were sent (the API names a
// problem by its index: faqs[2].answer).
function assistantDocument(form) {
  const field = (name) => form.elements[name];
  const sentRows = [];
  const faqs = [];
  form.querySelectorAll("#faq-rows .faq-row").forEach((row) => {
    const value = (part) => row.querySelector(`[data-faq=${part}]`).value;
    if (!value("question").trim() && !value("answer").trim() && !value("keywords").trim()) return;
    sentRows.push(row);
    faqs.push({ question: value("question"), answer: value("answer"), keywords: commaList(value("keywords")) });
  });
  const baseUrl = field("provider_base_url").value.trim();
  const model = field("provider_model").value.trim();
  const apiKey = field("provider_api_key").value.trim();
  const removed = field("remove_provider")?.checked;
  let provider = null;
  if (!removed && (baseUrl || model || apiKey)) {
    provider = { base_url: baseUrl, model };
    // Left out, the stored key is kept.
    if (apiKey) provider.api_key = apiKey;
  }
  let hours = null;
  if (field("hours_limited").checked) {
    const days = {};
    form.querySelectorAll("[data-day]").forEach((input) => {
      const ranges = commaList(input.value).map((range) => {
        const [from, to = ""] = range.split(/\s*[-–]\s*/);
        return [from.trim(), to.trim()];
      });
      if (ranges.length) days[input.dataset.day] = ranges;
    });
    hours = { utc_offset: field("hours_utc_offset").value.trim(), days };
  }
  const settings = {
    auto_reply: field("auto_reply").checked,
    system_prompt: field("system_prompt").value,
    business_facts: field("business_facts").value,
    faqs,
    reply_language: field("reply_language").value || null,
    provider,
    history_length: wholeNumber(field("history_length").value),
    hours,
    handoff_phrases: commaList(field("handoff_phrases").value),
    pause_minutes: wholeNumber(field("pause_minutes").value),
    model_timeout_seconds: wholeNumber(field("model_timeout_seconds").value),
  };
  return { settings, sentRows };
}

function clearFieldErrors(form) {
  form.querySelectorAll("[data-error-for]").forEach((note) => {
    note.hidden = true;
    note.textContent = "";
  });
  form.querySelectorAll("[aria-invalid]").forEach((input) => input.removeAttribute("aria-invalid"));
}

// Puts each of the API's field problems under its field; answers the ones with no place on the page.
function showFieldErrors(form, fields, sentRows) {
  const unplaced = [];
  for (const [name, reason] of Object.entries(fields || {})) {
    const faq = /^faqs\[(\d+)\]\.(\w+)$/.exec(name);
    const scope = faq ? sentRows[Number(faq[1])] : form;
    const note = scope && scope.querySelector(`[data-error-for="${faq ? `faq.${faq[2]}` : name}"]`);
    if (!note) {
      unplaced.push(`${name}: ${reason}`);
      continue;
    }
    note.textContent = reason;
    note.hidden = false;
    const input = note.previousElementSibling?.querySelector("input, textarea, select");
    if (input) input.setAttribute("aria-invalid", "true");
  }
  return unplaced;
}

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (form.id !== "assistant-form") return;
  event.preventDefault();
  const error = document.getElementById("assistant-error");
  const saved = document.getElementById("assistant-saved");
  const button = document.getElementById("assistant-save");
  error.hidden = true;
  saved.hidden = true;
  clearFieldErrors(form);
  const { settings, sentRows } = assistantDocument(form);
  const id = form.dataset.connectionId;
  await busy(button, async () => {
    try {
      await api("PUT", `/api/v1/connections/${encodeURIComponent(id)}/assistant`, settings);
    } catch (failure) {
      const details = failure.body && failure.body.error && failure.body.error.details;
      const unplaced = showFieldErrors(form, details && details.fields, sentRows);
      error.textContent = `Not saved: ${failure.message}`;
      if (unplaced.length) error.textContent += ` (${unplaced.join("; ")})`;
      error.hidden = false;
      form.querySelector('[aria-invalid="true"]')?.focus();
      return;
    }
    await showStoredAssistant(id);
  });
});

// After a save the page shows what is stored (the API tidies keywords, URLs and the key's note).
async function showStoredAssistant(id) {
  const url = `/app/assistant?connection=${encodeURIComponent(id)}`;
  try {
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`The server answered ${response.status}.`);
    const next = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const part of ["assistant-numbers", "assistant-form"]) {
      const fresh = next.getElementById(part);
      if (fresh) document.getElementById(part)?.replaceWith(fresh);
    }
  } catch (failure) {
    // Saved all the same; the form keeps what was typed.
    console.warn("reloading the settings failed", failure);
  }
  const saved = document.getElementById("assistant-saved");
  if (saved) saved.hidden = false;
  toast("Saved");
}

// ---- Contact page: enroll the contact in a sequence, or stop an enrollment.
document.addEventListener("submit", async (event) => {
  const form = event.target.closest("#enroll-form");
  if (!form) return;
  event.preventDefault();
  const sequenceId = form.querySelector("select[name=sequence_id]").value;
  await busy(form.querySelector("button[type=submit]"), async () => {
    try {
      await api("POST", `/api/v1/sequences/${sequenceId}/enrollments`, { contact_id: form.dataset.contactId });
      toast("Enrolled");
      location.reload();
    } catch (failure) {
      toast(failure.message, "error");
    }
  });
});

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-stop-enrollment]");
  if (!button) return;
  await busy(button, async () => {
    try {
      await api("POST", `/api/v1/sequences/${button.dataset.sequenceId}/enrollments/${button.dataset.stopEnrollment}/stop`, {});
      toast("Stopped");
      location.reload();
    } catch (failure) {
      toast(failure.message, "error");
    }
  });
});
