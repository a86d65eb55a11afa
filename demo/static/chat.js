// The chat page. Everything from the network is shown with textContent,
// never innerHTML: a message like <img src=x onerror=alert(1)> stays text.
"use strict";

(function () {
  const ENDPOINT = "/chat";
  const MAX_DELAY = 30; // seconds between reconnection attempts, at most

  const $ = (id) => document.getElementById(id);
  const messages = $("messages");
  const empty = $("empty");
  const peopleList = $("people");
  const peopleCount = $("people-count");
  const statusEl = $("status");
  const statusText = $("status-text");
  const banner = $("banner");
  const bannerText = $("banner-text");
  const select = $("transport-select");
  const joinForm = $("join-form");
  const sayForm = $("say-form");
  const nickInput = $("nick");
  const textInput = $("text");
  const sayButton = sayForm.querySelector("button[type=submit]");
  const me = $("me");

  let sock = null;          // the current SockJS connection, if any
  let nick = null;          // our nickname once accepted; re-sent after reconnecting
  let joined = false;       // whether the server accepted it on this connection
  let editingNick = false;  // the nickname form is open to change it
  let switching = false;    // closing on purpose, to reconnect with another transport
  let failures = 0;         // reconnection attempts since the last success
  let retryTimer = null;
  let countdown = null;

  // ?transport=xhr-polling forces a transport, so a link can show a fallback.
  const wanted = new URLSearchParams(location.search).get("transport");
  if (wanted && [...select.options].some((o) => o.value === wanted)) {
    select.value = wanted;
  }

  // --- the connection ------------------------------------------------------

  function connect() {
    clearTimers();
    const transport = select.value;
    setStatus("connecting", transport ? `Connecting with ${transport}…` : "Connecting…");
    // Restricting transports is for demonstration; a real app passes no options.
    const options = transport ? { transports: [transport] } : {};
    const s = new SockJS(ENDPOINT, null, options);
    sock = s;

    s.onopen = () => {
      failures = 0;
      hideBanner();
      setStatus("open", `Connected · ${s.transport}`);
      if (nick) send({ type: "join", nick: nick }); // back after a reconnection
      showComposer();
    };

    s.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      receive(message);
    };

    s.onclose = (event) => {
      if (s !== sock) return; // an old connection we already gave up on
      sock = null;
      const wasJoined = joined;
      joined = false;
      showPeople(null);
      showComposer();
      if (switching) {
        switching = false;
        connect();
        return;
      }
      if (wasJoined) addNotice(`Disconnected: ${describeClose(event)}`, "error");
      scheduleReconnect(event);
    };
  }

  function send(message) {
    if (sock && sock.readyState === SockJS.OPEN) {
      sock.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  function scheduleReconnect(event) {
    failures += 1;
    // 1, 2, 4, 8 … seconds, at most MAX_DELAY, with some jitter so that a
    // room full of tabs does not come back all at the same instant.
    const base = Math.min(MAX_DELAY, 2 ** (failures - 1));
    const delay = Math.max(1, Math.round(base * (0.8 + Math.random() * 0.4)));
    const why = describeClose(event);
    setStatus("closed", "Disconnected");
    let left = delay;
    const tick = () => {
      showBanner(`${why} Reconnecting in ${left} s…`);
      left -= 1;
    };
    tick();
    countdown = setInterval(tick, 1000);
    retryTimer = setTimeout(() => {
      showBanner(`${why} Reconnecting…`);
      connect();
    }, delay * 1000);
  }

  function describeClose(event) {
    switch (event.code) {
      case 1000: return "You left the chat.";
      case 1001: return "The server went away.";
      case 1002: return "Cannot reach the server.";
      case 2000: return `Transport ${select.value || "(automatic)"} did not work.`;
      case 3000: return "The server closed the session.";
      default: return `Connection closed (${event.code} ${event.reason}).`;
    }
  }

  function clearTimers() {
    clearTimeout(retryTimer);
    clearInterval(countdown);
    retryTimer = countdown = null;
  }

  function reconnectNow() {
    if (sock) {
      // Leave first, so others see us go at once rather than when the old
      // session expires; the server then closes it and onclose reconnects.
      switching = true;
      if (!(joined && send({ type: "leave" }))) sock.close();
      const old = sock;
      setTimeout(() => { if (sock === old) old.close(); }, 2000);
    } else {
      connect();
    }
  }

  // --- what the server says ------------------------------------------------

  function receive(message) {
    switch (message.type) {
      case "online":
        showPeople(message.people);
        break;
      case "welcome":
        nick = message.nick;
        joined = true;
        editingNick = false;
        showComposer();
        break;
      case "join":
        showPeople(message.people);
        addNotice(message.nick === nick ? `You joined as ${message.nick}.` : `${message.nick} joined.`);
        break;
      case "leave":
        showPeople(message.people);
        addNotice(`${message.nick} left.`);
        break;
      case "say":
        addMessage(message.nick, message.text);
        break;
      case "error":
        addNotice(message.text, "error");
        break;
    }
  }

  // --- the page ------------------------------------------------------------

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusText.textContent = text;
  }

  function showBanner(text) {
    bannerText.textContent = text;
    banner.hidden = false;
  }

  function hideBanner() {
    banner.hidden = true;
  }

  // The nickname form until we have a nickname (or want another one), then
  // the message box: disabled while the connection is down.
  function showComposer() {
    const picking = !nick || editingNick;
    joinForm.hidden = !picking;
    sayForm.hidden = picking;
    me.textContent = nick || "";
    textInput.disabled = sayButton.disabled = !joined;
    textInput.placeholder = joined ? "Say something…" : sock ? "Joining…" : "Reconnecting…";
    if (joined && !picking && document.activeElement !== textInput) textInput.focus();
  }

  // people is a list of {nick, transport}, or null while disconnected.
  function showPeople(people) {
    const items = (people || []).map((person) => {
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.className = "nick";
      name.textContent = person.nick;
      name.style.color = colour(person.nick);
      const transport = document.createElement("span");
      transport.className = "via";
      transport.textContent = person.transport;
      transport.title = "the transport the server sees";
      li.append(name, " ", transport);
      return li;
    });
    peopleList.replaceChildren(...items);
    peopleList.dataset.none = people ? "Nobody has joined yet." : "Not connected.";
    peopleCount.textContent = String(items.length);
  }

  function append(li) {
    const atBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 40;
    messages.append(li);
    empty.hidden = true;
    if (atBottom) messages.scrollTop = messages.scrollHeight;
  }

  function addMessage(from, text) {
    const li = document.createElement("li");
    li.className = from === nick ? "message mine" : "message";
    const head = document.createElement("div");
    head.className = "head";
    const who = document.createElement("span");
    who.className = "nick";
    who.textContent = from;
    who.style.color = colour(from);
    const when = document.createElement("time");
    when.textContent = clock();
    head.append(who, when);
    const body = document.createElement("p");
    body.className = "text";
    body.textContent = text;
    li.append(head, body);
    append(li);
  }

  function addNotice(text, kind) {
    const li = document.createElement("li");
    li.className = kind === "error" ? "notice error" : "notice";
    li.textContent = text;
    append(li);
  }

  function clock() {
    return new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function colour(name) {
    let hash = 0;
    for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
    return `hsl(${hash % 360} 60% 36%)`;
  }

  // --- the controls --------------------------------------------------------

  joinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const wantedNick = nickInput.value.trim();
    if (!wantedNick) return;
    if (!send({ type: "join", nick: wantedNick })) {
      addNotice("Not connected yet: try again in a moment.", "error");
    }
  });

  sayForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = textInput.value;
    if (!text.trim()) return;
    if (send({ type: "say", text: text })) textInput.value = "";
  });

  // Clicking your own name offers to change it; Escape changes your mind.
  me.addEventListener("click", () => {
    editingNick = true;
    showComposer();
    nickInput.value = nick;
    nickInput.select();
  });
  nickInput.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && nick) {
      editingNick = false;
      showComposer();
    }
  });

  select.addEventListener("change", () => {
    const url = new URL(location.href);
    if (select.value) url.searchParams.set("transport", select.value);
    else url.searchParams.delete("transport");
    history.replaceState(null, "", url);
    reconnectNow();
  });

  $("retry").addEventListener("click", () => {
    hideBanner();
    connect();
  });

  showPeople([]);
  showComposer();
  connect();
})();
