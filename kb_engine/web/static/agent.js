// Agent assist: a ticket's conversation in, reply drafts (POST /v1/suggest) next to the articles they
// cite. "Mark as sent" records feedback on the answer: rating "up" either way (the agent used the
// draft); when the text was changed, the sent text goes along as `edited_reply`, which the content
// team reviews (`kb eval add-from-feedback`).
import {
  api,
  el,
  explain,
  formatNumber,
  openCitation,
  plainFootnotes,
  ready,
  renderText,
  safeUrl,
  topicName,
} from "./common.js";

const EXAMPLE = [
  "Клиент: Здравствуйте, заказ пришёл разбитый",
  "Оператор: Здравствуйте! Уточните, вы уже забрали заказ?",
  "Клиент: Да, дома открыл коробку, товар повреждён. Что делать?",
].join("\n");
const CUSTOMER = /^(клиент|покупатель|продавец|пользователь|customer|client|user)\s*:\s*/i;
const AGENT = /^(оператор|агент|поддержка|специалист|agent|operator|support)\s*:\s*/i;
const STAMP = /^\[?\d{1,2}:\d{2}(:\d{2})?\]?\s*/; // "[12:03] Клиент: …" from a helpdesk export
const STYLE = { short: "Короткий ответ", detailed: "Подробный ответ" };

const form = document.getElementById("ticket");
const conversation = document.getElementById("conversation");
const audience = document.getElementById("agent-audience");
const parsed = document.getElementById("parsed");
const status = document.getElementById("agent-status");
const assist = document.getElementById("assist");
const drafts = document.getElementById("drafts");
const articles = document.getElementById("articles");
const meta = document.getElementById("assist-meta");
const submit = document.getElementById("suggest-btn");

// Lines marked "Клиент:" / "Оператор:" start turns; unmarked lines continue the turn before them.
export function parseConversation(text) {
  const turns = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim().replace(STAMP, "");
    if (!line) continue;
    const role = CUSTOMER.test(line) ? "user" : AGENT.test(line) ? "agent" : null;
    const content = line.replace(role === "user" ? CUSTOMER : AGENT, "").trim();
    if (role) turns.push({ role, content });
    else if (turns.length) turns[turns.length - 1].content += `\n${line}`;
    else turns.push({ role: "user", content: line });
  }
  return turns.filter((t) => t.content);
}

function describe() {
  const turns = parseConversation(conversation.value);
  const customer = turns.filter((t) => t.role === "user").length;
  parsed.textContent = turns.length ? `Реплик: ${turns.length} (клиента — ${customer}, оператора — ${turns.length - customer})` : "";
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // no Clipboard API outside a secure context (plain http beyond localhost): the old way
    const area = el("textarea", { class: "offscreen", "aria-hidden": "true" });
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

let sentOne = false;

function draftCard(result, draft, index) {
  const id = `draft-${index}`;
  const reply = draft.text + plainFootnotes(draft.citations); // what the customer would receive
  const view = el("div", { class: "text" });
  renderText(view, draft.text, { citations: draft.citations });
  const editor = el("textarea", { id: `${id}-edit`, rows: 10, class: "editor" });
  editor.value = reply;
  const editorBox = el("div", { class: "edit-box", hidden: true }, el("label", { for: `${id}-edit`, class: "label", text: "Текст ответа" }), editor);
  const note = el("p", { class: "small muted draft-status", role: "status", tabindex: "-1" });

  const copyButton = el("button", { type: "button", text: "Копировать" });
  const editButton = el("button", { type: "button", text: "Изменить", "aria-pressed": "false", "aria-controls": `${id}-edit` });
  const sendButton = el("button", { type: "button", class: "primary send-draft", text: "Отметить отправленным" });

  copyButton.addEventListener("click", async () => {
    note.textContent = (await copy(editor.value)) ? "Скопировано — вставьте в ответ клиенту." : "Не удалось скопировать: выделите текст вручную.";
  });
  editButton.addEventListener("click", () => {
    const editing = editorBox.hidden;
    editorBox.hidden = !editing;
    view.hidden = editing;
    editButton.setAttribute("aria-pressed", String(editing));
    editButton.textContent = editing ? "Просмотр" : "Изменить";
    if (editing) editor.focus();
  });
  sendButton.addEventListener("click", async () => {
    const text = editor.value.trim();
    const edited = text !== reply.trim();
    sendButton.disabled = true;
    try {
      await api("/v1/feedback", {
        method: "POST",
        body: {
          answer_id: result.answer_id,
          rating: "up",
          reason: edited ? "отправлен с правками" : "отправлен без правок",
          edited_reply: edited ? text : null,
        },
      });
      sentOne = true;
      card.classList.add("sent");
      editor.readOnly = true;
      for (const button of document.querySelectorAll(".send-draft")) button.disabled = true;
      note.textContent = edited
        ? "Отмечено как отправленное с правками: правка сохранена для команды справки."
        : "Отмечено как отправленное без правок.";
      note.focus(); // the button that had focus is disabled
    } catch (failure) {
      sendButton.disabled = sentOne;
      note.textContent = explain(failure);
      note.classList.add("error");
    }
  });

  const titleId = `${id}-title`;
  const card = el(
    "article",
    { class: "card draft", "aria-labelledby": titleId, "data-style": draft.style },
    el("h3", { id: titleId, text: STYLE[draft.style] || draft.style }),
    view,
    editorBox,
    el("div", { class: "row wrap actions" }, copyButton, editButton, sendButton),
    note,
  );
  return card;
}

function articleItem(article, result) {
  const cited = [];
  for (const draft of result.drafts) {
    for (const c of draft.citations) if (c.doc_id === article.doc_id && !cited.some((x) => x.quote === c.quote)) cited.push(c);
  }
  const title = safeUrl(article.url)
    ? el("a", { href: safeUrl(article.url), target: "_blank", rel: "noopener noreferrer", text: article.title })
    : el("span", { text: article.title });
  const quotes = cited.map((c) =>
    el("button", { type: "button", class: "chip small", "aria-haspopup": "dialog", text: `Цитата: ${c.section.join(" › ") || c.title}`, onclick: () => openCitation(c) }),
  );
  return el("li", {}, el("p", { class: "article-title" }, title), el("p", { class: "mono small muted", text: article.source }), ...quotes);
}

function render(result) {
  sentOne = false;
  assist.hidden = false;
  assist.dataset.answerId = result.answer_id;
  assist.dataset.action = result.action;
  const topic = result.topic ? ` · тема: ${topicName(result.topic)}` : "";
  meta.textContent = `уверенность ${formatNumber(result.confidence)}${topic}`;
  drafts.replaceChildren();
  if (!result.drafts.length) {
    const why =
      result.action === "clarify"
        ? "Вопрос клиента слишком общий: уточните у него, что именно случилось, и запросите черновики снова."
        : "В справке нет точного ответа на последний вопрос клиента. Посмотрите статьи рядом или ответьте сами.";
    drafts.append(el("div", { class: "card empty" }, el("p", { text: `Черновиков нет. ${why}` })));
  }
  result.drafts.forEach((draft, i) => drafts.append(draftCard(result, draft, i)));
  articles.replaceChildren(...result.articles.map((a) => articleItem(a, result)));
  if (!result.articles.length) articles.append(el("li", { class: "muted", text: "Подходящих статей не нашлось." }));
}

async function suggest() {
  const turns = parseConversation(conversation.value);
  if (!turns.some((t) => t.role === "user")) {
    status.textContent = "Вставьте переписку: нужна хотя бы одна реплика клиента.";
    status.className = "status error";
    conversation.focus();
    return;
  }
  submit.disabled = true;
  status.className = "status";
  status.textContent = "Подбираем ответ…";
  try {
    const body = { conversation: turns };
    if (audience.value) body.audience = audience.value;
    const result = await api("/v1/suggest", { method: "POST", body });
    status.textContent = result.drafts.length ? `Готово: черновиков — ${result.drafts.length}.` : "Готово.";
    render(result);
  } catch (failure) {
    status.textContent = explain(failure);
    status.className = "status error";
  } finally {
    submit.disabled = false;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  suggest();
});
conversation.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    suggest();
  }
});
conversation.addEventListener("input", describe);
document.getElementById("example").addEventListener("click", () => {
  conversation.value = EXAMPLE;
  describe();
  conversation.focus();
});

describe();
ready().then(() => conversation.focus());
