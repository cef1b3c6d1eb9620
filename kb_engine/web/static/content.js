// Content: the latest eval run (GET /v1/admin/eval/latest), the content gaps of the support analytics
// (GET /v1/admin/stats?format=json, when the server has them) and a search over the index
// (POST /v1/search) that shows each passage with its metadata.
import { api, el, explain, formatNumber, keyedLink, ready, safeUrl, topicName } from "./common.js";

const METRICS = {
  "hit@5": "Нужная статья в первых пяти (hit@5)",
  "mrr@10": "Место нужной статьи (MRR@10)",
  citation_validity: "Ссылки допустимы",
  citation_support: "Ссылки подтверждают текст",
  key_fact_recall: "Ключевые факты в ответе",
  correct_handoff: "Передано человеку, когда ответа нет",
  false_handoff: "Передано человеку зря",
  audience_leaks: "Утечки между аудиториями",
  language_ok: "Ответ на языке вопроса",
};
const SPLITS = { dev: "dev", heldout: "отложенные" };
const PEERS = {
  bm25: "только BM25 (леммы)",
  dense: "только векторы (e5)",
  "llama-index": "LlamaIndex по умолчанию",
  "hybrid (ours)": "гибридный (наш)",
};
const PEER_METRICS = ["hit@1", "hit@5", "mrr@10", "ndcg@10"];
const AUDIENCE = { buyer: "покупатели", seller: "продавцы", all: "все" };
const OP = { ">=": "≥", "<=": "≤", "==": "=" };
const plural = new Intl.PluralRules("ru-RU");
const QUESTIONS = { one: "вопрос", few: "вопроса", many: "вопросов", other: "вопроса" };
const questions = (n) => `${formatNumber(n)} ${QUESTIONS[plural.select(n)]}`;

const dateTime = new Intl.DateTimeFormat("ru-RU", { dateStyle: "long", timeStyle: "short" });
const day = (iso) => (iso ? iso.split("-").reverse().join(".") : ""); // YYYY-MM-DD → DD.MM.YYYY, no time zones

// `head`: column titles, or [title, class] ("num": right-aligned numbers, "split": hidden on a phone)
const table = (head, rows, caption) =>
  el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      { class: "data" },
      el("caption", { class: "sr", text: caption }),
      el("thead", {}, el("tr", {}, ...head.map((h) => (Array.isArray(h) ? h : [h, null])).map(([text, cls]) => el("th", { scope: "col", class: cls, text })))),
      el("tbody", {}, ...rows),
    ),
  );

// --- the eval run -----------------------------------------------------------------------------------

function verdict(goal) {
  if (goal.met === null) return [el("span", { class: "verdict", text: "нет данных" })];
  if (goal.met) return [el("span", { "aria-hidden": "true", text: "✓ " }), el("span", { class: "verdict", text: "выполнена" })];
  return [
    el("span", { "aria-hidden": "true", text: "✗ " }),
    el("span", { class: "verdict", text: "не выполнена, разрыв " }),
    formatNumber(Math.abs(goal.gap)),
  ];
}

// value, goal and verdict first (what a phone shows), then the value per split
function goalsTable(run) {
  const splits = Object.keys(run.summary.split_summaries || {});
  const head = ["Показатель", ["Все", "num"], ["Цель", "num"], "Итог", ...splits.map((s) => [SPLITS[s] || s, "num split"])];
  const rows = run.goals.map((g) =>
    el(
      "tr",
      {},
      el("th", { scope: "row", text: METRICS[g.metric] || g.metric }),
      el("td", { class: "num", text: formatNumber(g.value) }),
      el("td", { class: "num", text: `${OP[g.op]} ${formatNumber(g.goal)}` }),
      el("td", { class: g.met === null ? "na" : g.met ? "met" : "missed" }, ...verdict(g)),
      ...splits.map((s) => el("td", { class: "num split", text: formatNumber(run.summary.split_summaries[s][g.metric]) })),
    ),
  );
  return table(head, rows, "Цели качества");
}

function peersTable(peers) {
  const names = Object.keys(peers);
  const best = Object.fromEntries(PEER_METRICS.map((m) => [m, Math.max(...names.map((n) => peers[n][m] ?? -1))]));
  const rows = names.map((name) =>
    el(
      "tr",
      { class: name.includes("ours") ? "ours" : null },
      el("th", { scope: "row", text: PEERS[name] || name }),
      ...PEER_METRICS.map((m) => el("td", { class: `num${peers[name][m] === best[m] ? " best" : ""}`, text: formatNumber(peers[name][m]) })),
    ),
  );
  return table(["Поиск", ...PEER_METRICS.map((m) => [m, "num"])], rows, "Сравнение с другими способами поиска");
}

async function loadEval() {
  const body = document.getElementById("eval-body");
  const link = document.getElementById("eval-report");
  try {
    const { runs, latest } = await api("/v1/admin/eval/latest");
    if (!latest) {
      body.replaceChildren(el("p", { class: "muted", text: "Оценок ещё не было. Запустите «kb eval run» — итоги появятся здесь." }));
      return;
    }
    const s = latest.summary;
    const met = latest.goals.filter((g) => g.met).length;
    const parts = [
      el(
        "p",
        { class: "run-line" },
        el("strong", { text: `Прогон «${latest.name}»` }),
        ` · ${dateTime.format(new Date(latest.finished))} · ${questions(s.questions)}`,
        s.unanswerable ? ` (без ответа в справке — ${formatNumber(s.unanswerable)})` : "",
        runs > 1 ? ` · прогонов всего: ${runs}` : "",
      ),
      el("p", { class: "headline" }, el("span", { class: "big", text: `${met} из ${latest.goals.length}` }), " целей выполнено"),
      goalsTable(latest),
    ];
    if (s.total_p50_ms !== undefined)
      parts.push(el("p", { class: "muted small", text: `Время ответа: медиана ${formatNumber(s.total_p50_ms)} мс, 95-й перцентиль ${formatNumber(s.total_p95_ms)} мс.` }));
    if (s.peers) parts.push(el("h3", { text: "Поиск против других способов" }), peersTable(s.peers));
    body.replaceChildren(...parts);
    link.hidden = !latest.has_report;
  } catch (failure) {
    body.replaceChildren(el("p", { class: "error", text: explain(failure) }));
  }
}

// --- content gaps -------------------------------------------------------------------------------------

// `gaps` of SupportStats: {questions, clustered, clusters: [{label, count, examples, handoffs,
// nearest_topic…}], note}; a plain list of {count, examples} is read too.
function gapItem(gap) {
  const examples = (gap.examples || []).filter((q) => q !== gap.label);
  const facts = [questions(gap.count)];
  if (gap.handoffs) facts.push(`передано людям — ${formatNumber(gap.handoffs)}`);
  if (gap.nearest_topic) facts.push(`ближе всего к теме «${topicName(gap.nearest_topic)}»`);
  return el(
    "li",
    {},
    gap.label ? el("p", { class: "gap-label", text: `«${gap.label}»` }) : null,
    el("p", { class: "gap-count", text: facts.join(" · ") }),
    examples.length ? el("ul", { class: "gap-examples" }, ...examples.map((q) => el("li", { text: q }))) : null,
  );
}

async function loadGaps() {
  const body = document.getElementById("gaps-body");
  try {
    const stats = await api("/v1/admin/stats?format=json");
    document.getElementById("gaps-report").hidden = false;
    const gaps = Array.isArray(stats.gaps) ? { clusters: stats.gaps } : stats.gaps || { clusters: [] };
    const parts = [];
    if (gaps.questions !== undefined)
      parts.push(
        el("p", { class: "small", text: `Вопросов без уверенного ответа: ${formatNumber(gaps.questions)}, из них повторяются по смыслу — ${formatNumber(gaps.clustered ?? 0)}.` }),
      );
    if (gaps.clusters.length) parts.push(el("ol", { class: "gaps" }, ...gaps.clusters.map(gapItem)));
    else parts.push(el("p", { class: "muted", text: gaps.note || "Пробелов не видно: повторяющихся вопросов без ответа нет." }));
    body.replaceChildren(...parts);
  } catch (failure) {
    const text = failure.status === 404 ? "Аналитика недоступна: этот сервер её не собирает." : explain(failure);
    body.replaceChildren(el("p", { class: failure.status === 404 ? "muted" : "error", text }));
  }
}

// --- search ---------------------------------------------------------------------------------------------

function validity(hit) {
  if (!("valid_from" in hit) && !("valid_until" in hit)) return null;
  if (hit.valid_from && hit.valid_until) return `действует с ${day(hit.valid_from)} по ${day(hit.valid_until)}`;
  if (hit.valid_from) return `действует с ${day(hit.valid_from)}`;
  if (hit.valid_until) return `действует до ${day(hit.valid_until)}`;
  return "бессрочно";
}

function passage(hit, rank) {
  const title = safeUrl(hit.url)
    ? el("a", { href: safeUrl(hit.url), target: "_blank", rel: "noopener noreferrer", text: hit.title })
    : el("span", { text: hit.title });
  const badges = [
    "audience" in hit ? el("span", { class: `badge aud-${hit.audience}`, text: `для: ${AUDIENCE[hit.audience] || hit.audience}` }) : null,
    validity(hit) ? el("span", { class: "badge validity", text: validity(hit) }) : null,
    el("span", { class: "badge", text: topicName(hit.category) }),
    el("span", { class: "badge score", title: "оценка поиска", text: `оценка ${formatNumber(hit.score)}` }),
  ];
  return el(
    "li",
    { class: "passage" },
    el("h3", {}, el("span", { class: "rank", text: `${rank}.` }), " ", title),
    el("div", { class: "badges" }, ...badges.filter(Boolean)),
    hit.section.length ? el("p", { class: "section-path", text: hit.section.join(" › ") }) : null,
    el("p", { class: "passage-text", text: hit.text }),
    el("p", { class: "mono small muted", text: `${hit.source} · ${hit.doc_id}` }),
  );
}

async function search(event) {
  event.preventDefault();
  const results = document.getElementById("search-results");
  const body = {
    query: document.getElementById("search-query").value,
    top_k: Number(document.getElementById("search-k").value),
  };
  const audience = document.getElementById("search-audience").value;
  const date = document.getElementById("search-date").value;
  if (audience) body.audience = audience;
  if (date) body.as_of = date;
  results.replaceChildren(el("p", { class: "muted", text: "Ищем…" }));
  try {
    const found = await api("/v1/search", { method: "POST", body });
    if (!found.passages.length) {
      results.replaceChildren(el("p", { class: "muted", text: "Ничего не нашлось." }));
      return;
    }
    results.replaceChildren(
      el("p", { class: "muted small", text: `Найдено фрагментов: ${found.passages.length}` }),
      el("ol", { class: "passages" }, ...found.passages.map((hit, i) => passage(hit, i + 1))),
    );
  } catch (failure) {
    results.replaceChildren(el("p", { class: "error", text: explain(failure) }));
  }
}

document.getElementById("search-form").addEventListener("submit", search);
keyedLink(document.getElementById("eval-report"));
keyedLink(document.getElementById("gaps-report"));

function loadPanels() {
  loadEval();
  loadGaps();
}

addEventListener("kb:key", loadPanels); // another key: another role
ready().then((caller) => {
  if (caller !== null) loadPanels();
});
