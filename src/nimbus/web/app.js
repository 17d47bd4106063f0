// The nimbus web app: log in or sign up, then todos, the message board, the account and
// (administrators) the user list; and, for anyone, the pages the mailed links open. Every
// piece of data reaches the page through textContent, never as HTML.

import {
  ApiError,
  SessionEnded,
  endSession,
  hasSession,
  logIn,
  logOut,
  nextPage,
  onSessionEnd,
  createPasskey,
  passkeyLogIn,
  passkeyProof,
  passkeyStep,
  refresh,
  request,
  secondStep,
} from "./api.js";

// A mailed link carries its token in the query (/?token=...#reset-password). It is taken
// first, and gone from the address bar and the history before anything else runs, so that
// no later script, bookmark or shared screen has it. It is kept for the page it came with,
// until that page has used it.
let linkToken = takeToken();

function takeToken() {
  const url = new URL(location.href);
  const token = url.searchParams.get("token");
  if (token === null) return null;
  url.searchParams.delete("token");
  history.replaceState(null, "", url.pathname + url.search + url.hash);
  return { token, view: url.hash.slice(1) };
}

const $ = (id) => document.getElementById(id);
const VIEWS = ["todos", "messages", "users", "account"];
const OPEN_VIEWS = ["forgot-password", "reset-password", "verify-email"]; // signed in or not
const STATES = { unstarted: "Unstarted", started: "Started", completed: "Completed" };
const PAGE = { todos: 20, messages: 20, users: 50 };
const CONTAINERS = { todos: "todo-list", messages: "message-list", users: "user-rows" };

let me = null; // the signed-in user (GET /users/me)
let isAdmin = false;
const todos = new Map(); // uid -> the todo as last seen, for its version (If-Match)
const lists = Object.fromEntries(VIEWS.map((view) => [view, { next: null, serial: 0 }]));

// An element with attributes, listeners (on...) and children; strings become text nodes.
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else if (value !== false && value !== null && value !== undefined) {
      node.setAttribute(key, String(value));
    }
  }
  node.append(...children);
  return node;
}

function announce(text) {
  $("status").textContent = text;
}

function showError(id, error) {
  if (error instanceof SessionEnded) return;
  if (!(error instanceof ApiError)) console.error(error);
  $(id).textContent = error instanceof ApiError ? error.message : "Something went wrong; try again";
}

function clearErrors() {
  for (const node of document.querySelectorAll(".error")) node.textContent = "";
}

// Runs `task` with the form's buttons disabled, so that one click sends one request.
async function busy(form, task) {
  const buttons = [...form.querySelectorAll("button")];
  form.setAttribute("aria-busy", "true");
  for (const button of buttons) button.disabled = true;
  try {
    return await task();
  } finally {
    form.removeAttribute("aria-busy");
    for (const button of buttons) button.disabled = false;
  }
}

function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

// Views

function show(name) {
  for (const view of ["auth", ...VIEWS, ...OPEN_VIEWS]) $(`view-${view}`).hidden = view !== name;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.hash === `#${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function route({ focus = false } = {}) {
  const wanted = location.hash.slice(1);
  if (OPEN_VIEWS.includes(wanted)) {
    show(wanted);
    clearErrors();
    OPENERS[wanted]();
    if (focus) $(`${wanted}-title`).focus();
    return;
  }
  if (!me) {
    show("auth");
    if (focus) $("login-title").focus();
    return;
  }
  const view = VIEWS.includes(wanted) && (wanted !== "users" || isAdmin) ? wanted : "todos";
  show(view);
  clearErrors();
  LOADERS[view]();
  if (focus) $(`${view}-title`).focus();
}

async function enter({ focus = true } = {}) {
  const { data } = await request("GET", "users/me");
  me = data.user;
  const scopes = String(data.claims?.scope ?? "").split(" ");
  isAdmin = me.role === "admin" && scopes.includes("admin");
  $("whoami").replaceChildren(el("span", {}, "Signed in as"), " ", el("span", {}, me.username));
  $("whoami").title = $("whoami").textContent; // in full where a phone cuts it short
  $("auth-notice").textContent = "";
  $("resend-form").hidden = true;
  $("nav").hidden = false;
  $("account").hidden = false;
  $("nav-users").hidden = !isAdmin;
  route({ focus });
}

onSessionEnd((message) => {
  me = null;
  isAdmin = false;
  leaveSecondStep({ focus: false });
  resetFactors();
  todos.clear();
  for (const list of Object.values(lists)) {
    list.next = null;
    list.serial += 1; // answers still on their way are dropped
  }
  for (const id of [
    "todo-list",
    "message-list",
    "user-rows",
    "session-list",
    "passkey-list",
    "whoami",
    "status",
    ...ACCOUNT_FIELDS,
  ]) {
    $(id).replaceChildren();
  }
  $("whoami").removeAttribute("title");
  for (const id of ["todos-more", "messages-more", "users-more", "nav", "account"]) {
    $(id).hidden = true;
  }
  clearErrors();
  for (const id of FORMS) $(id).reset();
  if ($("delete-dialog").open) $("delete-dialog").close();
  $("todo-filter").value = "";
  $("auth-notice").textContent = message ?? "";
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  show("auth");
  $("login-username").focus();
});

const FORMS = [
  "login-form",
  "mfa-form",
  "signup-form",
  "todo-form",
  "message-form",
  "password-form",
  "email-form",
  "delete-form",
  "factor-confirm-form",
  "passkey-add-form",
  "factor-off-form",
];

window.addEventListener("hashchange", () => route({ focus: true }));

// Log in, sign up, log out

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  clearErrors();
  $("auth-notice").textContent = "";
  await busy(form, async () => {
    const name = form.elements.username.value;
    try {
      const step = await logIn(name, form.elements.password.value);
      if (step) {
        form.elements.password.value = "";
        askSecondStep(step, name);
        return;
      }
      form.reset();
      await enter();
    } catch (error) {
      showError("login-error", error);
      form.elements.password.value = "";
      if (offerVerification(error, name.includes("@") ? name : "")) return;
      form.elements.password.focus();
    }
  });
});

// The second step of a login with two-step login on: the step token /login answered, kept
// in memory only, for a code from the app or a recovery code.
let pendingStep = null; // {mfaToken, username}

function askSecondStep(step, username) {
  pendingStep = { mfaToken: step.mfaToken, username };
  const passkey = step.methods.includes("passkey");
  $("mfa-passkey").hidden = !passkey;
  $("mfa-code-part").hidden = !step.methods.includes("totp");
  for (const id of ["login-form", "signup-form", "resend-form", "passkey-login"]) {
    $(id).hidden = true;
  }
  $("login-username").value = username; // for the way back
  $("mfa-form").reset();
  $("mfa-error").textContent = "";
  $("mfa-username").textContent = username;
  $("mfa-form").hidden = false;
  if (passkey) $("mfa-passkey").focus();
  else $("mfa-code").focus();
}

// Back to the password step; `message` shows as the log-in form's error.
function leaveSecondStep({ message = "", focus = true } = {}) {
  pendingStep = null;
  $("mfa-form").reset();
  $("mfa-form").hidden = true;
  $("mfa-username").textContent = "";
  $("login-form").hidden = false;
  $("signup-form").hidden = false;
  $("passkey-login").hidden = false;
  $("login-error").textContent = message;
  if (focus) $("login-password").focus();
}

$("mfa-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const input = form.elements.code;
  clearErrors();
  $("auth-notice").textContent = "";
  if (!pendingStep) {
    leaveSecondStep();
    return;
  }
  await busy(form, () =>
    passSecondStep(
      () => secondStep(pendingStep.mfaToken, input.value.trim()),
      () => {
        input.value = "";
        input.focus();
      },
    ),
  );
});

// A second step sent by `send`: signed in when it passes; the password again when the step
// token has expired or was spent; else its error, and `refused()`.
async function passSecondStep(send, refused = () => {}) {
  try {
    await send();
  } catch (error) {
    if (error instanceof ApiError && error.code === "invalid_mfa_token") {
      leaveSecondStep({ message: error.message });
      return;
    }
    showError("mfa-error", error);
    refused();
    return;
  }
  leaveSecondStep({ focus: false });
  $("login-form").reset();
  try {
    await enter();
  } catch (error) {
    showError("login-error", error);
  }
}

$("mfa-passkey").addEventListener("click", async () => {
  const form = $("mfa-form");
  clearErrors();
  if (!pendingStep) {
    leaveSecondStep();
    return;
  }
  await busy(form, () => passSecondStep(() => passkeyStep(pendingStep.mfaToken)));
});

$("login-passkey").addEventListener("click", async () => {
  clearErrors();
  $("auth-notice").textContent = "";
  await busy($("passkey-login"), async () => {
    try {
      await passkeyLogIn();
    } catch (error) {
      showError("passkey-login-error", error);
      return;
    }
    $("login-form").reset();
    try {
      await enter();
    } catch (error) {
      showError("passkey-login-error", error);
    }
  });
});

$("mfa-back").addEventListener("click", () => {
  clearErrors();
  leaveSecondStep();
});

$("signup-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  clearErrors();
  $("auth-notice").textContent = "";
  const { username, password, email } = form.elements;
  const body = { username: username.value, password: password.value };
  if (email.value.trim()) body.email = email.value.trim();
  await busy(form, async () => {
    let created = false;
    try {
      await request("POST", "users", { auth: false, body });
      created = true;
      const step = await logIn(body.username, body.password);
      form.reset();
      if (step) {
        askSecondStep(step, body.username); // not a new account's, but the server decides
        return;
      }
      await enter();
      announce(
        body.email
          ? `Welcome, ${body.username}: your account is ready. A link to verify your email ` +
              `is on its way to ${body.email}.`
          : `Welcome, ${body.username}: your account is ready.`,
      );
    } catch (error) {
      if (created && error instanceof ApiError && error.code === "email_not_verified") {
        // The account is made; this server lets it in once its email is verified.
        form.reset();
        $("auth-notice").textContent =
          `Your account is ready. Follow the link mailed to ${body.email ?? "you"}, then log in.`;
        offerVerification(error, body.email ?? "", { focus: false });
        $("login-username").value = body.username;
        $("login-password").focus();
        return;
      }
      showError("signup-error", error);
    }
  });
});

$("logout").addEventListener("click", async () => {
  const button = $("logout");
  button.disabled = true;
  try {
    await logOut("You have logged out.");
  } finally {
    button.disabled = false;
  }
});

// Paged lists: the first page replaces the list, "more" appends the page its Link names.

async function loadPage(view, firstPage, render, { more = false } = {}) {
  const list = lists[view];
  const serial = ++list.serial;
  const button = $(`${view}-more`);
  button.disabled = true;
  $(`${view}-error`).textContent = "";
  try {
    const response = await request("GET", more && list.next ? list.next : firstPage(), {
      auth: view !== "messages",
    });
    if (serial !== list.serial) return;
    if (!more && view === "todos") todos.clear();
    const items = response.data.map(render);
    const container = $(CONTAINERS[view]);
    if (more) container.append(...items);
    else container.replaceChildren(...items);
    list.next = nextPage(response.headers);
    button.hidden = !list.next;
    if (more && items.length) items[0].focus();
    updateEmpty(view);
  } catch (error) {
    if (serial === list.serial) showError(`${view}-error`, error);
  } finally {
    button.disabled = false;
  }
}

function updateEmpty(view) {
  const empty = $(`${view}-empty`);
  if (empty) empty.hidden = $(CONTAINERS[view]).children.length > 0;
}

// Todos

function todosPage() {
  const params = new URLSearchParams({ limit: PAGE.todos });
  const state = $("todo-filter").value;
  if (state) params.set("state", state);
  return `todos?${params}`;
}

function loadTodos(options) {
  return loadPage("todos", todosPage, todoItem, options);
}

function todoItem(todo) {
  todos.set(todo.uid, todo);
  const item = el("li", { "data-uid": todo.uid, tabindex: "-1" });
  renderTodo(item, todo);
  return item;
}

function renderTodo(item, todo) {
  item.className = `todo state-${todo.state}`;
  const selectId = `state-${todo.uid}`;
  const select = el(
    "select",
    { id: selectId, onchange: () => changeTodo(item, { state: select.value }, "select") },
    ...Object.entries(STATES).map(([value, label]) =>
      el("option", { value, selected: value === todo.state }, label),
    ),
  );
  item.replaceChildren(
    el("p", { class: "todo-text" }, todo.description),
    el(
      "div",
      { class: "todo-actions" },
      el("label", { class: "visually-hidden", for: selectId }, `State of “${todo.description}”`),
      select,
      el(
        "button",
        {
          type: "button",
          class: "secondary edit",
          "aria-label": `Edit “${todo.description}”`,
          onclick: () => editTodo(item),
        },
        "Edit",
      ),
      el(
        "button",
        {
          type: "button",
          class: "danger delete",
          "aria-label": `Delete “${todo.description}”`,
          onclick: () => deleteTodo(item),
        },
        "Delete",
      ),
    ),
  );
}

// A 412 means someone else changed the todo since this page read it; a 404, that it is gone.
async function reloadAfter(error) {
  if (!(error instanceof ApiError) || (error.status !== 412 && error.status !== 404)) {
    showError("todos-error", error);
    return;
  }
  await loadTodos();
  $("todos-error").textContent =
    error.status === 412
      ? "This todo was changed elsewhere; the list has been reloaded."
      : "This todo no longer exists; the list has been reloaded.";
}

async function changeTodo(item, changes, focusAfter) {
  const todo = todos.get(item.dataset.uid);
  if (!todo) return false;
  $("todos-error").textContent = "";
  try {
    const { data } = await request("PATCH", `todos/${encodeURIComponent(todo.uid)}`, {
      body: changes,
      headers: { "If-Match": `"${todo.version}"` },
    });
    todos.set(data.uid, data);
    const filter = $("todo-filter").value;
    if (filter && data.state !== filter) {
      item.remove();
      todos.delete(data.uid);
      updateEmpty("todos");
      announce(`“${data.description}” moved to ${STATES[data.state].toLowerCase()}.`);
      $("todos-title").focus();
    } else {
      renderTodo(item, data);
      announce(
        changes.state
          ? `“${data.description}” is now ${STATES[data.state].toLowerCase()}.`
          : `Saved “${data.description}”.`,
      );
      item.querySelector(focusAfter)?.focus();
    }
    return true;
  } catch (error) {
    // A refused state change puts the select back; a refused edit keeps the form and its text.
    if (focusAfter === "select" && item.isConnected) {
      renderTodo(item, todo);
      item.querySelector("select").focus();
    }
    await reloadAfter(error);
    return false;
  }
}

function editTodo(item) {
  const todo = todos.get(item.dataset.uid);
  const inputId = `edit-${todo.uid}`;
  const input = el("input", {
    id: inputId,
    name: "description",
    value: todo.description,
    required: true,
    maxlength: 1000,
    autocomplete: "off",
  });
  const cancel = () => {
    renderTodo(item, todos.get(todo.uid) ?? todo);
    item.querySelector(".edit")?.focus();
  };
  const form = el(
    "form",
    {
      class: "edit-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const description = input.value.trim();
        if (description === todo.description) {
          cancel();
          return;
        }
        await busy(form, () => changeTodo(item, { description }, ".edit"));
      },
    },
    el("label", { for: inputId }, "Description"),
    input,
    el(
      "div",
      { class: "row" },
      el("button", { type: "submit" }, "Save"),
      el("button", { type: "button", class: "secondary", onclick: cancel }, "Cancel"),
    ),
  );
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") cancel();
  });
  item.replaceChildren(form);
  input.focus();
  input.select();
}

async function deleteTodo(item) {
  const todo = todos.get(item.dataset.uid);
  if (!todo) return;
  $("todos-error").textContent = "";
  try {
    await request("DELETE", `todos/${encodeURIComponent(todo.uid)}`, {
      headers: { "If-Match": `"${todo.version}"` },
    });
    const neighbour = item.nextElementSibling ?? item.previousElementSibling;
    item.remove();
    todos.delete(todo.uid);
    updateEmpty("todos");
    announce(`Deleted “${todo.description}”.`);
    (neighbour?.querySelector("select") ?? $("todo-description")).focus();
  } catch (error) {
    await reloadAfter(error);
  }
}

$("todo-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const input = $("todo-description");
  const description = input.value.trim();
  if (!description) return;
  $("todos-error").textContent = "";
  await busy(form, async () => {
    try {
      const { data } = await request("POST", "todos", { body: { description } });
      input.value = "";
      const filter = $("todo-filter").value;
      if (!filter || filter === data.state) $("todo-list").prepend(todoItem(data));
      updateEmpty("todos");
      announce(`Added “${data.description}”.`);
    } catch (error) {
      showError("todos-error", error);
    }
  });
  input.focus();
});

$("todo-filter").addEventListener("change", () => loadTodos());
$("todos-more").addEventListener("click", () => loadTodos({ more: true }));

// Messages

function messageItem(message) {
  return el(
    "li",
    { class: "message", tabindex: "-1" },
    el(
      "p",
      { class: "meta" },
      el("span", { class: "author" }, message.author),
      " ",
      el("time", { datetime: message.created_at }, formatTime(message.created_at)),
    ),
    el("p", { class: "message-text" }, message.text),
  );
}

function loadMessages(options) {
  return loadPage("messages", () => `messages?limit=${PAGE.messages}`, messageItem, options);
}

$("message-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const input = $("message-text");
  const text = input.value; // kept exactly as written
  $("messages-error").textContent = "";
  if (!/\S/.test(text)) {
    $("messages-error").textContent = "Write something first.";
    input.focus();
    return;
  }
  await busy(form, async () => {
    try {
      const { data } = await request("POST", "messages", { body: { text } });
      input.value = "";
      $("message-list").prepend(messageItem(data));
      updateEmpty("messages");
      announce("Message posted.");
    } catch (error) {
      showError("messages-error", error);
    }
  });
  input.focus();
});

$("message-text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    $("message-form").requestSubmit();
  }
});
$("messages-more").addEventListener("click", () => loadMessages({ more: true }));

// Users (administrators)

// Each cell names its column too: a phone stacks a user's cells as a card, the name beside
// each value (hidden from screen readers, which have the column headers).
function userCell(column, ...value) {
  return el(
    "td",
    { role: "cell" },
    el("span", { class: "cell-label", "aria-hidden": "true" }, column),
    el("span", { class: "cell-value" }, ...value),
  );
}

// A long username or email wraps after its dots, @ and the like rather than mid-word.
function breakable(text) {
  const parts = String(text).match(/[^.@_+]+[.@_+]*|[.@_+]+/g) ?? [];
  return parts.flatMap((part, index) => (index ? [el("wbr"), part] : [part]));
}

function userRow(user) {
  const dash = "—";
  return el(
    "tr",
    { role: "row", tabindex: "-1" },
    userCell("Username", ...breakable(user.username)),
    userCell("Name", user.name ?? dash),
    userCell("Email", ...(user.email ? breakable(user.email) : [dash])),
    userCell("Role", user.role),
    userCell("Joined", el("time", { datetime: user.created_at }, formatTime(user.created_at))),
  );
}

function loadUsers(options) {
  return loadPage("users", () => `users?limit=${PAGE.users}`, userRow, options);
}

$("users-more").addEventListener("click", () => loadUsers({ more: true }));

// The pages of the mailed links, and asking for them

// The fields of the JSON body that name an account: an email where the text looks like one,
// else a username (usernames may hold an @ too; such a name is most likely its email anyway).
function accountName(text) {
  const name = text.trim();
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(name) ? { email: name } : { username: name };
}

// A login refused for want of a verified email offers to mail the link again.
function offerVerification(error, email, { focus = true } = {}) {
  if (!(error instanceof ApiError) || error.code !== "email_not_verified") return false;
  const form = $("resend-form");
  form.hidden = false;
  $("resend-done").textContent = "";
  if (email) form.elements.email.value = email;
  if (focus) form.elements.email.focus();
  return true;
}

async function sendVerification(form, doneId, errorId) {
  $(doneId).textContent = "";
  $(errorId).textContent = "";
  await busy(form, async () => {
    try {
      const { data } = await request("POST", "auth/email/verify/send", {
        auth: false,
        body: { email: form.elements.email.value.trim() },
      });
      $(doneId).textContent = data?.message ?? "If that email needs it, a link is on its way.";
    } catch (error) {
      showError(errorId, error);
    }
  });
}

$("resend-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sendVerification(event.currentTarget, "resend-done", "resend-error");
});

$("verify-send-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sendVerification(event.currentTarget, "verify-send-done", "verify-send-error");
});

function openForgot() {
  $("forgot-done").textContent = "";
}

$("forgot-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  clearErrors();
  $("forgot-done").textContent = "";
  await busy(form, async () => {
    try {
      const { data } = await request("POST", "auth/password/forgot", {
        auth: false,
        body: accountName(form.elements.name.value),
      });
      // The same answer whether or not there is such an account.
      $("forgot-done").textContent =
        data?.message ?? "If there is such an account, a link is on its way.";
    } catch (error) {
      showError("forgot-error", error);
    }
  });
});

// The token of the link that opened this page, if it came with `view`; else null.
function tokenFor(view) {
  return linkToken?.view === view ? linkToken.token : null;
}

const NO_TOKEN = "This page needs the link from the mail: open it again, or ask for a new one.";

function openReset() {
  $("reset-form").reset();
  if (tokenFor("reset-password") === null) $("reset-error").textContent = NO_TOKEN;
}

$("reset-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const { password, repeat } = form.elements;
  clearErrors();
  const token = tokenFor("reset-password");
  if (token === null) {
    $("reset-error").textContent = NO_TOKEN;
    return;
  }
  if (password.value !== repeat.value) {
    $("reset-error").textContent = "The two passwords differ: type the same one twice.";
    repeat.value = "";
    repeat.focus();
    return;
  }
  await busy(form, async () => {
    try {
      await request("POST", "auth/password/reset", {
        auth: false,
        body: { token, password: password.value },
      });
      linkToken = null;
      form.reset();
      await leaveForLogin("Your password has been changed. Log in with the new one.");
    } catch (error) {
      showError("reset-error", error);
      if (error instanceof ApiError && error.code === "invalid_token") {
        linkToken = null; // it will not work again: ask for a new link
        form.reset();
      } else {
        password.focus();
      }
    }
  });
});

// Back to the log-in form (signed in: this session ends, since a reset ended it already).
async function leaveForLogin(notice) {
  if (me || hasSession()) {
    endSession(notice);
    return;
  }
  history.replaceState(null, "", location.pathname + location.search);
  show("auth");
  $("auth-notice").textContent = notice;
  $("login-username").focus();
}

let verifying = null; // the token being posted, so that one link is posted once

async function openVerify() {
  const next = $("verify-next");
  next.href = me ? "#account" : "#login";
  next.textContent = me ? "Your account" : "Log in";
  $("verify-done").textContent = "";
  $("verify-send-form").hidden = true;
  $("verify-send-done").textContent = "";
  const token = tokenFor("verify-email");
  if (token === null) {
    $("verify-error").textContent = NO_TOKEN;
    $("verify-send-form").hidden = false;
    return;
  }
  if (verifying === token) return;
  verifying = token;
  $("verify-done").textContent = "Verifying your email…";
  try {
    await request("POST", "auth/email/verify", { auth: false, body: { token } });
    $("verify-done").textContent = "Your email is verified. Thank you!";
    if (me) me.email_verified = true;
  } catch (error) {
    $("verify-done").textContent = "";
    showError("verify-error", error);
    $("verify-send-form").hidden = false;
  } finally {
    linkToken = null;
    verifying = null;
  }
}

const OPENERS = {
  "forgot-password": openForgot,
  "reset-password": openReset,
  "verify-email": openVerify,
};

// The account: its details, its sessions, a new password or email, and deleting it

const ACCOUNT_FIELDS = [
  "account-username",
  "account-name",
  "account-email",
  "account-email-state",
  "account-joined",
];
let accountSerial = 0; // answers to an older visit of the page are dropped

async function loadAccount() {
  const serial = ++accountSerial;
  renderAccount(me);
  try {
    const { data } = await request("GET", "users/me");
    if (serial !== accountSerial) return;
    me = data.user;
    renderAccount(me);
  } catch (error) {
    if (serial === accountSerial) showError("account-error", error);
  }
  await Promise.all([loadSessions(serial), loadFactors(serial), loadPasskeys(serial)]);
}

function renderAccount(user) {
  const dash = "—";
  $("account-username").textContent = user.username;
  $("account-name").textContent = user.name ?? dash;
  $("account-email").textContent =
    user.email ?? "None: add one below, to be able to reset a forgotten password";
  const state = $("account-email-state");
  state.textContent = user.email ? (user.email_verified ? "Verified" : "Not verified") : "";
  state.className = `badge ${user.email_verified ? "good" : "warn"}`;
  state.hidden = !user.email;
  $("account-resend").hidden = !user.email || Boolean(user.email_verified);
  $("account-joined").replaceChildren(
    el("time", { datetime: user.created_at }, formatTime(user.created_at)),
  );
}

$("account-resend").addEventListener("click", async () => {
  const button = $("account-resend");
  $("account-error").textContent = "";
  button.disabled = true;
  try {
    const { data } = await request("POST", "auth/email/verify/send", {
      auth: false,
      body: { email: me.email },
    });
    announce(data?.message ?? `A link to verify ${me.email} is on its way.`);
  } catch (error) {
    showError("account-error", error);
  } finally {
    button.disabled = false;
  }
});

// "HeadlessChrome/120.0 ... (X11; Linux x86_64)" to "Chrome on Linux"; the whole string is
// shown below it.
const BROWSERS = [
  [/Edg(e|A|iOS)?\//, "Edge"],
  [/OPR\/|Opera/, "Opera"],
  [/Firefox\/|FxiOS\//, "Firefox"],
  [/Chrom(e|ium)\/|CriOS\//, "Chrome"],
  [/Version\/[\d.]+.*Safari\//, "Safari"],
  [/^curl\//, "curl"],
  [/^python-httpx\//, "httpx"],
];
const SYSTEMS = [
  [/Android/, "Android"],
  [/iPhone|iPad|iPod/, "iOS"],
  [/Windows/, "Windows"],
  [/Macintosh|Mac OS X/, "macOS"],
  [/CrOS/, "ChromeOS"],
  [/Linux/, "Linux"],
];

function deviceName(agent) {
  if (!agent) return "An unknown browser";
  const browser = BROWSERS.find(([pattern]) => pattern.test(agent))?.[1];
  const system = SYSTEMS.find(([pattern]) => pattern.test(agent))?.[1];
  if (browser && system) return `${browser} on ${system}`;
  return browser ?? system ?? "A browser or program";
}

let sessionSerial = 0;

async function loadSessions(serial = accountSerial) {
  const mine = ++sessionSerial;
  $("sessions-error").textContent = "";
  try {
    const { data } = await request("GET", "users/me/sessions");
    if (mine !== sessionSerial || serial !== accountSerial) return;
    $("session-list").replaceChildren(...data.map(sessionItem));
  } catch (error) {
    if (mine === sessionSerial) showError("sessions-error", error);
  }
}

function sessionItem(session, index) {
  const name = deviceName(session.user_agent);
  const nameId = `session-${index}-name`;
  const metaId = `session-${index}-meta`;
  const lastUsed = session.last_used_at ?? session.created_at;
  const item = el(
    "li",
    { class: `session${session.current ? " current" : ""}`, tabindex: "-1" },
    el(
      "p",
      { class: "session-name", id: nameId },
      name,
      ...(session.current ? [" ", el("span", { class: "badge good" }, "This device")] : []),
    ),
    el(
      "p",
      { class: "meta", id: metaId },
      `From ${session.address ?? "an unknown address"}; logged in `,
      el("time", { datetime: session.created_at }, formatTime(session.created_at)),
      "; last used ",
      el("time", { datetime: lastUsed }, formatTime(lastUsed)),
    ),
  );
  if (session.user_agent) {
    item.append(el("p", { class: "meta agent" }, session.user_agent));
  }
  item.append(
    el(
      "button",
      {
        type: "button",
        class: "secondary end",
        "aria-describedby": `${nameId} ${metaId}`,
        onclick: (event) => endOne(item, session, name, event.currentTarget),
      },
      "End",
    ),
  );
  return item;
}

async function endOne(item, session, name, button) {
  $("sessions-error").textContent = "";
  button.disabled = true;
  try {
    await request("DELETE", `users/me/sessions/${encodeURIComponent(session.id)}`);
    if (session.current) {
      endSession("You have logged out.");
      return;
    }
    const neighbour = item.nextElementSibling ?? item.previousElementSibling;
    item.remove();
    announce(`Ended the session of ${name}.`);
    (neighbour?.querySelector(".end") ?? $("sessions-title")).focus();
  } catch (error) {
    button.disabled = false;
    if (error instanceof ApiError && error.status === 404) {
      await loadSessions();
      $("sessions-error").textContent =
        "That session had ended already; the list has been reloaded.";
      return;
    }
    showError("sessions-error", error);
  }
}

$("sessions-end-others").addEventListener("click", async () => {
  const button = $("sessions-end-others");
  $("sessions-error").textContent = "";
  button.disabled = true;
  try {
    await request("DELETE", "users/me/sessions");
    await loadSessions();
    announce("You are logged out everywhere else.");
  } catch (error) {
    showError("sessions-error", error);
  } finally {
    button.disabled = false;
  }
});

$("password-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const { current, password, repeat } = form.elements;
  $("password-error").textContent = "";
  if (password.value !== repeat.value) {
    $("password-error").textContent = "The two new passwords differ: type the same one twice.";
    repeat.value = "";
    repeat.focus();
    return;
  }
  const username = me.username;
  const body = { password: password.value, current_password: current.value };
  await busy(form, async () => {
    try {
      await request("PATCH", `users/${encodeURIComponent(me.id)}`, { body });
    } catch (error) {
      showError("password-error", error);
      current.focus();
      return;
    }
    // The new password ended every session, this one too: log this device in again.
    form.reset();
    try {
      const step = await logIn(username, body.password);
      if (step) {
        endSession("Your password has been changed. Type a code to log in again.");
        askSecondStep(step, username);
        return;
      }
      await enter({ focus: false });
    } catch (error) {
      if (error instanceof SessionEnded) return;
      endSession("Your password has been changed. Log in with the new one.");
      return;
    }
    announce("Your password has been changed, and every other device logged out.");
  });
});

$("email-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const { email, current } = form.elements;
  $("email-error").textContent = "";
  const body = { email: email.value.trim(), current_password: current.value };
  await busy(form, async () => {
    try {
      const { data } = await request("PATCH", `users/${encodeURIComponent(me.id)}`, { body });
      me = data;
      renderAccount(me);
      form.reset();
      announce(`Your email is now ${data.email}. A link to verify it is on its way there.`);
    } catch (error) {
      showError("email-error", error);
      current.focus();
    }
  });
});

$("delete-form").addEventListener("submit", (event) => {
  event.preventDefault();
  $("delete-error").textContent = "";
  $("delete-dialog-text").textContent =
    `The account “${me.username}”, its todos and its messages are deleted for good, ` +
    "and every device is logged out.";
  $("delete-dialog").showModal();
  $("delete-no").focus(); // the safe choice first
});

// Closed, the dialog gives the focus back to where it was (Escape closes it too).
$("delete-no").addEventListener("click", () => $("delete-dialog").close());

$("delete-yes").addEventListener("click", async () => {
  const form = $("delete-form");
  const dialog = $("delete-dialog");
  await busy(dialog, async () => {
    try {
      await request("DELETE", `users/${encodeURIComponent(me.id)}`, {
        body: { current_password: form.elements.current.value },
      });
    } catch (error) {
      dialog.close();
      showError("delete-error", error);
      form.elements.current.value = "";
      form.elements.current.focus();
      return;
    }
    dialog.close();
    endSession("Your account has been deleted.");
  });
});

// Confirm it is you: the proof a change to the account's factors takes (the password, and
// a code when the authenticator app is on, or else a passkey when the account has one).

const factors = { totp: false, passkeys: 0 }; // as the page last showed them

async function reauthProof(errorId) {
  const password = $("reauth-password").value;
  if (!password) {
    $(errorId).textContent = "Type your current password under “Confirm it is you” first.";
    $("reauth-password").focus();
    return null;
  }
  const proof = { password };
  const code = $("reauth-code").value.trim();
  if (code && factors.totp) proof.code = code;
  else if (factors.passkeys > 0) proof.passkey = await passkeyProof();
  return proof;
}

function reauthDone() {
  $("reauth-password").value = "";
  $("reauth-code").value = "";
}

// A refused proof: the field to type again. The account's factors not as the page showed
// them (changed in another tab, say): shown anew, with the field they ask for.
async function reauthRefused(error) {
  if (!(error instanceof ApiError) || error.status !== 403) return;
  $("reauth-code").value = "";
  if (error.code === "current_password_invalid") {
    $("reauth-password").value = "";
    $("reauth-password").focus();
    return;
  }
  if (error.code === "second_factor_required") await Promise.all([loadFactors(), loadPasskeys()]);
  if (factors.totp) $("reauth-code").focus();
}

function showFactors() {
  $("reauth-code-part").hidden = !factors.totp;
}

// Two-step login: off (or a set-up left unfinished), being set up, or on.

let factorSerial = 0; // bumped by each change here, so that an older answer is dropped

async function loadFactors(serial = accountSerial) {
  const mine = ++factorSerial;
  try {
    const { data } = await request("GET", "users/me/mfa");
    if (mine !== factorSerial || serial !== accountSerial) return;
    renderFactors(data);
  } catch (error) {
    if (mine === factorSerial) showError("factor-error", error);
  }
}

function renderFactors(status) {
  const on = status.totp === "on";
  factors.totp = on;
  showFactors();
  const left = Number(status.recovery_codes_left);
  const codes = left === 1 ? "1 recovery code" : `${left} recovery codes`;
  $("factor-state").textContent = on
    ? `On: a login asks for a code from your authenticator app too. ${codes} left.`
    : status.totp === "pending"
      ? "Off: a set-up was started but not finished. Set it up again for a new key."
      : "Off: your password alone logs you in. Turned on, a login also asks for a code " +
        "from an authenticator app.";
  clearSetup();
  $("factor-codes").replaceChildren();
  $("factor-start").hidden = on;
  $("factor-setup").hidden = true;
  $("factor-recovery").hidden = true;
  $("factor-off-form").hidden = !on;
}

function clearSetup() {
  $("factor-qr").replaceChildren();
  $("factor-secret").textContent = "";
  $("factor-link").removeAttribute("href");
  $("factor-link").hidden = true;
  $("factor-confirm-form").reset();
}

function resetFactors() {
  factorSerial += 1;
  reauthDone();
  factors.passkeys = 0;
  renderFactors({ totp: "off", recovery_codes_left: 0 });
  $("factor-state").textContent = "";
  $("factor-start").hidden = true;
}

function clearFactorErrors() {
  for (const id of ["factor-error", "factor-confirm-error", "factor-off-error"]) {
    $(id).textContent = "";
  }
}

// A change refused because the factor is not as this page thought (another tab, say): the
// state anew, and why.
async function reloadFactors(error) {
  await loadFactors();
  showError("factor-error", error);
  $("factor-title").focus();
}

$("factor-start").addEventListener("click", async () => {
  const button = $("factor-start");
  clearFactorErrors();
  factorSerial += 1;
  button.disabled = true;
  try {
    const proof = await reauthProof("factor-error");
    if (!proof) return;
    const { data } = await request("POST", "users/me/mfa/totp", { body: proof });
    reauthDone();
    // An image, never markup: an SVG drawn by <img> runs no script and loads nothing.
    const qr = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(data.qr_svg)}`;
    const alt = "QR code for your authenticator app";
    $("factor-qr").replaceChildren(el("img", { class: "qr", src: qr, alt, width: 200 }));
    $("factor-secret").textContent = String(data.secret).replace(/(.{4})(?=.)/g, "$1 ");
    if (/^otpauth:\/\//.test(data.otpauth_uri)) {
      $("factor-link").href = data.otpauth_uri;
      $("factor-link").hidden = false;
    }
    button.hidden = true;
    $("factor-setup").hidden = false;
    $("factor-setup-title").focus();
  } catch (error) {
    if (error instanceof ApiError && error.status === 409) await reloadFactors(error);
    else {
      showError("factor-error", error);
      await reauthRefused(error);
    }
  } finally {
    button.disabled = false;
  }
});

$("factor-cancel").addEventListener("click", () => {
  clearFactorErrors();
  factorSerial += 1;
  renderFactors({ totp: "pending", recovery_codes_left: 0 });
  $("factor-start").focus();
});

$("factor-confirm-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const input = form.elements.code;
  clearFactorErrors();
  await busy(form, async () => {
    let codes;
    try {
      const { data } = await request("POST", "users/me/mfa/totp/confirm", {
        body: { code: input.value.trim() },
      });
      codes = data.recovery_codes;
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        await reloadFactors(error);
        return;
      }
      showError("factor-confirm-error", error);
      input.value = "";
      input.focus();
      return;
    }
    factorSerial += 1;
    clearSetup();
    $("factor-setup").hidden = true;
    $("factor-state").textContent = "On: a login asks for a code from your authenticator app too.";
    $("factor-codes").replaceChildren(...codes.map((code) => el("li", {}, el("code", {}, code))));
    $("factor-recovery").hidden = false;
    announce("Two-step login is on.");
    $("factor-recovery-title").focus();
  });
});

$("factor-kept").addEventListener("click", () => {
  const left = $("factor-codes").children.length;
  renderFactors({ totp: "on", recovery_codes_left: left });
  $("factor-title").focus();
});

$("factor-off-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  clearFactorErrors();
  await busy(form, async () => {
    try {
      const proof = await reauthProof("factor-off-error");
      if (!proof) return;
      await request("DELETE", "users/me/mfa/totp", { body: proof });
      reauthDone();
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        reauthDone();
        await reloadFactors(error);
        return;
      }
      showError("factor-off-error", error);
      await reauthRefused(error);
      return;
    }
    factorSerial += 1;
    renderFactors({ totp: "off", recovery_codes_left: 0 });
    announce("Two-step login is off: your password alone logs you in.");
    $("factor-start").focus();
  });
});

const LOADERS = {
  todos: loadTodos,
  messages: loadMessages,
  users: loadUsers,
  account: loadAccount,
};

// Start: a refresh token kept by this tab resumes its session.

async function start() {
  if (!hasSession()) {
    route();
    return;
  }
  try {
    await refresh();
    await enter({ focus: false });
  } catch (error) {
    if (error instanceof SessionEnded) return; // the login view already says so
    show("auth");
    showError("login-error", error);
  }
}

start();

// Passkeys

let passkeySerial = 0; // bumped by each change here, so that an older answer is dropped

async function loadPasskeys(serial = accountSerial) {
  const mine = ++passkeySerial;
  try {
    const { data } = await request("GET", "users/me/passkeys");
    if (mine !== passkeySerial || serial !== accountSerial) return;
    renderPasskeys(data.items);
  } catch (error) {
    if (mine === passkeySerial) showError("passkeys-error", error);
  }
}

function renderPasskeys(items) {
  const rows = items.map((passkey) => {
    const used = passkey.last_used_at ? `last used ${formatTime(passkey.last_used_at)}` : "not used yet";
    const remove = el(
      "button",
      { type: "button", class: "secondary danger", "aria-label": `Remove ${passkey.name}` },
      "Remove",
    );
    remove.addEventListener("click", () => removePasskey(passkey, remove));
    return el(
      "li",
      { class: "passkey" },
      el("strong", {}, passkey.name),
      ` — added ${formatTime(passkey.created_at)}, ${used} `,
      remove,
    );
  });
  factors.passkeys = items.length;
  if (!rows.length) rows.push(el("li", { class: "empty" }, "No passkeys yet."));
  $("passkey-list").replaceChildren(...rows);
}

async function removePasskey(passkey, button) {
  $("passkeys-error").textContent = "";
  button.disabled = true;
  try {
    const proof = await reauthProof("passkeys-error");
    if (!proof) {
      button.disabled = false;
      return;
    }
    await request("DELETE", `users/me/passkeys/${encodeURIComponent(passkey.id)}`, {
      body: proof,
    });
    reauthDone();
  } catch (error) {
    showError("passkeys-error", error);
    await reauthRefused(error);
    button.disabled = false;
    return;
  }
  await loadPasskeys();
  $("passkeys-title").focus();
}

$("passkey-add-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  $("passkeys-error").textContent = "";
  await busy(form, async () => {
    try {
      const proof = await reauthProof("passkeys-error");
      if (!proof) return;
      await createPasskey(form.elements.name.value.trim(), proof);
      reauthDone();
    } catch (error) {
      showError("passkeys-error", error);
      await reauthRefused(error);
      return;
    }
    form.reset();
    await loadPasskeys();
  });
});
