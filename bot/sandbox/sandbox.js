// The sandbox chat page: every message goes through /sandbox/api/say to the bot's real /wechat.
"use strict";
(function () {
  const state = { labels: {}, people: [], current: null, items: [], since: 0 };
  const $ = (id) => document.getElementById(id);
  const L = (key) => state.labels[key] || key;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function personLabel(p) { return p.name || L(p.label); }

  function renderPeople() {
    const list = $("people");
    list.replaceChildren();
    for (const p of state.people) {
      const li = el("li", p.openid === state.current ? "active" : "", personLabel(p));
      li.dataset.openid = p.openid;
      li.appendChild(el("span", "role", L("role_" + p.role)));
      li.addEventListener("click", () => { state.current = p.openid; renderPeople(); renderChat(); });
      list.appendChild(li);
    }
  }

  function bubble(cls, tag, text, ok) {
    const div = el("div", "msg " + cls + (ok === false ? " failed" : ""));
    if (tag) div.appendChild(el("span", "tag", tag));
    div.appendChild(document.createTextNode(text || ""));
    return div;
  }

  function renderChat() {
    const chat = $("chat");
    const person = state.people.find((p) => p.openid === state.current);
    $("chat-title").textContent = person ? personLabel(person) + " · " + L("chat") : L("chat");
    chat.replaceChildren();
    for (const item of state.items) {
      if (item.openid !== state.current) continue;
      if (item.type === "say") {
        chat.appendChild(bubble("say", "", item.text));
        if (item.reply) chat.appendChild(bubble("reply", L("reply"), item.reply));
      } else if (item.type === "cs" || item.type === "template") {
        const tag = L(item.type) + (item.ok ? "" : " · " + L("failed") + " " + item.error);
        chat.appendChild(bubble(item.type, tag, item.text, item.ok));
      }
    }
    chat.scrollTop = chat.scrollHeight;
  }

  function renderRobots() {
    const feeds = { [state.robots.claim]: $("claim-feed"), [state.robots.admin]: $("admin-feed") };
    for (const feed of Object.values(feeds)) feed.replaceChildren();
    for (const item of state.items) {
      if (item.type !== "robot" || !feeds[item.robot]) continue;
      const div = el("div", "post" + (item.ok ? "" : " failed"));
      if (!item.ok) div.appendChild(el("span", "tag", L("failed") + " " + item.error));
      div.appendChild(document.createTextNode(item.text));
      feeds[item.robot].appendChild(div);
    }
  }

  async function poll() {
    try {
      const resp = await fetch("/sandbox/api/feed?since=" + state.since);
      const data = await resp.json();
      for (const item of data.items) {
        const known = state.items.find((i) => i.seq === item.seq);
        if (known) Object.assign(known, item); else state.items.push(item);
        state.since = Math.max(state.since, item.seq);
      }
      if (data.items.length) { renderChat(); renderRobots(); }
    } catch (err) { /* the server may be restarting; try again */ }
  }

  async function say(payload) {
    if (!state.current) return;
    const body = Object.assign({ openid: state.current }, payload);
    const local = { seq: -Date.now(), type: "say", openid: state.current, text: payload.text || "[" + payload.event + " " + payload.key + "]" };
    state.items.push(local);
    renderChat();
    const resp = await fetch("/sandbox/api/say", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const data = await resp.json();
    const known = state.items.find((i) => i.seq === data.seq);
    if (known) {
      known.reply = data.reply || "";
      state.items.splice(state.items.indexOf(local), 1);
    } else {
      local.seq = data.seq;
      local.reply = data.reply || "";
    }
    renderChat();
    poll();
  }

  async function init() {
    const cfg = await (await fetch("/sandbox/api/config")).json();
    state.labels = cfg.labels;
    state.robots = cfg.robots;
    state.people = cfg.personas.slice();
    state.current = state.people[0].openid;
    document.title = L("title");
    $("title").textContent = L("title");
    $("intro").textContent = L("intro");
    $("claim-title").textContent = L("claim_channel");
    $("admin-title").textContent = L("admin_group");
    $("send").textContent = L("send");
    $("text").placeholder = L("placeholder");
    $("invite-btn").textContent = L("invite");
    $("add-btn").title = L("add_person");
    for (const role of ["resident", "member", "admin"]) {
      const opt = el("option", "", L("role_" + role));
      opt.value = role;
      $("add-role").appendChild(opt);
    }
    const menu = [["menu_wish_new", "WISH_NEW"], ["menu_wish_mine", "WISH_MINE"], ["menu_hall", "HALL"],
                  ["menu_claims_mine", "CLAIMS_MINE"], ["menu_help", "HELP"]];
    for (const [label, key] of menu) {
      const b = el("button", "", L(label));
      b.type = "button";
      b.dataset.key = key;
      b.addEventListener("click", () => say({ event: "CLICK", key: key }));
      $("menu").appendChild(b);
    }
    $("say-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const text = $("text").value.trim();
      if (!text) return;
      $("text").value = "";
      say({ text: text });
    });
    $("add-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const name = $("add-name").value.trim();
      if (!name) return;
      const role = $("add-role").value;
      const openid = ("o_sandbox_" + role + "_" + Date.now().toString(36) + "0000000000000000").slice(0, 28);
      state.people.push({ openid: openid, role: role, name: name });
      state.current = openid;
      $("add-name").value = "";
      renderPeople(); renderChat();
    });
    $("invite-btn").addEventListener("click", async () => {
      const data = await (await fetch("/sandbox/api/invite", { method: "POST" })).json();
      $("invite-out").textContent = L("invite_made").split("{code}").join(data.code);
      $("invite-out").dataset.code = data.code;
    });
    renderPeople();
    renderChat();
    await poll();
    setInterval(poll, 1000);
  }

  init();
})();
