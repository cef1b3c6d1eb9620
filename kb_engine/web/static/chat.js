// Chat: what the customer sees. Answers stream in from POST /v1/answer (server-sent events, read with
// fetch), follow-ups carry the conversation as `history`, and the conversation survives a reload of
// the tab (sessionStorage).
import { el, explain, feedbackControls, ready, renderText, request, sourceList, stripMarkers } from "./common.js";

const STORE = "kb-chat";
const HISTORY_TURNS = 20; // the API takes up to 50; the last few are what a follow-up refers to
const CLARIFY_HINT = "Уточните: например, «не приходит код для входа»";
const PLACEHOLDER = "Напишите вопрос…";

const log = document.getElementById("log");
const form = document.getElementById("ask");
const input = document.getElementById("question");
const sendButton = document.getElementById("send");
const welcome = document.getElementById("welcome");

let state = load();
let busy = false;

function load() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORE));
    if (saved && Array.isArray(saved.turns)) return saved;
  } catch {
    /* a damaged entry: start over */
  }
  return { audience: "buyer", turns: [] };
}

const save = () => sessionStorage.setItem(STORE, JSON.stringify(state));

// The conversation so far, as /v1/answer takes it: answered turns only, markers removed.
function history() {
  const turns = [];
  for (const turn of state.turns) {
    if (turn.role === "user") turns.push({ role: "user", content: turn.text });
    else if (turn.answer) turns.push({ role: "assistant", content: stripMarkers(turn.answer.answer) });
  }
  return turns.slice(-HISTORY_TURNS);
}

// --- server-sent events over fetch ------------------------------------------------------------------

async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

// --- messages -------------------------------------------------------------------------------------

function userMessage(text) {
  return el("div", { class: "msg user" }, el("p", { class: "sr", text: "Вы:" }), el("div", { class: "bubble", text }));
}

function botMessage() {
  const text = el("div", { class: "text" }, el("span", { class: "typing", "aria-label": "Печатает…" }, el("i"), el("i"), el("i")));
  const bubble = el("div", { class: "bubble" }, text);
  const root = el("div", { class: "msg bot", "aria-busy": "true" }, el("p", { class: "sr", text: "Поддержка:" }), bubble);
  return { root, bubble, text };
}

function handoffWidget(turn) {
  const box = el("div", { class: "handoff-box" });
  const done = () =>
    box.replaceChildren(
      el("p", { class: "handoff-done", role: "status", text: "Передали диалог специалисту: он увидит всю переписку и ответит здесь." }),
      el("p", { class: "muted small", text: "Демо: здесь виджет сообщает о передаче событием kb:handoff — подключите его к очереди операторов." }),
    );
  if (turn.handoff) {
    done();
    return box;
  }
  const button = el("button", { type: "button", class: "primary", text: "Позвать специалиста" });
  button.addEventListener("click", () => {
    window.dispatchEvent(new CustomEvent("kb:handoff", { detail: { answer_id: turn.answer.id, history: history() } }));
    turn.handoff = true;
    save();
    done();
  });
  box.append(el("p", { class: "small", text: "На такой вопрос лучше ответит человек." }), button);
  return box;
}

function finish(view, turn) {
  const answer = turn.answer;
  view.root.dataset.answerId = answer.id;
  view.root.dataset.action = answer.action;
  view.root.classList.add(answer.action);
  renderText(view.text, answer.answer, { citations: answer.citations });
  if (answer.action === "answer") {
    if (answer.citations.length) view.bubble.append(sourceList(answer.citations));
    const sent = (rating) => {
      turn.feedback = rating; // sent once: a reload shows the thanks, not the buttons again
      save();
    };
    view.root.append(
      turn.feedback
        ? el("p", { class: "muted small feedback", text: "Спасибо за оценку!" })
        : feedbackControls(answer.id, { onSent: sent }),
    );
  } else if (answer.action === "handoff") {
    view.bubble.append(handoffWidget(turn));
  } else {
    view.bubble.prepend(el("p", { class: "tag", text: "Уточняющий вопрос" }));
  }
  view.root.setAttribute("aria-busy", "false");
}

function failed(view, failure) {
  view.root.classList.add("failed");
  view.text.replaceChildren(el("p", { class: "error", text: explain(failure) }));
  view.root.setAttribute("aria-busy", "false");
}

const scrollDown = () => window.scrollTo({ top: document.body.scrollHeight });

// --- asking ---------------------------------------------------------------------------------------

async function ask(question) {
  question = question.trim();
  if (busy || !question) return;
  busy = true;
  sendButton.disabled = true;
  welcome.classList.add("started");
  input.value = "";
  grow();
  const past = history();
  const asked = { role: "user", text: question };
  state.turns.push(asked);
  save();
  log.append(userMessage(question));
  const view = botMessage();
  log.append(view.root);
  scrollDown();
  let text = "";
  let deltas = 0;
  try {
    const response = await request("/v1/answer", {
      method: "POST",
      accept: "text/event-stream",
      body: { question, audience: state.audience, history: past, channel: "chat", stream: true },
    });
    let finished = false;
    for await (const { event, data } of events(response)) {
      if (event === "delta" || event === "replace") {
        text = event === "delta" ? text + data.text : data.text;
        view.root.dataset.deltas = String((deltas += 1));
        renderText(view.text, text);
      } else if (event === "citations") {
        renderText(view.text, text, { citations: data });
      } else if (event === "done") {
        const turn = { role: "assistant", text: data.answer, answer: data };
        state.turns.push(turn);
        save();
        finish(view, turn);
        finished = true;
        input.placeholder = data.action === "clarify" ? CLARIFY_HINT : PLACEHOLDER;
      } else if (event === "error") {
        throw new Error(data.message);
      }
      scrollDown();
    }
    if (!finished) throw new Error("ответ оборвался: соединение закрылось раньше времени");
  } catch (failure) {
    state.turns.splice(state.turns.indexOf(asked), 1); // not part of the history of the next question
    save();
    failed(view, failure);
  } finally {
    busy = false;
    sendButton.disabled = false;
    input.focus();
    scrollDown();
  }
}

function grow() {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 180)}px`;
}

function showAudience() {
  for (const radio of document.querySelectorAll('input[name="audience"]')) radio.checked = radio.value === state.audience;
  for (const list of document.querySelectorAll(".starters")) list.hidden = list.dataset.audience !== state.audience;
}

function replay() {
  for (const turn of state.turns) {
    if (turn.role === "user") {
      log.append(userMessage(turn.text));
    } else if (turn.answer) {
      const view = botMessage();
      log.append(view.root);
      finish(view, turn);
    }
  }
  welcome.classList.toggle("started", state.turns.length > 0);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  ask(input.value);
});
input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ask(input.value);
  }
});
input.addEventListener("input", grow);
for (const chip of document.querySelectorAll(".starters .chip")) chip.addEventListener("click", () => ask(chip.textContent));
for (const radio of document.querySelectorAll('input[name="audience"]')) {
  radio.addEventListener("change", () => {
    state.audience = radio.value;
    save();
    showAudience();
  });
}
document.getElementById("new-chat").addEventListener("click", () => {
  state = { audience: state.audience, turns: [] };
  save();
  for (const node of [...log.children]) if (node !== welcome) node.remove();
  welcome.classList.remove("started");
  input.placeholder = PLACEHOLDER;
  input.focus();
});

showAudience();
replay();
ready().then(() => input.focus());
