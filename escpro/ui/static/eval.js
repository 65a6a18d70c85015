// escpro ui: the pairwise task page. Every click is POSTed and committed server-side at once.
"use strict";
(function () {
  const form = document.getElementById("task");
  if (!form) return;
  const task = form.dataset.task, annotator = form.dataset.annotator;
  const need = Number(form.dataset.criteria);
  const next = document.getElementById("next");
  const status = document.getElementById("status");
  const post = (url, body) => fetch(url, {
    method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  }).then(async (r) => {
    const got = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(got.error || (got.detail && JSON.stringify(got.detail)) || r.statusText);
    return got;
  });
  const refresh = () => {
    const n = form.querySelectorAll("input[type=radio]:checked").length;
    next.setAttribute("aria-disabled", n >= need ? "false" : "true");
    status.textContent = n >= need ? "all criteria saved" : `${n} of ${need} criteria`;
  };
  form.addEventListener("submit", (ev) => ev.preventDefault());
  form.querySelectorAll("input[type=radio]").forEach((inp) => inp.addEventListener("change", () => {
    const cell = inp.closest("tr").querySelector(".saved");
    cell.textContent = "saving…";
    post("/api/eval/verdict", { annotator, task_id: task, criterion: inp.name, choice: inp.value })
      .then(() => { cell.textContent = "saved"; refresh(); })
      .catch((e) => { cell.textContent = "not saved: " + e.message; inp.checked = false; refresh(); });
  }));
  const comment = document.getElementById("comment");
  let timer = null, last = comment.value;
  const saveComment = () => {
    if (comment.value === last) return Promise.resolve();
    const v = comment.value;
    return post("/api/eval/comment", { annotator, task_id: task, comment: v })
      .then(() => { last = v; status.textContent = "comment saved"; })
      .catch((e) => { status.textContent = "comment not saved: " + e.message; });
  };
  comment.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(saveComment, 600); });
  comment.addEventListener("blur", saveComment);
  next.addEventListener("click", (ev) => {
    ev.preventDefault();
    if (next.getAttribute("aria-disabled") === "true") return;
    clearTimeout(timer);
    saveComment().then(() => { window.location.href = next.href; });
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.target.tagName === "TEXTAREA" || ev.target.tagName === "INPUT" && ev.target.type !== "radio") return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === "n" && next.getAttribute("aria-disabled") === "false") next.click();
    const value = { a: "A", t: "tie", b: "B" }[ev.key.toLowerCase()];
    if (!value) return;
    // a / t / b answer the first criterion still open
    const open = Array.from(form.querySelectorAll("tr[data-criterion]"))
      .find((tr) => !tr.querySelector("input:checked"));
    if (!open) return;
    const inp = open.querySelector(`input[value="${value}"]`);
    inp.checked = true;
    inp.dispatchEvent(new Event("change"));
  });
  refresh();
})();
