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
  const servedBy = $("served-by");

  // The server names its transports after the protocol's URLs; the page
  // speaks sockjs-client's names (the menu's), one name per transport.
  const CLIENT_NAMES = { xhr_streaming: "xhr-streaming", xhr: "xhr-polling", jsonp: "jsonp-polling" };

  // The nickname is remembered for the next visit; the token (the server's
  // secret for rejoining as the same person) only for this tab, so a reload
  // comes back quietly but a second tab is a second person.
  const NICK_KEY = "chat.nick";
  const TOKEN_KEY = "chat.token";
  const REJOINED = 4001; // the server closed us: this person rejoined elsewhere

  let sock = null;          // the current SockJS connection, if any
  let myId = null;          // the identity the server gave us: compared, never nicknames
  let nick = null;          // our nickname once accepted
  let token = load("sessionStorage", TOKEN_KEY);
  let joined = false;       // whether the server accepted us on this connection
  let joining = false;      // a join is on its way: the next welcome or error answers it
  let editingNick = false;  // the nickname form is open to change it
  let switching = false;    // closing on purpose, to reconnect with another transport
  let failures = 0;         // reconnection attempts since the last success
  let retryTimer = null;
  let countdown = null;
  let pinned = true;        // the message list is scrolled to its end: keep it there

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
      servedBy.hidden = true; // until the server says, on this connection
      // Back after a reconnection, a transport switch or a reload: the token
      // gets us our identity back without a "left"/"joined" for everyone.
      const rejoinAs = nick || (token && load("localStorage", NICK_KEY));
      if (rejoinAs) join(rejoinAs);
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
      joined = joining = false;
      showPeople(null);
      showComposer();
      if (switching) {
        switching = false;
        connect();
        return;
      }
      if (event.code === REJOINED) {
        // Another tab took our identity (it was duplicated with our token):
        // that tab is us now. Stay out until asked, and join afresh then.
        forget();
        showComposer();
        addNotice("You are in the chat from another tab now.", "error");
        setStatus("closed", "Disconnected");
        showBanner("This tab left the chat.");
        return;
      }
      if (wasJoined) addNotice(`Disconnected: ${describeClose(event)}`, "error");
      scheduleReconnect(event);
    };
  }

  function join(wantedNick) {
    const message = { type: "join", nick: wantedNick };
    if (token && !joined) message.token = token;
    joining = send(message);
    return joining;
  }

  // Our identity is gone for good: the next join is a new person.
  function forget() {
    myId = nick = token = null;
    joined = false;
    save("sessionStorage", TOKEN_KEY, null);
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
      // No "leave": onclose connects again at once and the new connection
      // rejoins with our token, so the others see no "left" or "joined".
      switching = true;
      sock.close();
    } else {
      connect();
    }
  }

  // --- what the server says ------------------------------------------------

  function receive(message) {
    switch (message.type) {
      case "online":
        showPeople(message.people);
        if (message.server) {
          servedBy.textContent = `served by ${message.server}`;
          servedBy.hidden = false;
        }
        break;
      case "welcome":
        myId = message.id;
        nick = message.nick;
        token = message.token;
        save("localStorage", NICK_KEY, nick);
        save("sessionStorage", TOKEN_KEY, token);
        joined = true;
        joining = editingNick = false;
        showComposer();
        break;
      case "join":
        showPeople(message.people);
        addNotice(message.id === myId ? `You joined as ${message.nick}.` : `${message.nick} joined.`);
        break;
      case "rename":
        showPeople(message.people);
        addNotice(
          message.id === myId
            ? `You are now ${message.nick}.`
            : `${message.old} is now ${message.nick}.`
        );
        break;
      case "leave":
        showPeople(message.people);
        addNotice(`${message.nick} left.`);
        break;
      case "say":
        addMessage(message.id, message.nick, message.text);
        break;
      case "error":
        if (joining && !joined) {
          // Our join was refused (the nickname is taken): pick another one,
          // starting from the refused one, still in the box and selected.
          joining = false;
          nick = null;
          showComposer();
          nickInput.select();
        }
        joining = false;
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

  // people is a list of {id, nick, transport}, or null while disconnected.
  // A null transport: that person's connection dropped and may come back.
  function showPeople(people) {
    const items = (people || []).map((person) => {
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.className = "nick";
      name.textContent = person.nick;
      name.style.color = colour(person.nick);
      const transport = document.createElement("span");
      transport.className = "via";
      transport.textContent = transportName(person);
      transport.title = person.transport ? "the transport the server sees" : "";
      if (person.id === myId) li.className = "you";
      li.append(name, " ", transport);
      return li;
    });
    peopleList.replaceChildren(...items);
    peopleList.dataset.none = people ? "Nobody has joined yet." : "Not connected.";
    peopleCount.textContent = String(items.length);
  }

  // Our own transport as sockjs-client names it (the header's name, with
  // its iframe- prefix); others' as the server sees it, in the menu's words.
  function transportName(person) {
    if (!person.transport) return "reconnecting…";
    if (person.id === myId && sock && sock.readyState === SockJS.OPEN) return sock.transport;
    return CLIENT_NAMES[person.transport] || person.transport;
  }

  // Follow new messages while the list is scrolled to its end, also when the
  // list gets shorter (the reconnect banner appears above it); stay put
  // while the reader has scrolled up to read older ones.
  let ownScroll = -1; // where scrollToEnd left the list
  function scrollToEnd() {
    if (!pinned) return;
    messages.scrollTop = messages.scrollHeight;
    ownScroll = messages.scrollTop;
  }
  messages.addEventListener("scroll", () => {
    // Our own scroll says nothing about the reader, and its event may come
    // after the list has shrunk, when the end seems far away.
    if (messages.scrollTop === ownScroll) {
      ownScroll = -1;
      return;
    }
    pinned = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 40;
  });
  new ResizeObserver(scrollToEnd).observe(messages);

  function append(li) {
    messages.append(li);
    empty.hidden = true;
    scrollToEnd();
  }

  function addMessage(fromId, from, text) {
    const li = document.createElement("li");
    li.className = fromId === myId ? "message mine" : "message";
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

  // Storage can be off (private modes, policies; even reading
  // window.localStorage may throw): then nothing is remembered.
  function load(storage, key) {
    try {
      return window[storage].getItem(key);
    } catch (err) {
      return null;
    }
  }

  function save(storage, key, value) {
    try {
      if (value === null) window[storage].removeItem(key);
      else window[storage].setItem(key, value);
    } catch (err) {
      // Not remembered; the chat works the same.
    }
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
    if (!join(wantedNick)) {
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

  nickInput.value = load("localStorage", NICK_KEY) || "";
  showPeople([]);
  showComposer();
  connect();
})();
