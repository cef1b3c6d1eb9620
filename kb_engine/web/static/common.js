// What every page of the console shares: the API key and role, calls to the JSON API with errors
// in Russian, answer text with footnotes, the citation dialog and the feedback controls.
// Text from the API is only ever put into the page as text nodes, never as HTML.

const KEY_STORAGE = "kb-api-key";
const RANK = { bot: 0, agent: 1, admin: 2 };
export const ROLE_LABEL = { bot: "bot", agent: "agent", admin: "admin" };

// --- DOM ------------------------------------------------------------------------------------------

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

export function icon(name) {
  return document.getElementById(`icon-${name}`).content.firstElementChild.cloneNode(true);
}

const TOPICS = {
  account: "аккаунт",
  delivery: "доставка",
  loyalty: "бонусы",
  orders: "заказы",
  payment: "оплата",
  returns: "возвраты",
  warranty: "гарантия",
  general: "общее",
  "seller-catalog": "каталог продавца",
  "seller-finance": "финансы продавца",
  "seller-logistics": "логистика продавца",
  "seller-marketing": "продвижение продавца",
  "seller-onboarding": "подключение продавца",
  "seller-quality": "качество продавца",
  "seller-support": "поддержка продавцов",
};
export const topicName = (category) => TOPICS[category] || category;

const numbers = new Intl.NumberFormat("ru-RU", { maximumFractionDigits: 3 });
export const formatNumber = (value) => (value === null || value === undefined ? "—" : numbers.format(value));

// --- the key and the caller's role -----------------------------------------------------------------

export const session = { key: sessionStorage.getItem(KEY_STORAGE) || "", role: null, keys: false };
export const pageRole = document.body.dataset.role; // what all of the page's actions need
const leastRole = document.body.dataset.leastRole || pageRole; // what some of them need
export const hasRole = (need) => !session.keys || (session.role !== null && RANK[session.role] >= RANK[need]);

export class ApiError extends Error {
  constructor(status, message, { type = null, requestId = null, retryAfter = null } = {}) {
    super(message);
    this.status = status;
    this.type = type;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }
}

// Links from the index open only as web pages: a document's url is data, not code.
export const safeUrl = (url) => (typeof url === "string" && /^https?:\/\//i.test(url) ? url : null);

function headers(extra = {}) {
  const h = { ...extra };
  if (session.key) h.Authorization = `Bearer ${session.key}`;
  return h;
}

// fetch with the key; a non-2xx answer becomes an ApiError carrying the API's own message
export async function request(path, { method = "GET", body, accept = "application/json" } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: headers(body === undefined ? { Accept: accept } : { "Content-Type": "application/json", Accept: accept }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "нет связи с сервером", { type: "network" });
  }
  if (!response.ok) {
    let error = {};
    try {
      error = (await response.json()).error || {};
    } catch {
      /* not JSON: a proxy's page */
    }
    throw new ApiError(response.status, error.message || response.statusText, {
      type: error.type,
      requestId: error.request_id,
      retryAfter: response.headers.get("Retry-After"),
    });
  }
  return response;
}

export async function api(path, options) {
  return (await request(path, options)).json();
}

// What the user should read about a failure, in Russian, with the API's message where it helps.
export function explain(error) {
  if (!(error instanceof ApiError)) return `Что-то пошло не так: ${error.message || error}`;
  const forbidden = /has role '(\w+)'; this endpoint needs '(\w+)'/.exec(error.message);
  switch (true) {
    case error.status === 0:
      return "Нет связи с сервером. Проверьте, что kb serve запущен, и повторите.";
    case error.status === 401:
      return "Нужен ключ API: этот ключ не принят. Нажмите «Сменить ключ» и введите действующий.";
    case error.status === 403 && forbidden !== null:
      return `Недостаточно прав: у ключа роль «${forbidden[1]}», а здесь нужна «${forbidden[2]}» или выше. Войдите с другим ключом или попросите его у администратора.`;
    case error.status === 403:
      return `Недостаточно прав: ${error.message}`;
    case error.status === 404:
      return `Не найдено: ${error.message}`;
    case error.status === 413 || error.status === 422:
      return `Запрос не принят: ${error.message}`;
    case error.status === 429:
      return `Слишком много запросов с этим ключом: повторите через ${error.retryAfter || "несколько"} с.`;
    case error.status === 503:
      return "Сервис ещё запускается (загружает индекс и модель). Повторите через несколько секунд.";
    default:
      return `Ошибка сервера${error.requestId ? ` (код запроса ${error.requestId})` : ""}. Повторите позже.`;
  }
}

export function notice(message, kind = "warning") {
  const box = document.getElementById("notice");
  box.replaceChildren();
  if (!message) {
    box.hidden = true;
    return;
  }
  box.className = `notice ${kind}`;
  box.append(el("span", { text: message }));
  if (session.keys) box.append(" ", el("button", { type: "button", class: "link", text: "Сменить ключ", onclick: () => askKey() }));
  box.hidden = false;
}

function showCaller() {
  const box = document.getElementById("keybox");
  box.hidden = !session.keys;
  document.getElementById("key-role").textContent = session.role ? `Роль ключа: ${ROLE_LABEL[session.role]}` : "Ключ не введён";
  document.getElementById("key-change").textContent = session.role ? "Сменить ключ" : "Ввести ключ";
  if (session.keys && session.role && !hasRole(leastRole)) {
    notice(
      `У ключа роль «${session.role}», а действиям этой страницы нужна «${leastRole}» или выше: ` +
        "они будут отклонены. Войдите с другим ключом.",
    );
  } else if (session.keys && session.role && !hasRole(pageRole)) {
    notice(`У ключа роль «${session.role}»: часть этой страницы доступна только с ролью «${pageRole}».`, "info");
  } else if (session.role || !session.keys) {
    notice(null);
  }
}

let keyWaiters = [];

// Ask for a key until one is accepted (or the dialog is closed); resolves to the caller.
export function askKey(message) {
  const dialog = document.getElementById("key-dialog");
  const error = document.getElementById("key-error");
  for (const span of dialog.querySelectorAll(".need-role")) span.textContent = pageRole;
  error.hidden = !message;
  error.textContent = message || "";
  document.getElementById("key-input").value = "";
  if (!dialog.open) dialog.showModal();
  return new Promise((resolve) => keyWaiters.push(resolve));
}

function settle(caller) {
  const waiters = keyWaiters;
  keyWaiters = [];
  for (const resolve of waiters) resolve(caller);
}

function wireKeyDialog() {
  const dialog = document.getElementById("key-dialog");
  const form = document.getElementById("key-form");
  const error = document.getElementById("key-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const previous = session.key;
    const switching = session.role !== null; // a key was in use: the page reloads what it shows
    session.key = document.getElementById("key-input").value.trim();
    try {
      const caller = await api("/v1/whoami");
      sessionStorage.setItem(KEY_STORAGE, session.key);
      Object.assign(session, { role: caller.role, keys: caller.keys });
      dialog.close();
      showCaller();
      settle(caller);
      if (switching) window.dispatchEvent(new CustomEvent("kb:key", { detail: caller }));
    } catch (failure) {
      session.key = previous;
      error.textContent = failure.status === 401 ? "Ключ не принят: проверьте его и введите снова." : explain(failure);
      error.hidden = false;
      document.getElementById("key-input").select();
    }
  });
  dialog.addEventListener("close", () => {
    if (keyWaiters.length) {
      showCaller();
      if (!session.role) notice("Без ключа API страница не может обращаться к сервису.");
      settle(null);
    }
  });
  document.getElementById("key-change").addEventListener("click", () => askKey());
}

// Resolves once the page may call the API: the server has no keys, or a key was accepted.
export async function ready() {
  wireKeyDialog();
  try {
    const caller = await api("/v1/whoami");
    Object.assign(session, { role: caller.role, keys: caller.keys });
    showCaller();
    return caller;
  } catch (failure) {
    if (failure.status !== 401) {
      notice(explain(failure), "error");
      return null;
    }
    session.keys = true;
    session.role = null;
    showCaller();
    sessionStorage.removeItem(KEY_STORAGE);
    return askKey(session.key ? "Сохранённый ключ не принят: введите ключ заново." : "");
  }
}

// --- answer text ----------------------------------------------------------------------------------

const MARKER = /(\[\d+\]|\*\*[^*\n]+\*\*|https?:\/\/[^\s)»"]+)/;

function inline(parent, text, cite) {
  text = text.replace(/ (\[\d+\])/g, "\u00a0$1"); // a marker never starts a line on its own
  for (const part of text.split(MARKER)) {
    if (!part) continue;
    if (/^\[\d+\]$/.test(part)) parent.append(footnote(Number(part.slice(1, -1)), cite));
    else if (part.startsWith("**") && part.endsWith("**")) parent.append(el("strong", { text: part.slice(2, -2) }));
    else if (/^https?:\/\//.test(part))
      parent.append(el("a", { href: part, target: "_blank", rel: "noopener noreferrer", text: part }));
    else parent.append(part);
  }
}

function footnote(n, cite) {
  const citation = cite && cite.citations.find((c) => c.n === n);
  if (!citation) return el("sup", { class: "fn pending", text: `[${n}]` }); // still streaming
  return el(
    "sup",
    {},
    el("button", {
      type: "button",
      class: "fn",
      "aria-label": `Источник ${n}: ${citation.title}`,
      "aria-haspopup": "dialog",
      "data-n": n,
      text: `[${n}]`,
      onclick: () => openCitation(citation),
    }),
  );
}

// The answer's light markdown (paragraphs, numbered and bulleted lists, table rows, bold, links) with
// its [n] markers as footnote buttons once the citations are known (`cite`: {citations}).
export function renderText(root, text, cite = null) {
  root.replaceChildren();
  let block = null;
  for (const raw of text.split("\n")) {
    const line = raw.trimEnd();
    let m;
    if (!line.trim()) {
      block = null;
    } else if ((m = /^\s*(\d+)[.)]\s+(.*)$/.exec(line))) {
      if (!block || block.tagName !== "OL") {
        block = el("ol", { start: m[1] === "1" ? null : m[1] });
        root.append(block);
      }
      const item = el("li");
      inline(item, m[2], cite);
      block.append(item);
    } else if ((m = /^\s*[-•*]\s+(.*)$/.exec(line))) {
      if (!block || block.tagName !== "UL") {
        block = el("ul");
        root.append(block);
      }
      const item = el("li");
      inline(item, m[1], cite);
      block.append(item);
    } else if (line.includes(" | ") || line.trimStart().startsWith("|")) {
      // a table row, as the drafter quotes one: "cell | cell | cell [n]" (outer pipes optional)
      if (/^[\s|:-]+$/.test(line)) continue; // a header separator
      if (!block || block.tagName !== "TABLE") {
        block = el("table", { class: "md" });
        root.append(el("div", { class: "table-wrap" }, block));
      }
      const row = el("tr");
      for (const cell of line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|")) {
        const td = el("td");
        inline(td, cell.trim(), cite);
        row.append(td);
      }
      block.append(row);
    } else {
      if (!block || block.tagName !== "P") {
        block = el("p");
        root.append(block);
      } else {
        block.append(el("br"));
      }
      inline(block, line, cite);
    }
  }
}

export const stripMarkers = (text) => text.replace(/\s?\[\d+\]/g, "");

// The citations as a list under an answer: each opens the same dialog as its footnote.
export function sourceList(citations) {
  const list = el("ol", { class: "sources", "aria-label": "Источники" });
  for (const c of citations) {
    const where = c.section && c.section.length ? ` — ${c.section.join(" › ")}` : "";
    list.append(
      el(
        "li",
        {},
        el(
          "button",
          { type: "button", class: "source", "aria-haspopup": "dialog", onclick: () => openCitation(c) },
          el("span", { class: "source-n", text: String(c.n) }),
          el("span", { class: "source-text" }, el("span", { class: "source-title", text: c.title }), el("span", { class: "source-where", text: where })),
        ),
      ),
    );
  }
  return list;
}

// The footnotes as plain text, for a reply an agent copies into a ticket.
export function plainFootnotes(citations) {
  const seen = new Set();
  const lines = [];
  for (const c of citations) {
    if (seen.has(c.n)) continue;
    seen.add(c.n);
    lines.push(`[${c.n}] ${c.title}${c.url ? ` — ${c.url}` : ""}`);
  }
  return lines.length ? `\n\n${lines.join("\n")}` : "";
}

// --- the citation dialog --------------------------------------------------------------------------

export function openCitation(citation) {
  const dialog = document.getElementById("cite-dialog");
  document.getElementById("cite-n").textContent = `Источник ${citation.n}`;
  document.getElementById("cite-title").textContent = citation.title;
  const section = document.getElementById("cite-section");
  section.textContent = citation.section && citation.section.length ? `Раздел: ${citation.section.join(" › ")}` : "";
  section.hidden = !section.textContent;
  renderText(document.getElementById("cite-quote"), citation.quote); // the passage's lists and tables
  const link = document.getElementById("cite-link");
  const url = safeUrl(citation.url);
  link.hidden = !url;
  if (url) link.href = url;
  document.getElementById("cite-source").textContent = citation.source;
  dialog.showModal();
  (url ? link : document.getElementById("cite-close")).focus();
}

function wireCitationDialog() {
  const dialog = document.getElementById("cite-dialog");
  document.getElementById("cite-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close(); // a click on the backdrop
  });
}
wireCitationDialog();

// --- feedback ---------------------------------------------------------------------------------------

const REASONS = ["Не ответил на мой вопрос", "В ответе ошибка", "Непонятно написано", "Информация устарела"];
let feedbackForms = 0;

// 👍 sends at once; 👎 asks what was wrong (a reason and an optional comment) before it sends.
export function feedbackControls(answerId, { prompt = "Ответ помог?", onSent = null } = {}) {
  const id = `fb${++feedbackForms}`;
  const box = el("div", { class: "feedback" });
  const status = el("p", { class: "fb-status", role: "status" });
  const up = el("button", { type: "button", class: "icon-btn", "aria-label": "Да, помог", title: "Помог" }, icon("up"));
  const down = el("button", { type: "button", class: "icon-btn", "aria-label": "Нет, не помог", title: "Не помог", "aria-expanded": "false", "aria-controls": `${id}-form` }, icon("down"));
  const bar = el("div", { class: "fb-bar", role: "group", "aria-label": "Оценка ответа" }, el("span", { class: "muted small", text: prompt }), up, down);

  const choices = REASONS.map((reason) =>
    el("label", { class: "pill" }, el("input", { type: "radio", name: `${id}-reason`, value: reason }), el("span", { text: reason })),
  );
  const comment = el("textarea", { id: `${id}-comment`, rows: 2, maxlength: 1500, placeholder: "Что было не так? (необязательно)" });
  const form = el(
    "form",
    { class: "fb-form", id: `${id}-form`, hidden: true },
    el("fieldset", {}, el("legend", { text: "Что не так с ответом?" }), el("div", { class: "pills" }, ...choices)),
    el("label", { for: `${id}-comment`, class: "sr", text: "Комментарий" }),
    comment,
    el(
      "div",
      { class: "row end" },
      el("button", { type: "button", class: "ghost", text: "Отмена", onclick: () => closeForm() }),
      el("button", { type: "submit", class: "primary", text: "Отправить" }),
    ),
  );

  function closeForm() {
    form.hidden = true;
    down.setAttribute("aria-expanded", "false");
    down.focus();
  }

  async function send(rating, reason) {
    up.disabled = down.disabled = true;
    try {
      await api("/v1/feedback", { method: "POST", body: { answer_id: answerId, rating, reason } });
      form.remove();
      const thanks = rating === "up" ? "Спасибо за оценку!" : "Спасибо! Передали команде справки.";
      const done = el("span", { class: "muted small", tabindex: "-1", text: thanks });
      bar.replaceChildren(done);
      done.focus(); // the button that had focus is gone
      box.dataset.sent = rating;
      if (onSent) onSent(rating);
    } catch (failure) {
      up.disabled = down.disabled = false;
      status.textContent = explain(failure);
      status.classList.add("error");
    }
  }

  up.addEventListener("click", () => send("up", null));
  down.addEventListener("click", () => {
    form.hidden = !form.hidden;
    down.setAttribute("aria-expanded", String(!form.hidden));
    if (!form.hidden) form.querySelector("input").focus();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = form.querySelector("input:checked");
    const extra = comment.value.trim();
    send("down", [chosen ? chosen.value : null, extra].filter(Boolean).join(": ") || null);
  });
  box.append(bar, form, status);
  return box;
}

// --- links that need the key: open the fetched page in a new tab -------------------------------------

export function keyedLink(anchor) {
  anchor.addEventListener("click", async (event) => {
    if (!session.key) return; // no keys: an ordinary link
    event.preventDefault();
    const tab = window.open("", "_blank");
    try {
      const html = await (await request(anchor.getAttribute("href"), { accept: "text/html" })).text();
      const url = URL.createObjectURL(new Blob([html], { type: "text/html" }));
      if (tab) tab.location = url;
      else window.location = url;
    } catch (failure) {
      if (tab) tab.close();
      notice(explain(failure), "error");
    }
  });
}
