// escpro ui: one tree, loaded level by level from /api/trees/<id>/children (large trees stay light).
"use strict";
(function () {
  const pane = document.getElementById("tree");
  if (!pane || !pane.dataset.root) return;
  const treeId = pane.dataset.tree;
  const detail = document.getElementById("detail");
  const api = (path, params) => fetch(`/api/trees/${encodeURIComponent(treeId)}/${path}?` + new URLSearchParams(params),
    { headers: { Accept: "application/json" } }).then(async (r) => {
      const body = await r.json();
      if (!r.ok) throw new Error(body.error || r.statusText);
      return body;
    });
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  };
  const num = (v, d, sign) => (v === null || v === undefined ? "-" : (sign && v >= 0 ? "+" : "") + Number(v).toFixed(d));

  function row(n) {
    const li = el("li");
    li.dataset.id = n.id;
    li.dataset.kids = n.children;
    li.dataset.onpath = n.on_path ? "1" : "0";
    const r = el("div", `node kind-${n.kind}` + (n.on_path ? " on-path" : "") + (n.rejected ? " rejected" : ""));
    r.setAttribute("role", "treeitem");
    r.tabIndex = 0;
    const tog = el("button", "tog", n.children ? "▸" : "·");
    tog.type = "button";
    tog.setAttribute("aria-label", n.children ? `expand ${n.children} children` : "leaf");
    r.append(tog);
    if (n.end) r.append(el("span", "flag e", "E"));
    if (n.gold) r.append(el("span", "flag g", "G"));
    if (n.rejected) r.append(el("span", "flag x", "x"));
    r.append(el("span", "strat", n.parent === null ? "root" : n.strategy || "?"));
    r.append(el("span", "num", n.parent === null ? `Q ${num(n.q, 3, true)} N ${n.n ?? "-"}` :
      `P ${num(n.prior, 2)} Q ${num(n.q, 3, true)} N ${n.n ?? "-"}`));
    if (n.kind === "unexpanded") r.append(el("span", "snip", "unexpanded"));
    else if (n.reply) r.append(el("span", "snip", n.reply));
    li.append(r);
    tog.addEventListener("click", (ev) => { ev.stopPropagation(); toggle(li); });
    r.addEventListener("click", () => select(li));
    r.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") select(li);
      if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") toggle(li);
    });
    return li;
  }

  function fill(ul, kids) {
    const hidden = kids.filter((k) => k.kind === "unexpanded" && !k.on_path);
    kids.filter((k) => !hidden.includes(k)).forEach((k) => ul.append(row(k)));
    if (!hidden.length) return;
    const names = hidden.slice().sort((a, b) => (b.prior || 0) - (a.prior || 0))
      .slice(0, 6).map((k) => `${k.strategy} ${num(k.prior, 2)}`).join(", ");
    const li = el("li");
    const b = el("button", "fold", `+${hidden.length} unexpanded (${names}${hidden.length > 6 ? ", …" : ""})`);
    b.type = "button";
    b.addEventListener("click", () => { hidden.forEach((k) => ul.insertBefore(row(k), li)); li.remove(); });
    li.append(b);
    ul.append(li);
  }

  async function expand(li) {
    if (li.dataset.open === "1" || li.dataset.kids === "0") return;
    let ul = li.querySelector(":scope > ul");
    if (!ul) {
      const got = await api("children", { node: li.dataset.id });
      ul = el("ul", "kids");
      ul.setAttribute("role", "group");
      fill(ul, got.children);
      li.append(ul);
    }
    ul.hidden = false;
    li.dataset.open = "1";
    li.querySelector(":scope > .node .tog").textContent = "▾";
  }

  function collapse(li) {
    const ul = li.querySelector(":scope > ul");
    if (ul) ul.hidden = true;
    li.dataset.open = "0";
    const t = li.querySelector(":scope > .node .tog");
    if (li.dataset.kids !== "0") t.textContent = "▸";
  }

  const toggle = (li) => (li.dataset.open === "1" ? collapse(li) : expand(li).catch(showError));

  function showError(err) {
    detail.replaceChildren(el("div", "error", String(err.message || err)));
  }

  function table(rows, cols) {
    const t = el("table", "grid");
    const tr = el("tr");
    cols.forEach((c) => tr.append(el("th", null, c)));
    t.append(el("thead")); t.tHead.append(tr);
    const tb = el("tbody");
    rows.forEach((r) => {
      const x = el("tr");
      cols.forEach((c) => x.append(el("td", typeof r[c] === "number" ? "num" : null, r[c] === null || r[c] === undefined ? "-" : String(r[c]))));
      tb.append(x);
    });
    t.append(tb);
    return t;
  }

  async function select(li) {
    pane.querySelectorAll(".node.sel").forEach((n) => n.classList.remove("sel"));
    li.querySelector(":scope > .node").classList.add("sel");
    let d;
    try { d = await api("node", { id: li.dataset.id }); } catch (e) { showError(e); return; }
    const n = d.node;
    const out = [el("h2", null, n.parent === null ? "Root" : n.strategy || "?")];
    const kv = el("dl", "kv");
    const add = (k, v) => { kv.append(el("dt", null, k)); kv.append(el("dd", null, v)); };
    add("node", n.id); add("kind", n.kind); add("Q", num(n.q, 4, true)); add("N", n.n ?? "-");
    if (n.parent !== null) add("prior", num(n.prior, 3));
    add("marks", [n.on_path && "on a valid path", n.end && "end", n.gold && "gold", n.rejected && "rejected in a pair"].filter(Boolean).join(", ") || "none");
    add("children", `${n.children} (${n.expanded_children} expanded)`);
    out.push(kv);
    out.push(el("h3", null, "Dialogue up to this node"));
    const dia = el("div", "dialogue");
    dia.id = "dialogue";
    d.dialogue.forEach((t, i) => {
      const turn = el("div", `turn ${t.speaker}`);
      turn.append(el("span", "who", t.speaker === "supporter" ? `Supporter${t.strategy ? " · " + t.strategy : ""}` : "Seeker"));
      turn.append(document.createTextNode(t.text || "(empty)"));
      if (n.parent !== null && t.speaker === "supporter" && t.text === n.reply && i >= d.dialogue.length - 2) turn.classList.add("current");
      dia.append(turn);
    });
    out.push(dia);
    out.push(el("h3", null, `Judgements (${d.judgements.length})`));
    out.push(d.judgements.length ? table(d.judgements.map((j) => ({ iteration: j.iteration, turn: j.turn_offset, E: j.empathy, I: j.information, H: j.humanoid, S: j.strategy_score, R: j.reward === null ? null : Number(j.reward.toFixed(3)) })),
      ["iteration", "turn", "E", "I", "H", "S", "R"]) : el("p", "muted", "no reward-model judgement of this node"));
    out.push(el("h3", null, `Calls that made it (${d.calls.length}${d.calls.length >= d.calls_limit ? "+" : ""})`));
    if (d.calls.length) {
      out.push(table(d.calls, ["iteration", "role", "status", "model", "prompt_tokens", "completion_tokens", "latency_ms", "attempts", "cached"]));
      const det = el("details", "calls");
      det.append(el("summary", null, "responses"));
      d.calls.forEach((c) => det.append(el("pre", null, `${c.role} [${c.status}] ${c.error || ""}\n${c.response || ""}`)));
      out.push(det);
    } else out.push(el("p", "muted", "no recorded call for this node"));
    detail.replaceChildren(...out);
  }

  async function expandPaths(ul) {
    for (const li of Array.from(ul.children)) {
      if (li.dataset.onpath === "1" && li.dataset.kids !== "0") {
        await expand(li);
        await expandPaths(li.querySelector(":scope > ul"));
      }
    }
  }

  // Open the tree down to one node (links from the pairs browser) and select it.
  async function focus(rootUl, nodeId) {
    const d = await api("node", { id: nodeId });
    let ul = rootUl;
    for (const id of d.path) {
      const find = () => Array.from(ul.children).find((x) => x.dataset.id === id);
      let li = find();
      if (!li) {
        const fold = ul.querySelector(":scope > li > .fold");
        if (fold) fold.click();
        li = find();
      }
      if (!li) return;
      if (id === nodeId) {
        await select(li);
        li.scrollIntoView({ block: "center" });
        return;
      }
      await expand(li);
      ul = li.querySelector(":scope > ul");
    }
  }

  const top = el("ul", "kids top");
  top.setAttribute("role", "tree");
  const rootLi = row({ id: pane.dataset.root, parent: null, kind: "root", children: 1, q: null, n: null });
  pane.append(top);
  top.append(rootLi);
  // The root row's numbers come with its detail; its children are loaded right away.
  api("node", { id: pane.dataset.root }).then((d) => {
    rootLi.dataset.kids = d.node.children;
    rootLi.querySelector(".num").textContent = `Q ${num(d.node.q, 3, true)} N ${d.node.n ?? "-"}`;
    return expand(rootLi).then(() => rootLi.querySelector(":scope > ul"));
  }).then((ul) => {
    const rootUl = ul;
    document.getElementById("expand-paths").addEventListener("click", () => expandPaths(rootUl).catch(showError));
    document.getElementById("collapse-all").addEventListener("click", () =>
      rootUl.querySelectorAll("li[data-open='1']").forEach(collapse));
    if (pane.dataset.focus) return focus(rootUl, pane.dataset.focus);
    return null;
  }).catch(showError);
})();
